"""Mass-mean directions on a few units, the pipeline that mms, lat_stim_1, lat_stim_2 and cra share
(upstream's `mms`, `lat` and `cra` folders, SPEC 4.5 to 4.8). The methods differ only in their
features: a unit is an attention head or a residual hidden state, and each response has one
feature vector per unit.

Fitting on the source's training pairs (one pair per example):
1. a seeded split into three disjoint parts: exactly floor(validation_fraction * n) validation
   pairs, then floor(calibration_fraction * n) calibration pairs, taken in turn from the pairs
   sorted on a blake2b hash of (seed, example_id), so the split does not depend on the order of
   the pairs; the rest form the train part;
2. per unit, a logistic probe (sklearn, C = 1, max_iter 1000 as upstream) on the train part's
   responses, labelled 1 for preferred and 0 for dispreferred, scored by its accuracy on the
   validation part's responses;
3. the k units with the best validation accuracy are kept (k capped by the number of units;
   ties go to the lower validation log loss, then to the earlier unit);
4. per kept unit u, the direction d_u = mean feature of the preferred responses minus mean of
   the dispreferred ones, over the train part;
5. the score of a pair (A, B) is s = 1/2 (1 + m), with m the mean over kept units of
   cos(f_u(B) - f_u(A), d_u): an estimate of P(B preferred);
6. calibration: a 1-D logistic regression s -> P fitted on the calibration part.
An evaluation pair's probability is the calibrated P with B = chosen and A = rejected. Each part
is used once, so neither the ranking of units nor the calibration is fitted on the pairs it is
judged on; a part of fewer than FEW_PAIRS pairs gets a one-line warning (its estimate is noise).

Differences from upstream, each a fix:
- the split is seeded and independent of row order (upstream: numpy's global seed, set after
  the split in cra, so cra's split was not reproducible);
- upstream ranked units, and fitted the calibration, on the same validation pairs, and averaged
  directions over train and validation pairs: calibration was in-sample, and at small counts
  the ranking was all ties, broken toward the first units;
- each unit's features are standardised with the train part's statistics before its probe: the
  L2 penalty acts on raw activations, whose scales differ by orders of magnitude between units
  (a head or layer with large activations was barely regularised, one with small activations
  heavily), so the ranking of units depended on their scale rather than on what they encode;
- calibration is fitted on both orientations of every calibration pair, (s, 1) and (1 - s, 0),
  where upstream alternated the orientation. On such symmetric data the fitted intercept is
  exactly -slope / 2, so the model is P = sigmoid(b (2s - 1)) = sigmoid(b m), which we fit
  without an intercept: P(A preferred) = 1 - P(B preferred) holds exactly, not to the solver's
  tolerance. Upstream's fit was unregularised; ours has C = 1e4, so that a source whose
  calibration pairs are perfectly separated gives a finite slope instead of running lbfgs to
  its iteration cap;
- upstream shuffled the pair order (unseeded) to decide which response was A; the calibrated
  score is antisymmetric, so the orientation carries no information and nothing is shuffled.
"""

import math
import sys
from fractions import Fraction
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from genies.data.pairs import seeded_choice
from genies.errors import GeniesError
from genies.interventions.base import Features, Intervention, PairData, State

HASH_RANGE = 2**64
UNIT_PROBE = {"C": 1.0, "max_iter": 1000}  # upstream's per-unit LogisticRegression
CALIBRATION_C = 1e4

FEW_PAIRS = 5  # fewer pairs in a validation or calibration part: warned, the estimate is noise
VALIDATION_FRACTION = {
    "type": "number",
    "exclusiveMinimum": 0,
    "exclusiveMaximum": 1,
    "default": 0.3,
    "description": "Share of the source's training pairs held out to rank units (or layers).",
}
CALIBRATION_FRACTION = {
    "type": "number",
    "exclusiveMinimum": 0,
    "exclusiveMaximum": 1,
    "default": 0.2,
    "description": "Share of the source's training pairs held out to calibrate the scores.",
}

HELD_OUT = {
    "validation_fraction": VALIDATION_FRACTION,
    "calibration_fraction": CALIBRATION_FRACTION,
}


def part_count(n: int, fraction: float) -> int:
    return math.floor(Fraction(str(fraction)) * n)  # exact: 0.3 * 10 is 3, not 2.999...


