"""`probe`: a supervised linear probe on the residual stream, the baseline that the CCS and LAT
papers compare against (upstream has none; its CCS script fitted one and only printed it).

Features: every residual hidden state (0..L) at the last token of prompt + response (template
`raw`), standardised per dimension with the statistics of the source's training responses (so
that the L2 penalty weighs every dimension alike). Per hidden state, a Bradley-Terry logistic
regression without intercept on pair differences, x_chosen - x_rejected labelled 1 and the
reverse labelled 0, is fitted on the train part of the training pairs (the seeded split of
genies.interventions.directions). The state with the best validation accuracy is chosen (ties:
lower validation log loss, then the lower index), and the probe is refitted there on all
training pairs. P(chosen preferred) = sigmoid(w . (x_chosen - x_rejected)), antisymmetric by
construction. The means cancel in the difference, so only the scales are stored.
"""

import numpy as np
import torch

from genies.interventions import register
from genies.interventions.base import Intervention, PairData, Reads, State
from genies.interventions.directions import (
    VALIDATION_FRACTION,
    accuracy,
    fewest_pairs,
    held_out_fractions,
    seeded_parts,
    standardisation,
    unit_positions,
    warn_if_few,
)


def bradley_terry(differences: np.ndarray, c: float) -> np.ndarray:
    """Weights w of P(chosen) = sigmoid(w . difference), fitted on both orientations."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([differences, -differences])
    labels = np.r_[np.ones(len(differences)), np.zeros(len(differences))]
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=1000)
    return model.fit(x, labels).coef_[0]


def layer_validation(differences: np.ndarray, validation: np.ndarray, c: float) -> dict:
    """Validation accuracy and log loss of a probe fitted on the train part of one layer."""
    weights = bradley_terry(differences[~validation], c)
    margins = differences[validation] @ weights
    return {"accuracy": accuracy(margins), "log_loss": float(np.logaddexp(0, -margins).mean())}


def scaled_differences(chosen: np.ndarray, rejected: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (chosen.astype(np.float64) - rejected) / scale


@register
class LinearProbe(Intervention):
    name = "probe"
    reads = Reads(templates={"raw": {"residual": "all", "heads": "none"}})
    hyperparameters = {
        "C": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 1.0,
            "description": "Inverse L2 strength of the logistic regression (sklearn's C).",
        },
        "validation_fraction": VALIDATION_FRACTION,
    }

    @classmethod
    def min_examples(cls, hyperparameters: dict) -> int:
        return fewest_pairs(held_out_fractions(hyperparameters))

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        features = data.features("raw", "residual")
        parts = seeded_parts(data.pairs, seed, held_out_fractions(hyperparameters))
        warn_if_few(self.name, parts.value_counts().to_dict())
        validation = (parts == "validation").to_numpy()
        _, scale = standardisation(np.concatenate([features.chosen, features.rejected]))
        differences = scaled_differences(features.chosen, features.rejected, scale)
        c = hyperparameters["C"]
        layers = [layer_validation(differences[:, i], validation, c) for i in range(len(scale))]
        best = min(
            range(len(layers)), key=lambda i: (-layers[i]["accuracy"], layers[i]["log_loss"], i)
        )
        weights = bradley_terry(differences[:, best], c)
        return State(
            tensors={
                "layer": torch.tensor([features.units[best]], dtype=torch.int64),
                "scale": torch.from_numpy(scale[best]),
                "weights": torch.from_numpy(weights),
            },
            info={
                "layer": features.units[best],
                "validation": {
                    str(unit): result for unit, result in zip(features.units, layers, strict=True)
                },
                "train_pairs": int((~validation).sum()),
                "validation_pairs": int(validation.sum()),
            },
        )

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        from scipy.special import expit

        features = data.features("raw", "residual")
        [position] = unit_positions(state.tensors["layer"], features.units)
        differences = scaled_differences(
            features.chosen[:, position],
            features.rejected[:, position],
            state.tensors["scale"].numpy(),
        )
        return expit(differences @ state.tensors["weights"].numpy())
