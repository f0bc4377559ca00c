"""The claims' verdict rule on made-up per-shift tables whose verdict is known by construction,
each statistic against a computation of the test's own."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genies.evaluation.claims import claims_table, count_verdict, verdict

BOOTSTRAP = {"seed": 0, "resamples": 400, "level": 0.95}
LORA = "lora_fine_tuning"


def shift_rows(model, intervention, accuracy, baseline, de, labels, sources, positions=None):
    n = len(accuracy)
    return pd.DataFrame(
        {
            "model": model,
            "intervention": intervention,
            "source": sources,
            "target": [f"t{i}" for i in range(n)],
            "label": labels,
            "category": [
                "unwanted_personas" if label == "probing" else "skill" for label in labels
            ],
            "genies_position": positions if positions is not None else np.zeros(n, int),
            "generalization_accuracy": accuracy,
            "accuracy_low": np.asarray(accuracy) - 0.05,
            "accuracy_high": np.asarray(accuracy) + 0.05,
            "baseline_accuracy": baseline,
            "differential_elicitation": de,
        }
    )


def run(model="m", zero=None, accuracy=None, de=None, labels=None, n=20):
    """A model's zero_shot and LoRA rows over n shifts of n sources."""
    labels = labels if labels is not None else ["extreme", "probing"] * (n // 2)
    sources = [f"s{i}" for i in range(n)]
    zero = np.asarray(zero)
    return pd.concat(
        [
            shift_rows(model, "zero_shot", zero, zero, np.zeros(n), labels, sources),
            shift_rows(model, LORA, accuracy, zero, de, labels, sources),
        ],
        ignore_index=True,
    )


def claim(table, name, model="m"):
    rows = table[(table.claim == name) & (table.model == model)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


NO_CONTRASTS = pd.DataFrame(columns=["model", "first", "second"])


def test_the_verdict_rule_at_its_edges():
    assert verdict(0.01, 0.2, 0, ">") == "supported"
    assert verdict(-0.2, -0.01, 0, ">") == "contradicted"
    assert verdict(-0.2, -0.01, 0, "<") == "supported"
    assert verdict(0.0, 0.2, 0, ">") == "not resolved"  # the null inside the closed interval
    assert verdict(0.45, 0.55, 0.5, "<") == "not resolved"
    assert verdict(float("nan"), float("nan"), 0, ">") == "not resolved"  # no interval
    assert count_verdict(below=6, reaching=9, claimed=6) == "supported"
    assert count_verdict(below=2, reaching=5, claimed=6) == "contradicted"
    assert count_verdict(below=5, reaching=6, claimed=6) == "not resolved"


def test_a_correlation_is_supported_contradicted_or_not_resolved_as_constructed():
    rng = np.random.default_rng(1)
    zero = rng.uniform(0.3, 0.9, 20)
    tables = {
        "tracks": run(zero=zero, accuracy=zero + rng.normal(0, 0.02, 20), de=np.zeros(20)),
        "opposes": run(zero=zero, accuracy=1.2 - zero + rng.normal(0, 0.02, 20), de=np.zeros(20)),
        "noise": run(zero=zero, accuracy=rng.uniform(0.3, 0.9, 20), de=np.zeros(20)),
    }
    found = {
        name: claim(claims_table(t, NO_CONTRASTS, BOOTSTRAP), "accuracy_tracks_zero_shot")
        for name, t in tables.items()
    }
    for name, row in found.items():
        lora = tables[name][tables[name].intervention == LORA]
        expected = stats.pearsonr(lora.baseline_accuracy, lora.generalization_accuracy).statistic
        assert row.estimate == pytest.approx(expected)
        assert row.low <= row.estimate <= row.high
    assert found["tracks"].verdict == "supported"
    assert found["opposes"].verdict == "contradicted"
    assert found["noise"].verdict == "not resolved", found["noise"]


def test_extreme_against_probing_is_the_difference_of_the_label_means():
    n = 20
    labels = ["extreme", "probing"] * (n // 2)
    rng = np.random.default_rng(2)
    de = np.where(np.array(labels) == "extreme", 0.3, 0.0) + rng.normal(0, 0.02, n)
    table = claims_table(run(zero=np.full(n, 0.5), accuracy=np.full(n, 0.6), de=de),
                         NO_CONTRASTS, BOOTSTRAP)  # fmt: skip
    row = claim(table, "extreme_beats_probing")
    expected = de[0::2].mean() - de[1::2].mean()
    assert row.estimate == pytest.approx(expected)
    assert row.verdict == "supported"
    flipped = claims_table(run(zero=np.full(n, 0.5), accuracy=np.full(n, 0.6), de=-de),
                           NO_CONTRASTS, BOOTSTRAP)  # fmt: skip
    assert claim(flipped, "extreme_beats_probing").verdict == "contradicted"


def test_shifts_sharing_a_source_move_together():
    """Forty shifts: resampled one by one their label difference is resolved; when they share
    two sources whose own differences have opposite signs, resampling sources is not."""
    n = 40
    labels = np.array(["extreme", "probing"] * (n // 2))
    in_a = np.arange(n) < n // 2
    de = np.select([in_a & (labels == "probing"), ~in_a & (labels == "extreme")], [0.1, 0.5], 0.0)
    tidy = run(zero=np.full(n, 0.5), accuracy=np.full(n, 0.6), de=de, labels=list(labels), n=n)
    row = claim(claims_table(tidy, NO_CONTRASTS, BOOTSTRAP), "extreme_beats_probing")
    assert row.estimate == pytest.approx(0.25 - 0.05) and row.verdict == "supported"
    tidy["source"] = np.where(np.tile(in_a, 2), "a", "b")
    row = claim(claims_table(tidy, NO_CONTRASTS, BOOTSTRAP), "extreme_beats_probing")
    # a resample draws {a, a}, {a, b} or {b, b}: the extremes are each source's own difference
    assert (row.low, row.high) == pytest.approx((0.0 - 0.1, 0.5 - 0.0))
    assert row.verdict == "not resolved"


def test_the_count_claim_bounds_the_shifts_at_chance_by_their_own_intervals():
    n = 15
    positions = np.arange(1, n + 1)
    sources = [f"s{i}" for i in range(n)]
    labels = ["extreme"] * n

    def table(accuracy):
        rows = [shift_rows("m", name, np.asarray(acc), np.full(n, 0.5), de, labels, sources,
                           positions)
                for name, acc, de in (("zero_shot", np.full(n, 0.5), np.zeros(n)),
                                      ("mms", accuracy, np.full(n, 0.2)),
                                      (LORA, np.full(n, 0.4), np.full(n, 0.1)))]  # fmt: skip
        return claim(claims_table(pd.concat(rows), NO_CONTRASTS, BOOTSTRAP), "best_at_chance")

    # intervals are +/- 0.05: 0.40 lies below chance, 0.48 reaches it, 0.60 lies above
    seven_below = table(np.array([0.40] * 7 + [0.60] * 8))
    assert (seven_below.estimate, seven_below.low, seven_below.high) == (7, 7, 7)
    assert seven_below.verdict == "supported" and seven_below.note == "best: mms"
    assert table(np.array([0.40] * 2 + [0.48] * 2 + [0.60] * 11)).verdict == "contradicted"
    assert table(np.array([0.40] * 3 + [0.52] * 4 + [0.60] * 8)).verdict == "not resolved"
    # below chance by their point, not by their interval: six do not make the claim
    assert table(np.array([0.48] * 6 + [0.60] * 9)).verdict == "not resolved"


def test_interpretability_reads_the_contrast_either_way_round():
    tidy = run(zero=np.full(20, 0.5), accuracy=np.full(20, 0.6), de=np.zeros(20))
    mms = tidy[tidy.intervention == LORA].assign(intervention="mms")
    tidy = pd.concat([tidy, mms])
    numbers = {"de_difference": 0.1, "de_difference_low": 0.02, "de_difference_high": 0.2,
               "p_sign_flip": 0.005, "p_sign_flip_holm": 0.01}  # fmt: skip
    forward = pd.DataFrame([{"model": "m", "first": "mms", "second": LORA} | numbers])
    backward = pd.DataFrame([{"model": "m", "first": LORA, "second": "mms"} | numbers])
    rows = claims_table(tidy, forward, BOOTSTRAP)
    mms_row = rows[rows.note.str.startswith("mms")].iloc[0]
    assert (mms_row.estimate, mms_row.low, mms_row.high) == (0.1, 0.02, 0.2)
    assert mms_row.verdict == "supported"
    rows = claims_table(tidy, backward, BOOTSTRAP)
    mms_row = rows[rows.note.str.startswith("mms")].iloc[0]
    assert (mms_row.estimate, mms_row.low, mms_row.high) == (-0.1, -0.2, -0.02)
    assert mms_row.verdict == "contradicted"
    lat = rows[
        (rows.claim == "interpretability_beats_fine_tuning") & ~rows.note.str.startswith("mms")
    ]
    assert list(lat.note) == ["lat_stim_1 not run", "lat_stim_2 not run"]


def test_what_one_model_cannot_test_says_why():
    one = claims_table(run(zero=np.full(20, 0.5), accuracy=np.full(20, 0.6), de=np.zeros(20)),
                       NO_CONTRASTS, BOOTSTRAP)  # fmt: skip
    row = claim(one, "small_predicts_large")
    assert (row.verdict, row.note) == ("not testable", "one model")
    assert claim(one, "best_at_chance").note == "0 of the 15 GENIES shifts"
    rng = np.random.default_rng(3)
    small = rng.uniform(0.3, 0.9, 20)
    half, zeros = np.full(20, 0.5), np.zeros(20)
    two = pd.concat([run("small", zero=half, accuracy=small, de=zeros),
                     run("large", zero=half, accuracy=small + 0.05, de=zeros)])  # fmt: skip
    row = claim(claims_table(two, NO_CONTRASTS, BOOTSTRAP), "small_predicts_large", "small")
    assert row.estimate == pytest.approx(1.0) and row.verdict == "supported"
    assert "large" not in set(claims_table(two, NO_CONTRASTS, BOOTSTRAP).query(
        "claim == 'small_predicts_large'").model)  # fmt: skip


def test_a_constant_variable_or_only_baselines_resolve_nothing():
    """r of a constant accuracy is undefined in every resample: no interval, no verdict; a run
    of baselines only has no best intervention."""
    flat = run(zero=np.linspace(0.3, 0.9, 20), accuracy=np.full(20, 0.6), de=np.zeros(20))
    row = claim(claims_table(flat, NO_CONTRASTS, BOOTSTRAP), "accuracy_tracks_zero_shot")
    assert row.verdict == "not resolved" and np.isnan(row.low)
    positions = np.arange(1, 16)
    only = shift_rows("m", "zero_shot", np.full(15, 0.5), np.full(15, 0.5), np.zeros(15),
                      ["extreme"] * 15, [f"s{i}" for i in range(15)], positions)  # fmt: skip
    row = claim(claims_table(only, NO_CONTRASTS, BOOTSTRAP), "best_at_chance")
    assert (row.verdict, row.note) == ("not testable", "no intervention but the baselines")
