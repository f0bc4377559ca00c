"""The published data-mixing runs: found and parsed from the archive, tabulated from their per-pair
probabilities and drawn. Expected counts and accuracies come from the archive read here directly
(tarfile + json), not through the code under test."""

import json
import re
import tarfile
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from genies.cli import main
from genies.data.shifts import load_shifts
from genies.data.splits import build_split
from genies.errors import GeniesError
from genies.figures.mixing import mixing_figure
from genies.paper.mixing import MixingRun, mixing_index, mixing_table, parse_mixing_run
from genies.paper.published import ARCHIVE, index_evaluations, write_index
from genies.paper.tables import Context, shift_metrics, ttc_traceability
from tests.helpers import RAW_DIR

# A mixing run folder, read independently of genies.paper.mixing (no distribution name has a hyphen)
RUN = re.compile(r"^(openllama-3b|llama-7b|llama-13b|llama-30b)-(\w+)-(\w+)-(\d+)%$")
TARGETS = ("alpaca_long", "sycophancy_answer", "sycophancy_mimicry", "truthful_qa")
TARGETS += ("unhelpful_alpaca", "wrong_arc")
POINT = "lora_fine_tuning/llama-30b-alpaca_mmlu-wrong_arc-10%/wrong_arc.json"
PLAIN = "lora_fine_tuning/llama-30b-alpaca_mmlu/wrong_arc.json"


def archive_files() -> dict[str, dict]:
    """Every evaluation file under a mixing run folder: path inside evaluations/ -> its JSON."""
    files = {}
    with tarfile.open(RAW_DIR / ARCHIVE) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and member.name.endswith(".json") and RUN.match(parts[-2]):
                files["/".join(parts[1:])] = json.loads(tar.extractfile(member).read())
    return files


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    work = tmp_path_factory.mktemp("mixing")
    for target in TARGETS:
        build_split(RAW_DIR, target, "test", work / "splits" / target / "test.parquet")
    index = index_evaluations(RAW_DIR)
    write_index(index, work / "index.parquet")
    index = index.to_pandas()
    table = mixing_table(index, RAW_DIR, work / "splits", seed=0, resamples=200, level=0.95)
    return {"index": index, "table": table, "work": work, "archive": archive_files()}


def test_mixing_files_per_intervention_and_fraction_match_the_archive(published):
    archive = published["archive"]
    files = Counter(
        (path.split("/")[0], int(RUN.match(path.split("/")[-2]).group(4))) for path in archive
    )
    # what the archive holds (the counts): LoRA 68 / 20 / 52 / 48, MMS 3 / 3 / 3
    assert files == {
        ("lora_fine_tuning", 1): 68,
        ("lora_fine_tuning", 5): 20,
        ("lora_fine_tuning", 10): 52,
        ("lora_fine_tuning", 35): 48,
        ("mms", 1): 3,
        ("mms", 10): 3,
        ("mms", 35): 3,
    }
    assert len({path.rsplit("/", 1)[0] for path in archive}) == 103  # run folders
    indexed = mixing_index(published["index"], RAW_DIR)
    found = Counter(
        zip(indexed.intervention, (indexed.fraction * 100).round().astype(int), strict=True)
    )
    assert found == files
    # one table row per distinct (model, intervention, source, target, fraction) of target files
    target_runs = {
        (path.split("/")[0], run)
        for path in archive
        for run, file in [path.split("/")[-2:]]
        if file == f"{RUN.match(run).group(3)}.json"
    }
    points = Counter(
        (intervention, int(RUN.match(run).group(4))) for intervention, run in target_runs
    )
    table = published["table"]
    mixed = table[table.fraction > 0]
    assert (
        Counter(zip(mixed.intervention, (mixed.fraction * 100).round().astype(int), strict=True))
        == points
    )
    assert set(table.model) == {"llama-7b", "llama-13b", "llama-30b"}
    assert set(table.target) == set(TARGETS)


def test_a_run_name_is_parsed_against_the_known_names():
    models, distributions = ("llama-30b", "llama-7b"), {"alpaca_mmlu", "wrong_arc", "a", "b"}
    assert parse_mixing_run(
        "llama-30b-alpaca_mmlu-wrong_arc-10%", models, distributions, "here"
    ) == MixingRun("llama-30b", "alpaca_mmlu", "wrong_arc", 0.1)
    # two readings of the hyphens: ambiguous, never guessed
    with pytest.raises(GeniesError, match="2 readings"):
        parse_mixing_run("llama-7b-a-b-c-1%", models, {"a", "b-c", "a-b", "c"}, "here")


