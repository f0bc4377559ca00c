"""The activation-cache methods (mms, lat_stim_1, lat_stim_2, cra, probe, ccs) on synthetic
caches with a known answer: the preferred response's features carry a marker direction in a
few units (heads, residual states) on top of unit-variance noise, so a method must find those
units and follow the marker to wherever it stays, and only there."""

import math
from dataclasses import dataclass, replace

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch

from genies import interventions
from genies.data.pairs import evaluation_pairs, training_pairs
from genies.errors import GeniesError
from genies.evaluation.metrics import pairwise_accuracy
from genies.interventions.base import Features, PairData
from genies.interventions.directions import fit_directions, seeded_parts

LAYERS, HEADS, HEAD_DIM, HIDDEN = 5, 4, 8, 16  # residual states 0..LAYERS; LAYERS is post-norm
STRENGTH = 1.0  # marker length, in noise standard deviations
# the marker's sign per template: the No answer carries it reversed (what CRA and CCS contrast)
TEMPLATE_SIGN = {"raw": 1.0, "lat_stim": 1.0, "yes": 1.0, "no": -1.0}
SEED = 0

METHODS = ["mms", "lat_stim_1", "lat_stim_2", "cra", "probe", "ccs"]
DIRECTION_METHODS = ["mms", "lat_stim_1", "lat_stim_2", "cra"]


@dataclass(frozen=True)
class Marker:
    heads: tuple = ((1, 2), (3, 0))
    layers: tuple = (2, 4, LAYERS)  # LAYERS: the state ccs reads
    sign: float = 1.0


MOVED = Marker(heads=((0, 1), (2, 3)), layers=(1, 3))
REVERSED = Marker(sign=-1.0)
# the planted units each direction method must select (lat never sees the post-norm state)
PLANTED = {
    "mms": set(Marker.heads),
    "cra": set(Marker.heads),
    "lat_stim_1": set(Marker.layers) - {LAYERS},
    "lat_stim_2": set(Marker.layers) - {LAYERS},
}

# one unit marker direction per head and per residual state, shared by every split
_rng = np.random.default_rng(12345)
HEAD_DIRECTIONS = _rng.standard_normal((LAYERS, HEADS, HEAD_DIM))
HEAD_DIRECTIONS /= np.linalg.norm(HEAD_DIRECTIONS, axis=-1, keepdims=True)
LAYER_DIRECTIONS = _rng.standard_normal((LAYERS + 1, HIDDEN))
LAYER_DIRECTIONS /= np.linalg.norm(LAYER_DIRECTIONS, axis=-1, keepdims=True)


