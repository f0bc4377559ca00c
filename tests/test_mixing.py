"""Data mixing (genies.data.mixing): the seeded draw of target examples, the config checks, a
fit on the source's pairs followed by the drawn target's (genies.interventions.jobs.followed_by)
on synthetic caches whose answer is known (the source's preferred responses carry no marker, the
target's do, so only a fit that reads the target's own rows can follow it), and the means over
shifts of the mixing table."""

import hashlib
from dataclasses import replace

import pandas as pd
import pytest

from genies import interventions
from genies.config import validate_config
from genies.data.mixing import draw_mixed, mixed_count, mixed_source, parse_mixed_source
from genies.data.pairs import evaluation_pairs, training_pairs
from genies.errors import GeniesError
from genies.evaluation.metrics import pairwise_accuracy
from genies.evaluation.mixing_table import mixing_means
from genies.interventions.base import PairData
from genies.interventions.jobs import followed_by
from tests.test_representation_methods import (
    SEED,
    Marker,
    hyperparameters_for,
    synthetic_caches,
    synthetic_split,
)

UNMARKED = Marker(heads=(), layers=())


def test_a_fraction_rounds_down_and_may_draw_none():
    assert [mixed_count(f, 10) for f in (0.01, 0.05, 0.25, 0.35, 0.5)] == [0, 0, 2, 3, 5]
    assert mixed_count(0.05, 32) == 1 and mixed_count(0.1, 32) == 3 and mixed_count(0.35, 32) == 11
    assert mixed_count(0.29, 100) == 29  # not floor(28.999999999999996)


def test_the_draw_is_the_seeded_ranking_and_a_larger_fraction_keeps_a_smaller_ones():
    target = synthetic_split("target", [2] * 40, seed=1)
    ranked = sorted(target.example_id, key=lambda e: hashlib.sha256(f"7/{e}".encode()).hexdigest())
    small = draw_mixed(target, 0.1, 7, "target")
    large = draw_mixed(target, 0.35, 7, "target")
    assert set(small.example_id) == set(ranked[:4])
    assert set(large.example_id) == set(ranked[:14])
    assert list(large.example_id) == [e for e in target.example_id if e in set(ranked[:14])]
    assert set(draw_mixed(target, 0.35, 8, "target").example_id) != set(large.example_id)
    with pytest.raises(GeniesError, match=r"target: a mixing fraction of 0.01 of 40 training"):
        draw_mixed(target, 0.01, 7, "target")


def test_a_mixed_fit_is_filed_by_source_target_and_fraction():
    name = mixed_source("alpaca_mmlu", "wrong_arc", 0.1)
    assert name == "alpaca_mmlu+wrong_arc@0.1"
    assert parse_mixed_source(name) == ("alpaca_mmlu", "wrong_arc", 0.1)
    assert parse_mixed_source("alpaca_mmlu") is None


def mixed_data(fraction: float):
    """(the source's PairData, the drawn target's, the source followed by the target, the target's
    test PairData): the source carries no marker, the target the usual one."""
    source = synthetic_split("source", [2] * 200, seed=1)
    source_data = PairData(training_pairs(source, SEED), synthetic_caches(source, UNMARKED, 10))
    target = synthetic_split("target", [2] * 200, seed=2)
    drawn = draw_mixed(target, fraction, SEED, "target")
    pairs = training_pairs(target, SEED)
    pairs = pairs[pairs.example_id.isin(drawn.example_id)].reset_index(drop=True)
    more = PairData(pairs, synthetic_caches(target, Marker(), 11))
    test = synthetic_split("target-test", [2] * 200, seed=3)
    test_data = PairData(evaluation_pairs(test), synthetic_caches(test, Marker(), 12))
    return source_data, more, followed_by(source_data, more, len(source)), test_data


@pytest.mark.parametrize("name", ["probe", "mms"])
def test_a_fit_with_the_target_mixed_in_follows_the_target_marker(name):
    method, settings = interventions.get(name), hyperparameters_for(name)
    source, _, mixed, test = mixed_data(0.35)
    assert len(mixed.pairs) == 200 + 70

    def accuracy(data):
        return pairwise_accuracy(method.score(test, settings, method.fit(data, settings, SEED)))

    # 200 pairs: chance is 0.5 +- 0.11 at 3 standard errors
    assert accuracy(source) <= 0.65
    assert accuracy(mixed) >= 0.75  # measured: 0.84 (probe), 0.835 (mms)


