import csv
import io
from collections import Counter

import pytest

from genies.data.shifts import load_shifts
from genies.errors import GeniesError
from tests.helpers import RAW_DIR, run_genies

CATEGORIES = {
    "context",
    "difficulty",
    "encoding",
    "pretraining_similarity",
    "quality",
    "skill",
    "spurious_cues",
    "unwanted_personas",
}


@pytest.fixture(scope="module")
def registry():
    return load_shifts(RAW_DIR)


def test_registry_counts(registry):
    assert len(registry.rows) == 69
    assert len(registry.distinct) == 56
    assert len({s.name for s in registry.distinct}) == 56
    assert len(registry.genies) == 15
    assert set(registry.categories) == CATEGORIES
    assert Counter(s.label for s in registry.distinct) == {"extreme": 37, "probing": 19}
    per_category = Counter(s.category for s in registry.distinct)
    assert per_category["skill"] == 12 and per_category["unwanted_personas"] == 13


def test_genies_shifts_keep_upstream_order_and_references(registry):
    genies = registry.select("genies")
    assert genies[0].name == "us_history_textbook->us_history_fiction"
    assert genies[-1].name == "alpaca_mmlu->reward_seeking"
    assert sum(s.source == "alpaca_mmlu" for s in genies) == 8
    references = {s.target: s.target_reference for s in genies if s.target_reference != s.target}
    assert references == {"alpaca_long": "alpaca_mmlu", "sycophancy_mimicry": "quote_attribution"}
    # GENIES.json's own labels: alpaca_short->alpaca_long is "extreme" there (9 + that one),
    # while its category file lives under probing/, so the `all` set calls it "probing".
    assert Counter(s.label for s in genies) == {"extreme": 10, "probing": 5}
    assert registry.lookup("alpaca_short->alpaca_long").label == "probing"


def test_named_sets_and_lookup(registry):
    assert len(registry.select("all")) == 56
    assert [s.target for s in registry.select("quality")] == [
        "alpaca_high_quality",
        "shp_high_quality",
        "code",
    ]
    shift = registry.lookup("alpaca_chat->sycophancy_are_you_sure")
    assert shift.target_reference == "arc_easy" and shift.category == "unwanted_personas"
    with pytest.raises(GeniesError, match=r"unknown shift set 'hard'; allowed: genies, all, "):
        registry.select("hard")
    with pytest.raises(GeniesError, match=r"unknown shift math->nope .*targets of 'math': "):
        registry.lookup("math->nope")
    with pytest.raises(GeniesError, match=r"expected the form 'source->target'"):
        registry.lookup("math")


def test_shifts_command_prints_csv():
    result = run_genies("shifts", "--set", "genies", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 15
    assert list(rows[0]) == ["source", "target", "target_reference", "label", "category"]
    assert rows[12]["target_reference"] == "quote_attribution"
    result = run_genies("shifts", "--set", "all", "--format", "csv")
    assert len(result.stdout.strip().splitlines()) == 1 + 56
    result = run_genies("shifts", "--set", "skill")
    assert len(result.stdout.strip().splitlines()) == 12


def test_shifts_command_rejects_an_unknown_set_on_one_line():
    result = run_genies("shifts", "--set", "nope")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "unknown shift set 'nope'" in result.stderr
