import math
import random

import numpy as np
import pandas as pd
import pytest

from genies.errors import GeniesError
from genies.evaluation.metrics import (
    accuracy_ci,
    bootstrap_ci,
    bootstrap_means,
    brier_score,
    differential_elicitation,
    distinct_shifts,
    elicitation,
    expected_calibration_error,
    legacy_rms_calibration_error,
    mean_by,
    mean_over_shifts,
    pairwise_accuracy,
    reliability_bins,
    rms_calibration_error,
    shift_mean_with_ci,
)

# --- accuracy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ties", "expected"),
    [("correct", 3 / 4), ("incorrect", 2 / 4), ("half", 2.5 / 4)],
)
def test_accuracy_counts_p_above_one_half_and_ties_by_the_rule(ties, expected):
    assert pairwise_accuracy([0.9, 0.2, 0.5, 0.7], ties=ties) == expected


def test_accuracy_default_counts_a_tie_as_correct_like_upstream_argmax():
    assert pairwise_accuracy([0.5, 0.5]) == 1.0
    assert pairwise_accuracy([0.0, 1.0, 0.5000001, 0.4999999]) == 2 / 4


@pytest.mark.parametrize(
    ("p", "ties", "message"),
    [
        ([0.7], "coin", "unknown tie rule 'coin'"),
        ([0.7, float("nan")], "correct", "NaN"),
        ([0.7, 1.5], "correct", "1.5"),
        ([-0.1], "correct", "[0, 1]"),
        ([], "correct", "empty"),
        ([[0.7, 0.2]], "correct", "1-D"),
    ],
)
def test_accuracy_rejects_bad_input_by_name(p, ties, message):
    with pytest.raises(GeniesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        pairwise_accuracy(p, ties=ties)


# --- elicitation --------------------------------------------------------------------------------


def test_elicitation_and_differential_elicitation_on_hand_cases():
    assert elicitation(0.6, 0.8) == pytest.approx(0.75)
    assert differential_elicitation(0.8, 0.6, 0.8) == pytest.approx(0.25)
    assert differential_elicitation(0.5, 0.6, 0.5) == pytest.approx(-0.2)


def test_differential_elicitation_reproduces_an_upstream_number_bit_for_bit():
    # llama-30b, mms, alpaca_easy -> alpaca_hard in upstream's all.csv.
    de = differential_elicitation(0.8066666666666666, 0.6506666666666666, 0.9733333333333334)
    assert de == 0.16027397260273973


def test_differential_elicitation_is_the_difference_of_elicitations():
    accuracy = np.array([0.81, 0.42, 0.99])
    baseline = np.array([0.65, 0.50, 0.33])
    capability = np.array([0.97, 0.88, 1.0])
    de = differential_elicitation(accuracy, baseline, capability)
    difference = elicitation(accuracy, capability) - elicitation(baseline, capability)
    np.testing.assert_allclose(de, difference, rtol=0, atol=1e-15)


def test_elicitation_works_on_series():
    frame = pd.DataFrame({"acc": [0.5, 0.9], "base": [0.25, 0.9], "ttc": [1.0, 0.5]})
    de = differential_elicitation(frame.acc, frame.base, frame.ttc)
    assert isinstance(de, pd.Series)
    assert de.tolist() == [0.25, 0.0]
    assert elicitation(frame.acc, frame.ttc).tolist() == [0.5, 1.8]


def test_elicitation_rejects_zero_capability():
    with pytest.raises(GeniesError, match="target_tuned_capability"):
        elicitation(0.5, 0.0)
    with pytest.raises(GeniesError, match="target_tuned_capability"):
        differential_elicitation(np.array([0.5, 0.6]), 0.5, np.array([1.0, 0.0]))


# --- Brier --------------------------------------------------------------------------------------


def test_brier_score_on_hand_cases():
    assert brier_score([1.0, 1.0]) == 0.0
    assert brier_score([0.0]) == 1.0
    assert brier_score([1.0, 0.0, 0.5]) == pytest.approx((0 + 1 + 0.25) / 3)


def test_brier_score_rejects_bad_probabilities():
    with pytest.raises(GeniesError, match="NaN"):
        brier_score([float("nan")])


# --- legacy RMS calibration error ---------------------------------------------------------------


def legacy_draws(n: int) -> list[int]:
    """The orientation draws upstream makes for n pairs, worked out independently here."""
    rng = random.Random(42)
    return [rng.randint(0, 1) for _ in range(n)]


def p_giving_q(q: list[float]) -> tuple[np.ndarray, list[int]]:
    """p such that the legacy orientation turns pair i into q[i] (exact for dyadic q)."""
    labels = legacy_draws(len(q))
    return np.array([qi if li == 1 else 1 - qi for qi, li in zip(q, labels, strict=True)]), labels


def test_legacy_rms_on_a_hand_built_case():
    # Bins of width 0.2: 0.125 in bin 1, 0.625 in bin 4, 0.875 in bin 5.
    q = [0.125] * 25 + [0.625] * 30 + [0.875] * 5
    p, labels = p_giving_q(q)
    label_mean = sum(labels) / len(labels)
    # Bin 5 has 5 items (< 20) and is skipped; the others use the mean label of ALL pairs.
    expected = math.sqrt(((label_mean - 0.125) ** 2 + (label_mean - 0.625) ** 2) / 2)
    assert legacy_rms_calibration_error(p) == pytest.approx(expected, abs=1e-15)


def test_legacy_rms_skips_a_bin_under_20_items_and_keeps_one_of_20():
    for n_last, kept in [(19, False), (20, True)]:
        q = [0.125] * 20 + [0.875] * n_last
        p, labels = p_giving_q(q)
        label_mean = sum(labels) / len(labels)
        errors = [(label_mean - 0.125) ** 2] + ([(label_mean - 0.875) ** 2] if kept else [])
        expected = math.sqrt(sum(errors) / len(errors))
        assert legacy_rms_calibration_error(p) == pytest.approx(expected, abs=1e-15)


def test_legacy_rms_drops_a_q_of_exactly_one():
    # 25 items at q = 1.0 would fill bin 5 past 20 if they counted; they fall in no bin.
    q = [0.125] * 20 + [1.0] * 25
    p, labels = p_giving_q(q)
    label_mean = sum(labels) / len(labels)
    assert legacy_rms_calibration_error(p) == pytest.approx(abs(label_mean - 0.125), abs=1e-15)


def test_legacy_rms_is_nan_when_no_bin_is_kept():
    p, _ = p_giving_q([0.375] * 19)
    assert math.isnan(legacy_rms_calibration_error(p))


def test_legacy_rms_shows_the_bug_against_per_bin_label_means():
    # Pairs drawn label 1 go to q = 0.875, pairs drawn label 0 to q = 0.125: with each bin's own
    # label mean the error is 0.125 in both bins; with the overall label mean L it is
    # sqrt(((L - 0.875)^2 + (L - 0.125)^2) / 2) >= 0.375 whatever L is.
    labels = legacy_draws(100)
    q = [0.875 if label == 1 else 0.125 for label in labels]
    p, _ = p_giving_q(q)
    assert min(labels.count(0), labels.count(1)) >= 20
    label_mean = sum(labels) / len(labels)
    per_bin = math.sqrt(((1 - 0.875) ** 2 + (0 - 0.125) ** 2) / 2)
    legacy = legacy_rms_calibration_error(p)
    assert legacy == pytest.approx(
        math.sqrt(((label_mean - 0.875) ** 2 + (label_mean - 0.125) ** 2) / 2), abs=1e-15
    )
    assert per_bin == 0.125
    assert legacy >= 0.375


def test_legacy_rms_leaves_the_global_random_state_alone():
    random.seed(7)
    state = random.getstate()
    legacy_rms_calibration_error(np.full(50, 0.3))
    assert random.getstate() == state


# --- correct calibration ------------------------------------------------------------------------


def test_calibration_is_zero_for_a_perfectly_calibrated_predictor():
    for p in ([0.5] * 8, [0.75] * 3 + [0.25]):
        # Second case: bin of 0.75 holds 3 items labelled 1 and one labelled 0 (label mean 0.75);
        # the bin of 0.25 mirrors it.
        assert rms_calibration_error(p) == 0.0
        assert expected_calibration_error(p) == 0.0


def test_calibration_is_one_for_an_always_certain_always_wrong_predictor():
    p = np.zeros(12)
    assert rms_calibration_error(p) == 1.0
    assert expected_calibration_error(p) == 1.0


def test_calibration_weights_bins_by_size():
    # 5 bins. Items: 0.5 (label 1) x2 and 0.5 (label 0) x2 in the middle bin, gap 0, weight 4/6;
    # 0.9 (label 1) gap +0.1 and 0.1 (label 0) gap -0.1, weight 1/6 each.
    p = [0.5, 0.5, 0.9]
    assert rms_calibration_error(p, n_bins=5) == pytest.approx(math.sqrt(2 / 6 * 0.01))
    assert expected_calibration_error(p, n_bins=5) == pytest.approx(2 / 6 * 0.1)


def test_reliability_bins_report_empty_bins_as_count_zero_and_skip_them():
    bins = reliability_bins([0.75] * 4, n_bins=10)
    np.testing.assert_array_equal(bins.count, [0, 0, 4, 0, 0, 0, 0, 4, 0, 0])
    np.testing.assert_allclose(bins.edges, np.arange(11) / 10)
    assert np.isnan(bins.mean_probability[[0, 1, 3, 4, 5, 6, 8, 9]]).all()
    assert np.isnan(bins.mean_label[[0, 1, 3, 4, 5, 6, 8, 9]]).all()
    assert bins.mean_probability[[2, 7]].tolist() == [0.25, 0.75]
    assert bins.mean_label[[2, 7]].tolist() == [0.0, 1.0]
    # Gaps of 0.25 in two bins of equal size; the empty bins add nothing.
    assert rms_calibration_error([0.75] * 4) == 0.25
    assert expected_calibration_error([0.75] * 4) == 0.25


def test_reliability_bins_are_left_closed_with_one_in_the_last_bin():
    bins = reliability_bins([0.25, 1.0], n_bins=4)
    # Items: 0.25 and 1.0 (label 1), 0.75 and 0.0 (label 0).
    np.testing.assert_array_equal(bins.count, [1, 1, 0, 2])
    assert bins.mean_probability[3] == pytest.approx((0.75 + 1.0) / 2)
    assert bins.mean_label[3] == 0.5


@pytest.mark.parametrize("n_bins", [0, -3, 2.5])
def test_reliability_bins_reject_a_bad_bin_count(n_bins):
    with pytest.raises(GeniesError, match="n_bins"):
        reliability_bins([0.5], n_bins=n_bins)


# --- bootstrap ----------------------------------------------------------------------------------


@pytest.fixture
def sample():
    return np.random.default_rng(123).normal(loc=3.0, scale=1.0, size=200)


def test_bootstrap_is_reproducible_by_seed(sample):
    first = bootstrap_ci(sample, seed=5)
    assert first == bootstrap_ci(sample, seed=5)
    assert first != bootstrap_ci(sample, seed=6)


def test_bootstrap_interval_contains_the_point_estimate(sample):
    low, high = bootstrap_ci(sample, n_resamples=1000)
    assert low < sample.mean() < high
    # A normal-theory 95% interval has half-width 1.96 sd / sqrt(n); the bootstrap is close to it.
    half_width = 1.96 * sample.std() / math.sqrt(sample.size)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)