@pytest.mark.parametrize(
    "run",
    [
        "llama-30b-alpaca_mmlu-wrong_arc-x%",  # no number before the percent sign
        "llama-30b-alpaca_mmlu-wrong_arc-100%",
        "llama-30b-alpaca_mmlu-wrong_arc-0%",
        "llama-30b-alpaca_mmlu_wrong_arc-10%",  # no hyphen between source and target
        "llama-99b-alpaca_mmlu-wrong_arc-10%",  # unknown model
        "llama-30b-alpaca_mmlu-wrong-arc-10%",  # unknown target, two hyphens
        "llama-30b-alpaca_mmlu-wrongarc-10%",  # unknown target, one hyphen
    ],
)
def test_a_malformed_run_name_is_one_line_naming_the_archive_member(published, run):
    index = published["index"]
    row = index[index.path == POINT].assign(run=run, path=f"lora_fine_tuning/{run}/wrong_arc.json")
    with pytest.raises(GeniesError) as caught:
        mixing_index(pd.concat([index, row]), RAW_DIR)
    message = str(caught.value)
    assert f"evaluations.tar.xz:evaluations/lora_fine_tuning/{run}/wrong_arc.json" in message
    assert "\n" not in message


def test_the_plain_tables_never_read_a_mixing_run(published):
    index = published["index"]
    shift = next(s for s in load_shifts(RAW_DIR).distinct if s.name == "alpaca_mmlu->wrong_arc")
    ctx = Context(index, RAW_DIR, published["work"] / "splits", 0, 50, 0.95)
    row, _ = shift_metrics(ctx, "llama-30b", "lora_fine_tuning", shift)
    assert row["generalization_accuracy"] == np.mean(np.asarray(plain_probabilities()) >= 0.5)
    # without the plain run, the mixing runs of the same shift stand in for nothing
    mixing_only = index[index.run.str.endswith("%")]
    ctx = Context(mixing_only, RAW_DIR, published["work"] / "splits", 0, 50, 0.95)
    assert not ctx.evaluations.has_any("lora_fine_tuning", "llama-30b", [shift])
    with pytest.raises(GeniesError, match="llama-30b-alpaca_mmlu/wrong_arc.json: evaluation file"):
        shift_metrics(ctx, "llama-30b", "lora_fine_tuning", shift)
    assert not ttc_traceability(mixing_only, RAW_DIR).traceable.any()


def plain_probabilities() -> list[float]:
    with tarfile.open(RAW_DIR / ARCHIVE) as tar:
        return json.loads(tar.extractfile(f"evaluations/{PLAIN}").read())["eval_probabilities"]


def test_an_accuracy_equals_one_computed_from_the_raw_probabilities(published):
    table = published["table"]
    mine = table[
        (table.model == "llama-30b")
        & (table.intervention == "lora_fine_tuning")
        & (table.target == "wrong_arc")
    ].set_index("fraction")
    p = np.asarray(published["archive"][POINT]["eval_probabilities"])
    assert mine.loc[0.1, "generalization_accuracy"] == np.mean(p >= 0.5)  # ties count as correct
    assert mine.loc[0.1, "file"] == f"evaluations/{POINT}"
    assert mine.loc[0.1, "n_pairs"] == len(p)
    assert mine.loc[0.1, "accuracy_low"] < np.mean(p >= 0.5) < mine.loc[0.1, "accuracy_high"]
    assert mine.loc[0.0, "generalization_accuracy"] == np.mean(
        np.asarray(plain_probabilities()) >= 0.5
    )
    ttc = json.loads(
        (RAW_DIR / "published/target_tuned_capability/llama-30b/wrong_arc.json").read_text()
    )
    assert (mine.target_tuned_capability == ttc["best_intervention_accuracy"]).all()


def test_the_command_writes_the_table_and_the_figure(published, tmp_path):
    work = published["work"]
    out = {name: tmp_path / f"mixing.{name}" for name in ("csv", "md", "png")}
    argv = ["paper-mixing", "--index", str(work / "index.parquet"), "--raw-dir", str(RAW_DIR)]
    argv += ["--splits-dir", str(work / "splits"), "--resamples", "50"]
    argv += ["--csv", str(out["csv"]), "--md", str(out["md"]), "--figure", str(out["png"])]
    assert main(argv) == 0
    assert (
        out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out["png"].stat().st_size > 50_000
    )
    assert len(pd.read_csv(out["csv"])) == len(published["table"])
    assert (
        "| llama-30b | lora_fine_tuning | alpaca_mmlu | wrong_arc | 0.100 |"
        in out["md"].read_text()
    )


def test_a_table_without_intervals_draws_nothing(published):
    with pytest.raises(GeniesError, match="accuracy_low"):
        mixing_figure(published["table"].drop(columns="accuracy_low"), 0.95, "Published")