def synthetic_split(name: str, counts: list[int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for index, k in enumerate(counts):
        preferred = int(rng.integers(k))
        rows.append(
            {
                "example_id": f"{name}/{index}",
                "prompt": f"prompt {index}",
                "responses": [f"response {index}.{j}" for j in range(k)],
                "scores": [float(j == preferred) for j in range(k)],
                "preferred": preferred,
                "extra": "{}",
            }
        )
    return pd.DataFrame(rows)


def synthetic_caches(split: pd.DataFrame, marker: Marker, seed: int, noise: float = 1.0):
    """Every template's cache of `split`, rows in (example, response) order, float16."""
    examples = np.repeat(np.arange(len(split)), split.responses.map(len))
    positions = np.concatenate([np.arange(len(r)) for r in split.responses])
    truth = np.where(positions == split.preferred.to_numpy()[examples], 1.0, -1.0)
    rng = np.random.default_rng(seed)
    caches = {}
    for template, sign in TEMPLATE_SIGN.items():
        residual = noise * rng.standard_normal((len(examples), LAYERS + 1, HIDDEN))
        heads = noise * rng.standard_normal((len(examples), LAYERS, HEADS, HEAD_DIM))
        shift = STRENGTH * marker.sign * sign * truth[:, None]
        for layer in marker.layers:
            residual[:, layer] += shift * LAYER_DIRECTIONS[layer]
        for layer, head in marker.heads:
            heads[:, layer, head] += shift * HEAD_DIRECTIONS[layer, head]
        tensors = {
            "residual": torch.from_numpy(residual).half(),
            "heads": torch.from_numpy(heads).half(),
            "example_index": torch.from_numpy(examples),
            "response_index": torch.from_numpy(positions),
        }
        metadata = {
            "split": f"synthetic/{template}",
            "residual_layers": list(range(LAYERS + 1)),
            "head_layers": list(range(LAYERS)),
        }
        caches[template] = (tensors, metadata)
    return caches


def swapped(pairs: pd.DataFrame) -> pd.DataFrame:
    """The same pairs with chosen and rejected exchanged."""
    return pairs.rename(
        columns={
            "chosen": "rejected",
            "rejected": "chosen",
            "chosen_position": "rejected_position",
            "rejected_position": "chosen_position",
        }
    )


def settings(name: str, **overrides) -> dict:
    schema = interventions.get(name).hyperparameters
    return {key: value["default"] for key, value in schema.items()} | overrides


def hyperparameters_for(name: str) -> dict:
    """Defaults, but keep exactly as many units as planted, so that selection is checkable."""
    keys = interventions.get(name).hyperparameters
    return settings(name, **{key: 2 for key in ("top_heads", "top_layers") if key in keys})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the pipeline's jobs run (genies --threads): CCS's thousand small
    steps are slower on two threads of a busy two-core machine than on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass
class Family:
    source: PairData  # training pairs of the source
    splits: dict[str, PairData]  # evaluation pairs: in distribution and three targets


@pytest.fixture(scope="module")
def family() -> Family:
    counts = [2 + i % 3 for i in range(300)]  # 2 to 4 responses
    source = synthetic_split("source", counts, seed=1)
    splits = {
        "in_distribution": (synthetic_split("source-test", counts[:200], 2), Marker(), 1.0),
        "kept": (synthetic_split("kept", [3] * 200, 3), Marker(), 1.3),
        "moved": (synthetic_split("moved", [3] * 200, 4), MOVED, 1.0),
        "reversed": (synthetic_split("reversed", [3] * 200, 5), REVERSED, 1.0),
    }
    return Family(
        source=PairData(training_pairs(source, SEED), synthetic_caches(source, Marker(), 10)),
        splits={
            name: PairData(evaluation_pairs(split), synthetic_caches(split, marker, 20 + i, noise))
            for i, (name, (split, marker, noise)) in enumerate(splits.items())
        },
    )


@pytest.fixture(scope="module")
def fitted(family):
    """Every method fitted once on the source."""
    return {
        name: interventions.get(name).fit(family.source, hyperparameters_for(name), SEED)
        for name in METHODS
    }


def accuracy_on(name: str, data: PairData, state) -> float:
    return pairwise_accuracy(interventions.get(name).score(data, hyperparameters_for(name), state))


@pytest.mark.parametrize("name", METHODS)
def test_methods_follow_the_marker_where_it_stays_and_only_there(name, family, fitted):
    accuracies = {
        split: accuracy_on(name, data, fitted[name]) for split, data in family.splits.items()
    }
    assert accuracies["in_distribution"] >= 0.85, accuracies
    assert accuracies["kept"] >= 0.8, accuracies
    # 400 pairs: chance is 0.5 +- 0.075 at 3 standard errors
    assert accuracies["moved"] <= 0.6, accuracies
    assert accuracies["reversed"] <= 0.15, accuracies


@pytest.mark.parametrize("name", METHODS)
def test_scores_are_probabilities(name, family, fitted):
    data = family.splits["kept"]
    p = interventions.get(name).score(data, hyperparameters_for(name), fitted[name])
    assert p.dtype == np.float64 and p.shape == (len(data.pairs),)
    assert np.all((p >= 0) & (p <= 1))


def test_random_baseline_stays_at_chance(family):
    random = interventions.get("random")
    data = family.splits["in_distribution"]
    p = random.score(data, {}, random.fit(data, {}, SEED))
    bound = 3.3 * math.sqrt(0.25 / len(p))  # 99.9% binomial interval
    assert abs(pairwise_accuracy(p) - 0.5) <= bound


@pytest.mark.parametrize("name", DIRECTION_METHODS)
def test_direction_methods_select_the_planted_units(name, fitted):
    state = fitted[name]
    units = {tuple(u) if isinstance(u, list) else u for u in state.tensors["units"].tolist()}
    assert units == PLANTED[name]
    parts = {key: state.info[f"{key}_pairs"] for key in ("train", "validation", "calibration")}
    assert parts == {"train": 150, "validation": 90, "calibration": 60}
    assert state.tensors["directions"].shape == (2, HEAD_DIM if name in ("mms", "cra") else HIDDEN)


@pytest.mark.parametrize("name", METHODS)
def test_scores_are_antisymmetric(name, family, fitted):
    method, hyperparameters = interventions.get(name), hyperparameters_for(name)
    data = family.splits["kept"]
    p = method.score(data, hyperparameters, fitted[name])
    reverse = method.score(replace(data, pairs=swapped(data.pairs)), hyperparameters, fitted[name])
    np.testing.assert_allclose(reverse, 1 - p, rtol=0, atol=1e-12)
    assert not np.allclose(p, 0.5)  # not trivially antisymmetric


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_same_state_and_scores(name, family, fitted):
    method, hyperparameters = interventions.get(name), hyperparameters_for(name)
    again = method.fit(family.source, hyperparameters, SEED)
    assert again.tensors.keys() == fitted[name].tensors.keys()
    for key, tensor in fitted[name].tensors.items():
        assert torch.equal(tensor, again.tensors[key]), key
    data = family.splits["kept"]
    first = method.score(data, hyperparameters, fitted[name])
    assert np.array_equal(first, method.score(data, hyperparameters, again))


def test_held_out_parts_are_seeded_exact_disjoint_and_independent_of_row_order(family):
    pairs = family.source.pairs
    fractions = {"validation": 0.3, "calibration": 0.2}
    parts = seeded_parts(pairs, SEED, fractions)
    assert parts.value_counts().to_dict() == {"train": 150, "validation": 90, "calibration": 60}
    by_id = dict(zip(pairs.example_id, parts, strict=True))
    shuffled = pairs.sample(frac=1, random_state=3)
    again = seeded_parts(shuffled, SEED, fractions)
    assert dict(zip(shuffled.example_id, again, strict=True)) == by_id
    other = seeded_parts(pairs, SEED + 1, fractions)
    assert dict(zip(pairs.example_id, other, strict=True)) != by_id
    # the validation part does not depend on whether a calibration part is also held out
    alone = seeded_parts(pairs, SEED, {"validation": 0.3})
    assert (alone == "validation").equals(parts == "validation")


@pytest.mark.parametrize("name", DIRECTION_METHODS)
def test_directions_come_from_the_train_part_and_the_slope_from_the_calibration_part(
    name, family, fitted
):
    """Reversing the calibration pairs' labels must reverse the slope alone: units and
    directions are fitted on the other parts (upstream calibrated on the validation pairs and
    averaged directions over train and validation)."""
    method, hyperparameters = interventions.get(name), hyperparameters_for(name)
    parts = seeded_parts(family.source.pairs, SEED, {"validation": 0.3, "calibration": 0.2})
    pairs = family.source.pairs.copy()
    calibration = (parts == "calibration").to_numpy()
    pairs[calibration] = swapped(pairs[calibration])[pairs.columns].to_numpy()
    state = method.fit(replace(family.source, pairs=pairs), hyperparameters, SEED)
    original = fitted[name]
    assert torch.equal(state.tensors["units"], original.tensors["units"])
    assert torch.equal(state.tensors["directions"], original.tensors["directions"])
    assert original.tensors["calibration_slope"] > 0 > state.tensors["calibration_slope"]
    # the directions are the train part's mass means, computed here independently
    features = method.unit_features(family.source, hyperparameters)
    train = (parts == "train").to_numpy()
    where = [features.units.index(u) for u in map(unit_name, original.tensors["units"].tolist())]
    difference = features.chosen[train][:, where].astype(np.float64) - features.rejected[train][
        :, where
    ].astype(np.float64)
    np.testing.assert_allclose(original.tensors["directions"], difference.mean(axis=0), atol=1e-9)


def unit_name(unit):
    return tuple(unit) if isinstance(unit, list) else unit


def test_units_tied_on_validation_accuracy_are_ranked_by_log_loss():
    """Four units that each separate every validation pair: the least noisy (the last) must
    win, where the old rule gave the tie to the first."""
    rng = np.random.default_rng(0)
    noise = np.array([0.5, 0.4, 0.3, 0.05])  # unit 3 separates the responses most clearly
    pairs = 40
    chosen = 1 + noise[None, :, None] * rng.standard_normal((pairs, 4, 1))
    rejected = -1 + noise[None, :, None] * rng.standard_normal((pairs, 4, 1))
    parts = pd.Series(["train"] * 30 + ["validation"] * 5 + ["calibration"] * 5)
    state = fit_directions(Features(chosen, rejected, [0, 1, 2, 3]), parts, top=1)
    assert [u["validation_accuracy"] for u in state.info["selected_units"]] == [1.0]
    assert state.tensors["units"].tolist() == [3]


def test_small_held_out_parts_are_warned_in_one_line(family, capsys):
    small = replace(family.source, pairs=family.source.pairs.iloc[:12])
    interventions.get("mms").fit(small, hyperparameters_for("mms"), SEED)
    [line] = capsys.readouterr().err.splitlines()
    assert "mms: only 3 validation pair(s), 2 calibration pair(s)" in line


def test_ccs_scores_a_pair_from_source_statistics_alone(family, fitted):
    """With the target's own statistics (upstream), a pair's score would change with the other
    pairs scored beside it."""
    ccs, hyperparameters = interventions.get("ccs"), hyperparameters_for("ccs")
    data = family.splits["kept"]
    every = ccs.score(data, hyperparameters, fitted["ccs"])
    few = data.pairs.example_index < 20  # a subset with other statistics than the whole
    alone = ccs.score(replace(data, pairs=data.pairs[few]), hyperparameters, fitted["ccs"])
    assert np.array_equal(alone, every[few.to_numpy()])
    # the stored normalisation is the source's: its Yes features' mean
    source_yes = family.source.features("yes", "residual")
    both = np.concatenate([source_yes.chosen[:, -1], source_yes.rejected[:, -1]])
    np.testing.assert_allclose(
        fitted["ccs"].tensors["yes_mean"].numpy(), both.mean(axis=0, dtype=np.float64)
    )


def test_ccs_sign_follows_the_source_labels(family, fitted):
    """The same source responses with the labels exchanged: the unsupervised probe is the same
    (up to the order of sums), so only the sign, taken from the labels, may differ."""
    ccs, hyperparameters = interventions.get("ccs"), hyperparameters_for("ccs")
    relabelled = replace(family.source, pairs=swapped(family.source.pairs))
    state = ccs.fit(relabelled, hyperparameters, SEED)
    assert state.info["flipped"] != fitted["ccs"].info["flipped"]
    weights = fitted["ccs"].tensors["weights"].numpy()
    np.testing.assert_allclose(state.tensors["weights"].numpy(), -weights, atol=1e-3)
    target = family.splits["in_distribution"]
    assert accuracy_on("ccs", target, fitted["ccs"]) >= 0.85
    assert accuracy_on("ccs", target, state) <= 0.15


def test_unit_counts_are_capped_by_the_model(family):
    mms = interventions.get("mms")
    state = mms.fit(family.source, settings("mms", top_heads=100), SEED)
    assert state.info["units_requested"] == 100
    assert state.info["units_kept"] == state.info["units_available"] == LAYERS * HEADS
    assert state.tensors["units"].shape == (LAYERS * HEADS, 2)
    lat = interventions.get("lat_stim_1").fit(family.source, settings("lat_stim_1"), SEED)
    assert lat.info["units_kept"] == LAYERS  # the default 16, capped; the post-norm state left out
    assert LAYERS not in lat.tensors["units"].tolist()


@pytest.mark.parametrize(
    "name, bad",
    [
        ("mms", {"top_heads": 0}),
        ("lat_stim_1", {"top_layers": 0}),
        ("cra", {"validation_fraction": 1.0}),
        ("probe", {"C": 0}),
        ("ccs", {"layer": -2}),
        ("ccs", {"restarts": 0}),
    ],
)
def test_hyperparameter_schemas_refuse_bad_values(name, bad):
    schema = {"type": "object", "properties": interventions.get(name).hyperparameters}
    jsonschema.validate(settings(name), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(settings(name, **bad), schema)


def test_bad_inputs_raise_one_line_errors(family, fitted):
    tiny = synthetic_split("tiny", [2, 3, 2, 2], seed=6)  # 4 pairs: floor(0.8) = 0 to calibrate
    tiny_data = PairData(training_pairs(tiny, SEED), synthetic_caches(tiny, Marker(), 7))
    with pytest.raises(GeniesError, match="leave an empty calibration part"):
        interventions.get("mms").fit(tiny_data, hyperparameters_for("mms"), SEED)
    every = settings("cra", validation_fraction=0.6, calibration_fraction=0.4)
    with pytest.raises(GeniesError, match="hold out every training pair"):
        interventions.get("cra").min_examples(every)

    data = family.splits["kept"]
    tensors, metadata = data.activations["yes"]
    only_final = {**tensors, "residual": tensors["residual"][:, -1:]}
    final_data = replace(
        data,
        activations={
            **data.activations,
            "yes": (only_final, {**metadata, "residual_layers": [LAYERS]}),
            "raw": (only_final, {**metadata, "residual_layers": [LAYERS]}),
        },
    )
    with pytest.raises(GeniesError, match="ccs layer 2: not in the yes activation cache"):
        interventions.get("ccs").score(final_data, settings("ccs", layer=2), fitted["ccs"])
    with pytest.raises(GeniesError, match="LAT needs all of them"):
        interventions.get("lat_stim_1").fit(final_data, hyperparameters_for("lat_stim_1"), SEED)
    with pytest.raises(GeniesError, match="not in the activation cache"):
        interventions.get("probe").score(final_data, settings("probe"), fitted["probe"])