def test_bootstrap_narrows_with_a_lower_level(sample):
    wide = bootstrap_ci(sample, level=0.99, n_resamples=500)
    narrow = bootstrap_ci(sample, level=0.5, n_resamples=500)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_cluster_bootstrap_draws_whole_clusters():
    # Clusters of sizes 1 and 3 with constant values 0 and 1. Two clusters are drawn per
    # resample, so its mean is 0 (a, a), 1 (b, b) or 3/4 (a, b: 3 ones out of 4 values). Drawing
    # single values would give quarters, averaging cluster means would give 1/2.
    values = np.array([0.0, 1.0, 1.0, 1.0])
    groups = np.array(["a", "b", "b", "b"])
    means = bootstrap_means(values, n_resamples=400, seed=3, groups=groups)
    assert set(np.round(means, 12)) == {0.0, 0.75, 1.0}
    assert set(np.round(bootstrap_means(values, n_resamples=400, seed=3), 12)) > {0.25, 0.5}


def test_cluster_bootstrap_interval_is_made_of_cluster_means():
    # Two equal clusters of constant values 0 and 1: a resample's mean is 0, 1/2 or 1.
    values = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    groups = np.array([7, 7, 7, 9, 9, 9])
    low, high = bootstrap_ci(values, n_resamples=500, groups=groups)
    assert (low, high) == (0.0, 1.0)
    # Resampling values instead would give means in steps of 1/6, some strictly inside (0, 1).
    low, high = bootstrap_ci(values, n_resamples=500, level=0.5)
    assert 0 < low < high < 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": []}, "non-empty"),
        ({"values": [1.0, float("nan")]}, "NaN"),
        ({"level": 1.0}, "level"),
        ({"n_resamples": 0}, "n_resamples"),
        ({"groups": [1, 2]}, "groups"),
    ],
)
def test_bootstrap_rejects_bad_input(kwargs, message):
    arguments = {"values": [1.0, 2.0, 3.0], **kwargs}
    with pytest.raises(GeniesError, match=message):
        bootstrap_ci(**arguments)