def test_the_joined_pairs_read_their_own_rows():
    source, more, mixed, _ = mixed_data(0.35)
    for template in ("raw", "yes"):
        joined = mixed.features(template, "heads")
        for part, alone in ((slice(None, 200), source), (slice(200, None), more)):
            own = alone.features(template, "heads")
            assert (joined.chosen[part] == own.chosen).all()
            assert (joined.rejected[part] == own.rejected).all()
    assert list(mixed.pairs.example_id) == [*source.pairs.example_id, *more.pairs.example_id]


def test_caches_of_other_layers_are_refused():
    source, _, _, _ = mixed_data(0.35)
    tensors, metadata = source.activations["raw"]
    other = replace(source, activations={"raw": (tensors, metadata | {"head_layers": [0]})})
    with pytest.raises(GeniesError, match=r"its raw cache holds head_layers \[0\]"):
        followed_by(source, other, 200)


def config(**mixing) -> dict:
    return {
        "shifts": ["alpaca_short->alpaca_long"],
        "models": ["tiny-llama"],
        "interventions": ["zero_shot", "mms", "random"],
        "max_examples": {"train": 20, "test": 6},
        "mixing": mixing,
    }


def test_the_config_refuses_bad_mixing_in_one_line():
    resolved = validate_config(config(fractions=[0.5, 0.1]))
    assert resolved.mixing == {"fractions": [0.1, 0.5], "interventions": ["mms"]}
    assert validate_config(config()).mixing == {"fractions": [], "interventions": ["mms"]}
    bad = [
        ({"fractions": [1.0]}, r"config: mixing.fractions\[0\]"),
        ({"fractions": [0.0]}, r"config: mixing.fractions\[0\]"),
        ({"fractions": [0.02]}, r"0.02 of alpaca_long's 20 training examples draws none"),
        ({"fractions": [0.1], "interventions": ["random"]}, r"'random' learns nothing"),
        ({"fractions": [0.1], "interventions": ["probe"]}, r"'probe' is not among the configured"),
    ]
    for mixing, message in bad:
        with pytest.raises(GeniesError, match=message):
            validate_config(config(**mixing))


def mixing_rows(source, target, plain, mixed, examples=10):
    """A shift's rows of a mixing table: the plain accuracy (fraction 0) and one mixed fraction."""
    shift = {"model": "m", "intervention": "mms", "source": source, "target": target}
    return [
        shift
        | {"fraction": fraction, "generalization_accuracy": acc}
        | {"target_examples": examples}
        for fraction, acc in ((0.0, plain), (0.1, mixed))
    ]


def test_mixing_means_pair_each_shift_with_itself_and_resample_sources():
    # gains 0.0 and 0.4 on source a's shifts, 1.0 on b's, over unequal plain accuracies
    table = pd.DataFrame(
        mixing_rows("a", "x", 0.5, 0.5)
        + mixing_rows("a", "y", 0.2, 0.6)
        + mixing_rows("b", "z", 0.0, 1.0)
    )
    means = mixing_means(table, {"seed": 0, "resamples": 2000, "level": 0.95})
    mixed = means[means.fraction == 0.1].iloc[0]
    assert mixed.shifts == 3 and mixed.target_examples == 30
    assert mixed.generalization_accuracy == pytest.approx((0.5 + 0.6 + 1.0) / 3)
    assert mixed.accuracy_gain == pytest.approx((0.0 + 0.4 + 1.0) / 3)
    # Resampling sources, a resample holds a's two shifts (mean 0.2), b's one (1.0) or both
    # (1.4 / 3), each of the first two with probability 1/4: the 95% interval spans exactly
    # [0.2, 1.0]. Resampling single shifts would reach a's 0.0.
    assert (mixed.accuracy_gain_low, mixed.accuracy_gain_high) == pytest.approx((0.2, 1.0))
    plain = means[means.fraction == 0.0].iloc[0]
    assert (plain.accuracy_gain, plain.accuracy_gain_low, plain.accuracy_gain_high) == (0, 0, 0)
