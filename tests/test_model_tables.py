"""The per-shift rules of our tables on hand-made evaluations: which file feeds which number."""

import json

import numpy as np
import pandas as pd
import pytest

from genies.data.shifts import load_shifts
from genies.evaluation.genies_table import genies_table, truncation_notes
from genies.evaluation.model_tables import model_shift_table
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
    for column in ("generalization_accuracy", "source_ID_accuracy", "differential_elicitation"):
        tidy[column] = [1.0] * 8 + [0.0] * 8
    for column in ("elicitation", "baseline_accuracy", "target_tuned_capability", "brier_score"):
        tidy[column] = 0.5
    for column in ("rms_calibration_error", "RMS_calibration_error", "accuracy_low"):
        tidy[column] = 0.1
    tidy["accuracy_high"] = 0.9
    tidy["n_pairs"] = tidy["target_examples"] = tidy["source_examples"] = 10
    row = genies_table(tidy, 12, 0, 2000, 0.95).iloc[0]
    for name in ("generalization_accuracy", "source_id_accuracy", "differential_elicitation"):
        assert (row[name], row[f"{name}_low"], row[f"{name}_high"]) == (0.5, 0.0, 1.0), name
