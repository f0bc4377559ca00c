"""The per-shift rules of our tables on hand-made evaluations: which file feeds which number."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from genies.data.shifts import load_shifts
from genies.errors import GeniesError
from genies.evaluation.genies_table import genies_table, truncation_notes
from genies.evaluation.model_tables import model_shift_table
from genies.evaluation.summary import genies_summary, summary_markdown
from tests.helpers import RAW_DIR

BOOTSTRAP = {"seed": 0, "resamples": 200, "level": 0.9}
REGISTRY = load_shifts(RAW_DIR)
# alpaca_short->alpaca_long's reference is alpaca_mmlu; code->us_history's is its target
SHIFTS = [REGISTRY.lookup("alpaca_short->alpaca_long"), REGISTRY.lookup("code->us_history")]


def evaluation(correct: int, total: int, examples: int | None = None) -> pd.DataFrame:
    """`total` pairs of which the first `correct` get P = 0.8 and the rest P = 0.3."""
    examples = examples or total
    return pd.DataFrame(
        {
            "pair_id": [f"e{i % examples}/{i}" for i in range(total)],
            "example_id": [f"e{i % examples}" for i in range(total)],
            "probability": [0.8] * correct + [0.3] * (total - correct),
        }
    )


# (method, source, distribution) -> accuracy in tenths, on 10 pairs
ACCURACY = {
    ("zero_shot", "alpaca_short", "alpaca_long"): 2,
    ("zero_shot", "alpaca_short", "alpaca_short"): 9,
    ("zero_shot", "alpaca_mmlu", "alpaca_mmlu"): 5,
    ("mms", "alpaca_short", "alpaca_long"): 6,
    ("mms", "alpaca_short", "alpaca_short"): 10,
    ("mms", "alpaca_mmlu", "alpaca_mmlu"): 8,
    ("random", "alpaca_short", "alpaca_long"): 5,
    ("random", "alpaca_short", "alpaca_short"): 5,
    ("random", "alpaca_mmlu", "alpaca_mmlu"): 10,  # chance may not set the capability
    ("zero_shot", "code", "us_history"): 4,
    ("zero_shot", "code", "code"): 7,
    ("zero_shot", "us_history", "us_history"): 7,
    ("mms", "code", "us_history"): 3,
    ("mms", "code", "code"): 9,
    ("mms", "us_history", "us_history"): 7,  # a tie with zero_shot: first configured
    ("random", "code", "us_history"): 5,
    ("random", "code", "code"): 5,
    ("random", "us_history", "us_history"): 5,
}


def evaluations(method: str, source: str, distribution: str) -> pd.DataFrame:
    return evaluation(ACCURACY[(method, source, distribution)], 10, examples=5)


@pytest.fixture(scope="module")
def tidy():
    methods = ["zero_shot", "mms", "random"]
    comparable = dict.fromkeys(methods, True)
    return model_shift_table(
        "m", methods, SHIFTS, REGISTRY, evaluations, comparable, ["zero_shot", "mms"], BOOTSTRAP
    ).set_index(["intervention", "target"])


def test_accuracy_baseline_and_capability_come_from_the_right_files(tidy):
    row = tidy.loc[("mms", "alpaca_long")]
    assert row.generalization_accuracy == 0.6 and row.source_ID_accuracy == 1.0
    assert row.baseline_accuracy == 0.2  # zero_shot on the target
    # the reference alpaca_mmlu, best of the candidates: mms 0.8 (random's 1.0 does not count)
    assert row.target_tuned_capability == 0.8
    assert row.target_tuned_capability_intervention == "mms"
    assert row.elicitation == pytest.approx(0.6 / 0.8)
    assert row.differential_elicitation == pytest.approx((0.6 - 0.2) / 0.8)
    tie = tidy.loc[("mms", "us_history")]
    assert tie.target_tuned_capability == 0.7
    assert tie.target_tuned_capability_intervention == "zero_shot"
    assert tie.differential_elicitation == pytest.approx((0.3 - 0.4) / 0.7)
    assert (tidy.loc["zero_shot"].differential_elicitation == 0).all()


def test_intervals_resample_examples_and_take_the_configured_level(tidy):
    row = tidy.loc[("mms", "alpaca_long")]
    p = evaluations("mms", "alpaca_short", "alpaca_long")
    correct = (p.probability > 0.5).groupby(p.example_id).agg(["sum", "count"])
    # an independent percentile bootstrap over the 5 examples, numpy's generator as documented
    drawn = np.random.default_rng(0).integers(0, 5, size=(200, 5))
    means = correct["sum"].to_numpy()[drawn].sum(1) / correct["count"].to_numpy()[drawn].sum(1)
    assert (row.accuracy_low, row.accuracy_high) == tuple(np.quantile(means, [0.05, 0.95]))
    assert row.target_examples == 5 and row.n_pairs == 10


def test_the_genies_table_averages_over_the_benchmark_shifts_only(tidy):
    table = genies_table(tidy.reset_index(), 12, 0, 200, 0.95).set_index("intervention")
    # only alpaca_short->alpaca_long is a GENIES shift
    assert table.loc["mms", "shifts"] == 1
    assert table.loc["mms", "differential_elicitation"] == pytest.approx(0.5)
    assert table.loc["mms", "target_pairs"] == 10


def test_the_table_means_each_column_over_its_shifts_from_its_own_source(tidy):
    """Both shifts counted as GENIES ones, the held-out capability set apart from the in-sample
    one: every mean column of the table is the mean of its own per-shift column."""
    rows = tidy.reset_index().assign(genies_position=1)
    rows["target_tuned_capability_heldout"] = rows.target.map(
        {"alpaca_long": 0.6, "us_history": 0.5}
    )
    rows["elicitation_heldout"] = (
        rows.generalization_accuracy / rows.target_tuned_capability_heldout
    )
    rows["differential_elicitation_heldout"] = (
        rows.generalization_accuracy - rows.baseline_accuracy
    ) / rows.target_tuned_capability_heldout
    table = genies_table(rows, 12, 0, 200, 0.95).set_index("intervention")
    columns = {
        "target_tuned_capability": "target_tuned_capability",
        "target_tuned_capability_heldout": "target_tuned_capability_heldout",
        "elicitation_heldout": "elicitation_heldout",
        "differential_elicitation_heldout": "differential_elicitation_heldout",
        "elicitation": "elicitation",
        "zero_shot_accuracy": "baseline_accuracy",
        "brier_score": "brier_score",
        "source_id_accuracy": "source_ID_accuracy",
    }
    for method, own in rows.groupby("intervention"):
        for column, per_shift in columns.items():
            assert table.loc[method, column] == pytest.approx(own[per_shift].mean()), column
    assert table.loc["mms", "target_tuned_capability_heldout"] == pytest.approx(0.55)
    assert table.loc["mms", "target_tuned_capability"] == pytest.approx(0.75)


def test_tied_pairs_count_half_and_are_counted_in_both_tables():
    ties = pd.DataFrame(
        {
            "pair_id": [f"e{i}/0" for i in range(8)],
            "example_id": [f"e{i}" for i in range(8)],
            "probability": [0.5, 0.5, 0.5, 0.9, 0.9, 0.2, 0.2, 0.2],
        }
    )

    def scored(method, source, distribution):
        return ties if method == "mms" else evaluation(5, 10)

    tidy = model_shift_table(
        "m", ["mms"], SHIFTS[:1], REGISTRY, scored, {"mms": True}, ["mms"], BOOTSTRAP
    )
    assert tidy.generalization_accuracy[0] == (1.5 + 2) / 8 and tidy.tied_pairs[0] == 3
    table = genies_table(tidy, 12, 0, 200, 0.95)
    assert table.tied_pairs[0] == 3 and table.target_pairs[0] == 8
    summary = genies_summary(tidy, 0, 200, 0.95)
    assert (summary.tied_pairs[0], summary.pairs[0]) == (3, 8)
    assert "Ties (P = 0.5 exactly) count as correct" in summary_markdown(summary, 0.95)


def test_the_notes_count_texts_cut_at_max_length_per_model_and_template(tmp_path):
    sidecars = []
    for name, template, cut, rows in [
        ("a", "lat_stim", 3, 10),
        ("b", "lat_stim", 1, 30),
        ("c", "raw", 0, 40),  # nothing cut: no note
    ]:
        meta = {"model": "m", "template": template, "max_length": 64}
        sidecars.append(tmp_path / f"{name}.json")
        sidecars[-1].write_text(json.dumps(meta | {"truncated_rows": cut, "rows": rows}))
    notes = truncation_notes([str(path) for path in sidecars])
    assert len(notes) == 1
    expected = "m, template lat_stim: 4 of 40 texts (10.0%) longer than max_length 64"
    assert notes[0].startswith(expected)


def test_shifts_sharing_a_source_move_together_in_the_intervals():
    # two sources of 8 shifts each: every shift of A scores 1, of B 0. Resampling the 2 sources
    # gives means 0, 0.5, 1 with chances 1/4, 1/2, 1/4: the 95% interval is [0, 1]. Resampling the
    # 16 shifts as if independent would give about 0.5 ± 0.25.
    sources = ["a"] * 8 + ["b"] * 8
    tidy = pd.DataFrame(
        {
            "model": "m",
            "intervention": "mms",
            "source": sources,
            "target": [f"t{i}" for i in range(16)],
            "genies_position": range(1, 17),
            "comparable": True,
            "discretised": False,
        }
    )
    intervals = ("generalization_accuracy", "source_ID_accuracy", "differential_elicitation")
    for column in (*intervals, "differential_elicitation_heldout"):
        tidy[column] = [1.0] * 8 + [0.0] * 8
    for column in ("elicitation", "elicitation_heldout", "baseline_accuracy", "brier_score"):
        tidy[column] = 0.5
    tidy["target_tuned_capability"] = tidy["target_tuned_capability_heldout"] = 0.5
    for column in ("rms_calibration_error", "RMS_calibration_error", "accuracy_low"):
        tidy[column] = 0.1
    tidy["accuracy_high"] = 0.9
    tidy["n_pairs"] = tidy["target_examples"] = tidy["source_examples"] = 10
    tidy["tied_pairs"] = 0
    row = genies_table(tidy, 12, 0, 2000, 0.95).iloc[0]
    for name in (
        "generalization_accuracy",
        "source_id_accuracy",
        "differential_elicitation",
        "differential_elicitation_heldout",
    ):
        assert (row[name], row[f"{name}_low"], row[f"{name}_high"]) == (0.5, 0.0, 1.0), name


def documented_halves(example_ids, seed: int) -> tuple[list, list]:
    """The two halves of the cross-fit as model_tables documents them, computed here: examples
    ordered by blake2b of "<seed>:capability:<id>" (8 bytes, big-endian), the first half first."""

    def key(example):
        digest = hashlib.blake2b(f"{seed}:capability:{example}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big"), example

    order = sorted(set(example_ids), key=key)
    return order[: (len(order) + 1) // 2], order[(len(order) + 1) // 2 :]


def test_the_heldout_capability_is_chosen_on_one_half_and_scored_on_the_other():
    """Two candidates, each right on exactly one half of the reference's 10 examples: both score
    0.5, the paper's maximum; chosen on the other half, each half gets the candidate that is
    wrong on all of it, so the cross-fitted capability is 0 (and El, DE against it undefined).
    A third candidate right on 6 examples, 3 in each half, then decides the other case."""
    ids = [f"e{i}" for i in range(10)]
    first, second = documented_halves(ids, BOOTSTRAP["seed"])
    right_on = {"mms": set(first), "lat_stim_1": set(second)}

    def scored(method, source, distribution):
        if (source, distribution) != ("us_history", "us_history"):
            return evaluation(5, 10)
        right = right_on.get(method, set(first[:3] + second[:3]))
        return pd.DataFrame(
            {
                "pair_id": [f"{e}/0" for e in ids],
                "example_id": ids,
                "probability": [0.8 if e in right else 0.3 for e in ids],
            }
        )

    def row(candidates):
        table = model_shift_table(
            "m", ["zero_shot"], SHIFTS[1:], REGISTRY, scored, {"zero_shot": True}, candidates,
            BOOTSTRAP,
        )  # fmt: skip
        return table.iloc[0]

    cursed = row(["mms", "lat_stim_1"])
    assert cursed.target_tuned_capability == 0.5
    assert cursed.target_tuned_capability_heldout == 0.0
    assert cursed.target_tuned_capability_heldout_intervention == "lat_stim_1|mms"
    assert np.isnan(cursed.differential_elicitation_heldout)
    # mms (right on the first half) against a candidate right on 3 of each half: the paper's
    # maximum takes the latter's 0.6. Cross-fitted, the first half gets the winner on the second
    # (the latter, 3 of 5 against 0): 3 right; the second gets the winner on the first (mms, 5
    # against 3), wrong on all 5 there: 3 of 10 in all.
    steady = row(["mms", "random_walk"])
    assert steady.target_tuned_capability == 0.6
    assert steady.target_tuned_capability_heldout == pytest.approx(0.3)
    assert steady.target_tuned_capability_heldout_intervention == "random_walk|mms"
    assert steady.elicitation_heldout == pytest.approx(0.5 / 0.3)


def test_the_heldout_capability_refuses_candidates_scored_on_different_examples():
    def scored(method, source, distribution):
        ids = ["e0", "e1", "e2"] if method == "mms" else ["e0", "e1", "e3"]
        return pd.DataFrame(
            {"pair_id": [f"{e}/0" for e in ids], "example_id": ids, "probability": 0.8}
        )

    with pytest.raises(GeniesError, match="lat_stim_1 and mms were scored on different"):
        model_shift_table(
            "m", ["zero_shot"], SHIFTS[1:], REGISTRY, scored, {"zero_shot": True},
            ["mms", "lat_stim_1"], BOOTSTRAP,
        )  # fmt: skip
