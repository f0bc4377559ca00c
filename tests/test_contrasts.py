"""Paired contrasts between interventions (genies.evaluation.contrasts), against computations
written out here: counts, exact sign-rank enumeration, Holm by hand, the source clustering."""

import itertools

import numpy as np
import pandas as pd
import pytest

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.evaluation.contrasts import (
    contrast_summary,
    default_contrasts,
    holm,
    paired_differences,
    shift_contrasts,
    sign_flip_p,
    wilcoxon_p,
)

DEFAULT = [
    "zero_shot", "few_shot", "lora_fine_tuning", "prompt_tuning", "mms", "lat_stim_1",
    "lat_stim_2", "cra", "ccs", "probe", "random",
]  # fmt: skip
BOOTSTRAP = {"seed": 0, "resamples": 2000, "level": 0.95}


def test_the_default_contrasts_of_the_eleven_interventions():
    trained = DEFAULT[1:-1]
    contrasts = default_contrasts(DEFAULT, trained)
    unordered = {frozenset(pair) for pair in contrasts}
    assert len(contrasts) == len(unordered) == 9 + 10 + 36  # vs zero_shot, vs random, pairs
    assert ("zero_shot", "random") in contrasts
    for name in trained:
        assert (name, "zero_shot") in contrasts and (name, "random") in contrasts
    assert ("lora_fine_tuning", "mms") in contrasts  # earlier in the config minus later
    assert default_contrasts(["mms", "zero_shot"], ["mms"]) == [("mms", "zero_shot")]


def evaluation(probabilities, examples=None, order=None):
    n = len(probabilities)
    frame = pd.DataFrame(
        {
            "pair_id": [f"p{i}" for i in range(n)],
            "example_id": examples or [f"e{i}" for i in range(n)],
            "probability": probabilities,
        }
    )
    return frame if order is None else frame.iloc[order].reset_index(drop=True)


def test_pairs_are_matched_by_id_and_other_pairs_are_refused():
    first = evaluation([0.9, 0.2, 0.5, 0.7])
    second = evaluation([0.1, 0.8, 0.6, 0.5], order=[3, 1, 0, 2])  # stored in another order
    difference, examples = paired_differences(first, second, "half", "a and b")
    assert list(difference) == [1.0, -1.0, -0.5, 0.5]  # 1-0, 0-1, .5-1, 1-.5
    assert list(examples) == ["e0", "e1", "e2", "e3"]
    with pytest.raises(GeniesError, match="a and b: scored on different pairs"):
        paired_differences(first, second.iloc[:3], "half", "a and b")


