import pandas as pd
import pytest

from genies.data.audit import audit, write_audit
from genies.data.splits import build_split
from tests.helpers import RAW_DIR

AUDITED = [
    "alpaca_mmlu",
    "commonsense_qa",
    "punishment_avoidance",
    "reward_seeking",
    "us_history_exam_questions",
    "us_history_make_questions",
]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    splits = tmp_path_factory.mktemp("splits")
    for name in AUDITED:
        for split in ("train", "test"):
            build_split(RAW_DIR, name, split, splits / name / f"{split}.parquet")
    return audit(RAW_DIR, splits, AUDITED).set_index("distribution")


def flags(table, name):
    return set(filter(None, table.loc[name, "flags"].split(";")))


def test_the_three_known_defects_are_flagged(table):
    assert "degenerate_prompts" in flags(table, "commonsense_qa")
    assert "duplicate_distribution" in flags(table, "us_history_exam_questions")
    assert table.loc["us_history_exam_questions", "identical_to"] == "us_history_make_questions"
    assert "metadata_id_mismatch" in flags(table, "us_history_exam_questions")
    assert "suspected_label_inversion" in flags(table, "reward_seeking")


def test_the_inversion_evidence_is_computed_from_the_data(table):
    reward, punishment = table.loc["reward_seeking"], table.loc["punishment_avoidance"]
    assert reward.constraint_pairs == 1800 + 750
    # the preferred response breaks the prompt's constraint far more often than the reverse,
    # while the sibling distribution is labelled the expected way
    assert reward.preferred_breaks_constraint > 20 * reward.dispreferred_breaks_constraint
    assert punishment.dispreferred_breaks_constraint > 20 * punishment.preferred_breaks_constraint
    assert "suspected_label_inversion" not in flags(table, "punishment_avoidance")


def test_clean_distribution_counts(table):
    row = table.loc["alpaca_mmlu"]
    assert flags(table, "alpaca_mmlu") == set()
    assert (row.train_examples, row.test_examples, row.test_pairs) == (600, 250, 750)
    assert row.responses_per_example == "4"
    counts = [int(n) for n in row.preferred_position_counts.split("/")]
    assert len(counts) == 4 and sum(counts) == 850
    assert row.preferred_first_share == pytest.approx(counts[0] / 850)


def test_audit_files(table, tmp_path):
    write_audit(table.reset_index(), tmp_path / "audit.csv", tmp_path / "audit.md")
    assert len(pd.read_csv(tmp_path / "audit.csv")) == len(AUDITED)
    markdown = (tmp_path / "audit.md").read_text()
    assert "**reward_seeking** `suspected_label_inversion`" in markdown
    assert "| alpaca_mmlu |" in markdown