def test_accuracy_ci_bootstraps_pair_correctness():
    assert accuracy_ci([0.9, 0.8, 0.7]) == (1.0, 1.0)
    assert accuracy_ci([0.5, 0.5], ties="incorrect") == (0.0, 0.0)
    p = np.array([0.9, 0.1] * 50)
    low, high = accuracy_ci(p, seed=3)
    assert low < 0.5 < high
    assert (low, high) == accuracy_ci(p, seed=3)


def test_accuracy_ci_resamples_examples_when_given_them():
    # Example "x" has two right pairs, example "y" two wrong ones: accuracy 0, 1/2 or 1 only.
    low, high = accuracy_ci([0.9, 0.8, 0.2, 0.1], groups=["x", "x", "y", "y"], level=0.5)
    assert {low, high} <= {0.0, 0.5, 1.0}


# --- aggregation over shifts --------------------------------------------------------------------


@pytest.fixture
def shifts():
    return pd.DataFrame(
        {
            "source": ["a", "c", "a", "e", "g"],
            "target": ["b", "d", "b", "f", "h"],
            "label": ["extreme", "probing", "extreme", "probing", "extreme"],
            "category": ["skill", "skill", "skill", "quality", "quality"],
            "accuracy": [0.5, 0.7, 0.1, 0.9, 0.3],
            "de": [0.0, 0.2, 0.9, -0.4, 0.6],
        }
    )