def shift_table(model="m"):
    """Three shifts, two from source s1: per shift the tidy rows of methods a and b."""
    rows = []
    for source, target, capability in [("s1", "t1", 0.8), ("s1", "t2", 0.5), ("s2", "t3", 1.0)]:
        for intervention in ("a", "b"):
            rows.append(
                {
                    "model": model,
                    "intervention": intervention,
                    "source": source,
                    "target": target,
                    "target_tuned_capability": capability,
                    "genies_position": 1,
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def test_a_shift_contrast_is_the_accuracy_difference_with_its_de(tmp_path):
    rng = np.random.default_rng(1)
    scores = {}
    for target in ("t1", "t2", "t3"):
        a = rng.uniform(size=40)
        b = np.where(rng.uniform(size=40) < 0.9, a, rng.uniform(size=40))  # mostly the same
        scores["a", target], scores["b", target] = a, b
    tidy = shift_table()
    rows = shift_contrasts(
        tidy,
        lambda model, name, source, target: evaluation(scores[name, target]),
        [("a", "b")],
        "half",
        BOOTSTRAP,
        lambda *names: "/".join(names),
    )
    assert len(rows) == 3
    for row in rows.itertuples():
        a, b = scores["a", row.target], scores["b", row.target]
        accuracy = np.mean(a > 0.5) - np.mean(b > 0.5)  # no ties among uniform draws
        assert row.accuracy_difference == pytest.approx(accuracy)
        capability = tidy[tidy.target == row.target].target_tuned_capability.iloc[0]
        assert row.de_difference == pytest.approx(accuracy / capability)
        assert row.de_difference_low == pytest.approx(row.accuracy_difference_low / capability)
        assert row.accuracy_difference_low <= accuracy <= row.accuracy_difference_high
        # paired: under half the width of an unpaired difference's normal interval
        unpaired = 2 * 1.96 * np.sqrt(np.var(a > 0.5) / 40 + np.var(b > 0.5) / 40)
        assert row.accuracy_difference_high - row.accuracy_difference_low < unpaired / 2


def test_a_method_better_on_every_pair_is_resolved_per_shift():
    tidy = shift_table()
    scores = {"a": [0.9] * 30, "b": [0.1] * 30}
    rows = shift_contrasts(
        tidy,
        lambda model, name, source, target: evaluation(scores[name]),
        [("a", "b"), ("b", "a")],
        "half",
        BOOTSTRAP,
        lambda *names: "/".join(names),
    )
    assert set(rows.better) == {"a"}


def exact_signed_rank_p(values) -> float:
    """Two-sided exact Wilcoxon p by enumerating every sign assignment (no ties, no zeros)."""
    magnitudes = np.abs(values)
    ranks = np.argsort(np.argsort(magnitudes)) + 1
    observed = ranks[values > 0].sum()
    total = ranks.sum()
    statistics = [
        sum(r for r, sign in zip(ranks, signs, strict=True) if sign)
        for signs in itertools.product([0, 1], repeat=len(values))
    ]
    extreme = min(observed, total - observed)
    return min(1.0, 2 * np.mean([s <= extreme for s in statistics]))


def test_wilcoxon_p_is_the_exact_signed_rank_p():
    values = np.array([0.31, -0.05, 0.12, 0.44, 0.27, -0.18, 0.09, 0.36])
    assert wilcoxon_p(values) == pytest.approx(exact_signed_rank_p(values))
    assert wilcoxon_p(np.zeros(5)) == 1.0


def test_holm_by_hand():
    # sorted: .005 x4 = .02, .01 x3 = .03, .03 x2 = .06, .04 x1 = .04 -> monotone .06
    assert list(holm([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(holm([0.02, 0.3])) == pytest.approx([0.04, 0.3])
    assert list(holm([0.5, 0.9])) == [1.0, 1.0]  # 0.5 x 2 caps, and the larger p follows


def test_the_sign_flip_p_by_hand():
    # four sources of one sign: only all + and all - reach the observed |sum|, 2 of 16 flips
    same = np.array([0.1, 0.2, 0.3, 0.4])
    assert sign_flip_p(same, ["s1", "s2", "s3", "s4"], BOOTSTRAP) == 2 / 16
    # sums 0.3, -0.1, 0.05 (s1's two shifts move together): |sum| >= 0.25 for
    # +-(0.3 - 0.1 + 0.05), +-(0.3 + 0.1 + 0.05), +-(0.3 + 0.1 - 0.05): 6 of 8
    mixed = np.array([0.1, 0.2, -0.1, 0.05])
    assert sign_flip_p(mixed, ["s1", "s1", "s2", "s3"], BOOTSTRAP) == 6 / 8
    # flipped shift by shift instead, the same values would reach only 2 of 16
    assert sign_flip_p(same, ["s1", "s1", "s1", "s1"], BOOTSTRAP) == 1.0
    # beyond EXACT_FLIPS_UP_TO sources: seeded random flips, +1 each side of the ratio
    many = np.full(20, 0.1)
    assert sign_flip_p(many, [f"s{i}" for i in range(20)], BOOTSTRAP) == 1 / 2001


def summary_input(values: dict[tuple[str, str], float], better: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": "m",
                "first": "a",
                "second": "b",
                "source": source,
                "target": target,
                "genies_position": 1,
                "de_difference": value,
                "accuracy_difference": value,
                "better": better.get((source, target), ""),
            }  # fmt: skip
            for (source, target), value in values.items()
        ]
    )


def test_the_summary_resamples_sources_not_shifts():
    one_each = {(f"s{i}", f"t{i}"): v for i, v in enumerate([0.3, -0.1, 0.2, 0.05, 0.15])}
    # every source with three shifts of its value: a cluster bootstrap sees the same sources
    tripled = {
        (source, f"{target}{k}"): value
        for (source, target), value in one_each.items()
        for k in range(3)
    }
    summary = contrast_summary(summary_input(one_each, {("s0", "t0"): "a"}), BOOTSTRAP)
    again = contrast_summary(summary_input(tripled, {}), BOOTSTRAP)
    row, tripled_row = summary.iloc[0], again.iloc[0]
    assert row.de_difference == pytest.approx(np.mean(list(one_each.values())))
    assert (tripled_row.de_difference_low, tripled_row.de_difference_high) == pytest.approx(
        (row.de_difference_low, row.de_difference_high)
    )
    assert tripled_row.shifts == 15 and row.shifts_first_better == 1
    # resampling shifts as if independent would narrow the interval of the tripled table
    assert row.p_wilcoxon > tripled_row.p_wilcoxon


def test_holm_runs_over_each_models_contrasts():
    frames = []
    for model, shift in [("m1", 0.0), ("m2", 0.0)]:
        # 8 sources: a's p is 2/2^8, doubled by Holm 0.016; c's mixed signs stay unresolved
        for first, values in [
            ("a", [0.3, 0.2, 0.25, 0.1] * 2),
            ("c", [0.1, -0.1, 0.05, -0.02] * 2),
        ]:
            frame = summary_input({(f"s{i}", f"t{i}"): v + shift for i, v in enumerate(values)}, {})
            frames.append(frame.assign(model=model, first=first))
    summary = contrast_summary(pd.concat(frames, ignore_index=True), BOOTSTRAP)
    for _, group in summary.groupby("model"):
        assert list(group.p_sign_flip_holm) == pytest.approx(list(holm(group.p_sign_flip)))
        assert group.p_sign_flip_holm.iloc[0] == pytest.approx(2 * 2 / 2**8)
    assert list(summary.resolved) == ["a", "", "a", ""]
    assert list(summary.resolved_holm) == ["a", "", "a", ""]


def test_the_forest_plot_has_a_row_per_contrast_and_a_panel_per_model():
    from genies.figures.contrasts import contrast_forest

    rows = [
        {
            "model": model,
            "first": first,
            "second": "zero_shot",
            "de_difference": mean,
            "de_difference_low": mean - 0.1,
            "de_difference_high": mean + 0.1,
            "resolved": first if mean > 0.1 else "",
            "resolved_holm": "",
        }  # fmt: skip
        for model in ("m1", "m2")
        for first, mean in (("mms", 0.2), ("lora_fine_tuning", 0.05), ("cra", -0.01))
    ]
    figure = contrast_forest(pd.DataFrame(rows))
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["m1", "m2"]
    labels = [label.get_text() for label in axes[0].get_yticklabels()]
    assert labels == ["mms - zero_shot", "lora_fine_tuning - zero_shot", "cra - zero_shot"]
    filled, hollow = axes[0].collections[-2:]  # the resolved point, then the others
    assert len(filled.get_offsets()) == 1 and len(hollow.get_offsets()) == 2


def test_methods_differing_by_a_constant_get_a_narrow_paired_interval():
    """Per-shift accuracies varying widely over 8 shifts (8 sources), A right on 2 more of the
    20 pairs than B everywhere: the paired interval is that constant, 0.1, while each method's
    own mean over the same sources has a wide interval."""
    correct_b = [2, 18, 5, 15, 9, 11, 3, 16]
    tidy = pd.DataFrame(
        [
            {
                "model": "m",
                "intervention": name,
                "source": f"s{i}",
                "target": f"t{i}",
                "target_tuned_capability": 1.0,
                "genies_position": i + 1,
            }  # fmt: skip
            for i in range(len(correct_b))
            for name in ("a", "b")
        ]
    )

    def scores(model, name, source, target):
        correct = correct_b[int(target[1:])] + (2 if name == "a" else 0)
        return evaluation([0.9] * correct + [0.1] * (20 - correct))

    shifts = shift_contrasts(tidy, scores, [("a", "b")], "half", BOOTSTRAP, lambda *n: "")
    row = contrast_summary(shifts, BOOTSTRAP).iloc[0]
    assert (row.accuracy_difference_low, row.accuracy_difference_high) == pytest.approx((0.1, 0.1))
    sources = shifts.source.to_numpy()
    for extra in (2, 0):
        own = (np.array(correct_b) + extra) / 20
        _, low, high = metrics.shift_mean_with_ci(own, 0, 2000, 0.95, groups=sources)
        assert high - low > 0.3