def part_sizes(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Pairs per held-out part, in order, and the train part's (the rest)."""
    sizes = {name: part_count(n, fraction) for name, fraction in fractions.items()}
    return sizes | {"train": n - sum(sizes.values())}


def held_out_fractions(hyperparameters: dict) -> dict[str, float]:
    """The parts a method holds out, by the fraction keys its hyper-parameters have."""
    return {
        part: hyperparameters[f"{part}_fraction"]
        for part in ("validation", "calibration")
        if f"{part}_fraction" in hyperparameters
    }


def fewest_pairs(fractions: dict[str, float]) -> int:
    """The fewest training pairs that leave every part at least one pair."""
    if sum(fractions.values()) >= 1:
        raise GeniesError(
            " + ".join(f"{part}_fraction {value}" for part, value in fractions.items())
            + " hold out every training pair: their sum must be below 1"
        )
    n = 2
    while min(part_sizes(n, fractions).values()) < 1:
        n += 1
    return n


def seeded_parts(pairs: pd.DataFrame, seed: int, fractions: dict[str, float]) -> pd.Series:
    """The part of each pair: floor(fraction * n) pairs per held-out part, taken in turn from the
    pairs ordered by a seeded hash of their example id (salted, so it is not the hash that drew
    the pair's response), the rest "train"."""
    n = len(pairs)
    sizes = part_sizes(n, fractions)
    if min(sizes.values()) < 1:
        raise GeniesError(
            f"{n} training pairs with "
            + ", ".join(f"{part}_fraction {value}" for part, value in fractions.items())
            + " leave an empty "
            + " or ".join(part for part, size in sizes.items() if size < 1)
            + " part; use more examples"
        )
    keys = [
        (seeded_choice(seed, f"validation:{example_id}", HASH_RANGE), example_id)
        for example_id in pairs.example_id
    ]
    order = sorted(range(n), key=keys.__getitem__)
    parts = np.full(n, "train", dtype=object)
    start = 0
    for part in fractions:
        parts[order[start : start + sizes[part]]] = part
        start += sizes[part]
    return pd.Series(parts, index=pairs.index)


def warn_if_few(method: str, sizes: dict[str, int]) -> None:
    few = {part: size for part, size in sizes.items() if part != "train" and size < FEW_PAIRS}
    if few:
        print(
            f"{method}: only "
            + ", ".join(f"{size} {part} pair(s)" for part, size in few.items())
            + f" (fewer than {FEW_PAIRS}): their estimates are noise; use more examples",
            file=sys.stderr,
        )


def standardisation(values: np.ndarray, axis=0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over `axis`; a constant dimension gets scale 1."""
    mean = values.mean(axis=axis)
    scale = values.std(axis=axis)
    return mean, np.where(scale > 0, scale, 1.0)


def accuracy(margins: np.ndarray) -> float:
    """Share of positive margins (a margin > 0 is a correct call), ties counted half."""
    return float(np.mean((margins > 0) + 0.5 * (margins == 0)))


def responses(chosen: np.ndarray, rejected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both responses of each pair as rows, with labels 1 (preferred) and 0 (dispreferred)."""
    labels = np.r_[np.ones(len(chosen)), np.zeros(len(rejected))]
    return np.concatenate([chosen, rejected]), labels


def unit_validation(features: Features, parts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, the validation accuracy and log loss of a logistic probe fitted on the train
    part (the log loss breaks ties of accuracy, which are the rule at small counts)."""
    from sklearn.linear_model import LogisticRegression

    train, validation = (parts == "train").to_numpy(), (parts == "validation").to_numpy()
    train_x, train_y = responses(features.chosen[train], features.rejected[train])
    valid_x, valid_y = responses(features.chosen[validation], features.rejected[validation])
    accuracies, losses = np.empty(len(features.units)), np.empty(len(features.units))
    for unit in range(len(features.units)):
        mean, scale = standardisation(train_x[:, unit])
        probe = LogisticRegression(**UNIT_PROBE).fit((train_x[:, unit] - mean) / scale, train_y)
        margins = probe.decision_function((valid_x[:, unit] - mean) / scale) * (2 * valid_y - 1)
        accuracies[unit] = accuracy(margins)
        losses[unit] = np.logaddexp(0, -margins).mean()
    return accuracies, losses


def mean_cosine(chosen: np.ndarray, rejected: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """m per pair: mean over units of cos(f(chosen) - f(rejected), d); 0 for a null difference."""
    difference = chosen.astype(np.float64) - rejected
    dot = np.einsum("puw,uw->pu", difference, directions)
    norms = np.linalg.norm(difference, axis=2) * np.linalg.norm(directions, axis=1)
    return np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0).mean(axis=1)


def calibration_slope(m: np.ndarray) -> float:
    """b of P = sigmoid(b m), fitted on both orientations of the calibration pairs."""
    from sklearn.linear_model import LogisticRegression

    x = np.r_[m, -m][:, None]
    labels = np.r_[np.ones(len(m)), np.zeros(len(m))]
    calibrator = LogisticRegression(C=CALIBRATION_C, fit_intercept=False, max_iter=1000)
    return float(calibrator.fit(x, labels).coef_[0, 0])


def unit_positions(units: torch.Tensor, available: list) -> list[int]:
    """Where the state's units sit among the features' units."""
    names = [tuple(unit) if isinstance(unit, list) else unit for unit in units.tolist()]
    where = {unit: position for position, unit in enumerate(available)}
    missing = [unit for unit in names if unit not in where]
    if missing:
        raise GeniesError(f"units {missing} of the fitted state are not in the activation cache")
    return [where[unit] for unit in names]


def fit_directions(features: Features, parts: pd.Series, top: int) -> State:
    """Steps 2 to 6 of the module docstring."""
    if not features.units:
        raise GeniesError("no units in the activation cache: the method reads none")
    accuracies, losses = unit_validation(features, parts)
    kept = min(top, len(features.units))
    selected = np.lexsort((np.arange(len(losses)), losses, -accuracies))[:kept]
    chosen, rejected = features.chosen[:, selected], features.rejected[:, selected]
    train, calibration = (parts == "train").to_numpy(), (parts == "calibration").to_numpy()
    directions = chosen[train].mean(axis=0, dtype=np.float64) - rejected[train].mean(
        axis=0, dtype=np.float64
    )
    m = mean_cosine(chosen[calibration], rejected[calibration], directions)
    slope = calibration_slope(m)
    units = [features.units[i] for i in selected]
    return State(
        tensors={
            "units": torch.tensor(units, dtype=torch.int64),
            "directions": torch.from_numpy(directions),
            "calibration_slope": torch.tensor(slope, dtype=torch.float64),
        },
        info={
            "selected_units": [
                {
                    "unit": unit,
                    "validation_accuracy": float(accuracies[i]),
                    "validation_log_loss": float(losses[i]),
                }
                for unit, i in zip(units, selected, strict=True)
            ],
            "units_requested": top,
            "units_kept": kept,
            "units_available": len(features.units),
            **{f"{part}_pairs": int(count) for part, count in parts.value_counts().items()},
            "calibration_pair_accuracy": accuracy(m),
            "calibration_slope": slope,
        },
    )


def score_directions(features: Features, state: State) -> np.ndarray:
    """Calibrated P(chosen preferred) per pair: B = chosen, A = rejected."""
    from scipy.special import expit

    positions = unit_positions(state.tensors["units"], features.units)
    m = mean_cosine(
        features.chosen[:, positions],
        features.rejected[:, positions],
        state.tensors["directions"].numpy(),
    )
    return expit(state.tensors["calibration_slope"].item() * m)


def hidden_states_before_norm(data: PairData, template: str) -> Features:
    """Residual hidden-state indices 0..L-1 of `template` (LAT never considered the post-norm
    state L). The method reads every state, so the cache holds exactly 0..L; the last is L."""
    features = data.features(template, "residual")
    if features.units != list(range(len(features.units))):
        raise GeniesError(
            f"{template} activations hold residual states {features.units}; LAT needs all of "
            "them (activations.templates residual: all)"
        )
    return Features(features.chosen[:, :-1], features.rejected[:, :-1], features.units[:-1])


def unit_count(unit: str) -> dict:
    return {
        "type": "integer",
        "minimum": 1,
        "default": 16,
        "description": f"{unit.capitalize()}s kept (upstream 16), capped by the model's count.",
    }


class DirectionMethod(Intervention):
    """A mass-mean direction method; a subclass names its features and its `top` key."""

    top: ClassVar[str]  # the hyper-parameter that says how many units to keep

    def unit_features(self, data: PairData, hyperparameters: dict) -> Features:
        raise NotImplementedError

    @classmethod
    def min_examples(cls, hyperparameters: dict) -> int:
        return fewest_pairs(held_out_fractions(hyperparameters))

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        parts = seeded_parts(data.pairs, seed, held_out_fractions(hyperparameters))
        warn_if_few(self.name, parts.value_counts().to_dict())
        features = self.unit_features(data, hyperparameters)
        return fit_directions(features, parts, hyperparameters[self.top])

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        return score_directions(self.unit_features(data, hyperparameters), state)