def test_distinct_shifts_drop_repeated_shifts_keeping_the_first(shifts):
    distinct = distinct_shifts(shifts)
    assert list(zip(distinct.source, distinct.target, strict=True)) == [
        ("a", "b"),
        ("c", "d"),
        ("e", "f"),
        ("g", "h"),
    ]
    assert distinct.accuracy.tolist() == [0.5, 0.7, 0.9, 0.3]


def test_mean_over_shifts_counts_each_shift_once(shifts):
    means = mean_over_shifts(shifts, ["accuracy", "de"])
    assert means["accuracy"] == pytest.approx((0.5 + 0.7 + 0.9 + 0.3) / 4)
    assert means["de"] == pytest.approx((0.0 + 0.2 - 0.4 + 0.6) / 4)


def test_mean_by_category_and_label(shifts):
    by_category = mean_by(shifts, "category", ["accuracy"])
    assert by_category.loc["skill", "accuracy"] == pytest.approx((0.5 + 0.7) / 2)
    assert by_category.loc["quality", "accuracy"] == pytest.approx((0.9 + 0.3) / 2)
    by_label = mean_by(shifts, "label", ["de"])
    assert by_label.loc["extreme", "de"] == pytest.approx((0.0 + 0.6) / 2)
    assert by_label.loc["probing", "de"] == pytest.approx((0.2 - 0.4) / 2)


def test_aggregation_rejects_missing_columns(shifts):
    with pytest.raises(GeniesError, match="elicitation"):
        mean_over_shifts(shifts, ["elicitation"])
    with pytest.raises(GeniesError, match="'intervention'"):
        mean_by(shifts, "intervention", ["accuracy"])
    with pytest.raises(GeniesError, match="target"):
        distinct_shifts(shifts.drop(columns="target"))


def test_shift_mean_with_ci_bootstraps_over_shifts():
    values = np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.2, 0.5, 0.45])
    mean, low, high = shift_mean_with_ci(values, seed=1)
    assert mean == pytest.approx(values.sum() / 8)
    assert values.min() <= low < mean < high <= values.max()
    assert (mean, low, high) == shift_mean_with_ci(values, seed=1)
    assert (low, high) != shift_mean_with_ci(values, seed=2)[1:]
