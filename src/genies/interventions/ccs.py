"""`ccs`: contrast-consistent search (Burns et al., 2022), made pairwise and free of target
leakage (upstream's version: SPEC 4.9).

Features: one residual hidden state (hyper-parameter `layer`; -1, the default, is the post-norm
state L, as upstream) at the last token of prompt + response + "### Does the responder
successfully follow the instruction?" answered Yes (template `yes`) and No (template `no`).

Fitting, on both responses of every source training pair, unlabelled:
- normalisation: the Yes set and the No set are each standardised per dimension (Burns et al.'s
  normalisation; a constant dimension keeps scale 1) with the statistics of these source
  responses, which the state stores and scoring applies to every target;
- the probe p(x) = sigmoid(w . x + b) minimises mean(min(p_yes, p_no)^2) +
  mean((p_yes - (1 - p_no))^2), full batch, with AdamW for `epochs` steps from `restarts`
  initialisations (upstream's defaults: lr 1e-3, weight decay 0.01, 1000 epochs, 10 restarts),
  drawn as torch.nn.Linear's from a torch.Generator seeded with the seed; the restart with the
  lowest final loss is kept. The restarts train side by side as
  one batch: AdamW updates each weight on its own, so this is the same as training them apart;
- the sign, the only supervision: the credence c(r) = 1/2 (p_yes(r) + 1 - p_no(r)) must rank
  the preferred response above the dispreferred one on more source training pairs than the
  reverse, else the probe is negated (c becomes 1 - c).
Scoring: P(chosen preferred) = sigmoid(logit c(chosen) - logit c(rejected)), the probability
that exactly the chosen response is the true one given independent credences, clipped to
[1e-6, 1 - 1e-6]. It is antisymmetric, and a pair's score depends on that pair alone.

Differences from upstream, which make ours pairwise and comparable with the other methods:
- upstream classified single responses (c < 0.5) and reported max(acc, 1 - acc) on the target
  labels: an oracle choice of the sign, a per-response metric always >= 0.5 that was compared
  with pairwise accuracies; here the sign comes from the source labels and the metric is
  pairwise;
- upstream normalised the target with the target's own statistics (transductive leakage, and a
  pair's score depended on the other target pairs); here the source's statistics are applied;
- upstream only mean-centred; here each dimension is also scaled, as in Burns et al.;
- upstream resampled the source responses with replacement, unseeded; here every response of
  the training pairs is used once and every draw is seeded;
- upstream spelt the No question "###Does" (no space) and appended the EOS token, so its two
  texts differed in more than the answer; here both share genies.models.templates' spelling
  and end at the answer.
"""

import numpy as np
import torch

from genies.errors import GeniesError
from genies.interventions import register
from genies.interventions.base import Intervention, PairData, Reads, State
from genies.interventions.directions import standardisation

CLIP = 1e-6
TEMPLATES = ("yes", "no")


def layer_features(data: PairData, template: str, layer: int) -> np.ndarray:
    """Features [2, pairs, hidden] (chosen, then rejected) of hidden-state index `layer` (-1:
    the last stored state, the post-norm state L since the method reads it), in float64."""
    features = data.features(template, "residual")
    if layer == -1 and features.units:
        layer = features.units[-1]
    if layer not in features.units:
        raise GeniesError(
            f"ccs layer {layer}: not in the {template} activation cache (it holds residual "
            f"states {features.units}); add it under activations.templates.{template}.residual"
        )
    position = features.units.index(layer)
    return np.stack([features.chosen[:, position], features.rejected[:, position]]).astype(
        np.float64
    )


def yes_no_features(data: PairData, layer: int) -> dict[str, np.ndarray]:
    return {template: layer_features(data, template, layer) for template in TEMPLATES}


def source_statistics(features: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Per-dimension mean and scale of the Yes set and of the No set."""
    stats = {}
    for template, values in features.items():
        mean, scale = standardisation(values.reshape(-1, values.shape[-1]))
        stats |= {
            f"{template}_mean": torch.from_numpy(mean),
            f"{template}_scale": torch.from_numpy(scale),
        }
    return stats


def normalise(features: dict[str, np.ndarray], stats: dict[str, torch.Tensor]) -> list:
    """The Yes and No sets standardised with the (source's) statistics `stats`."""
    return [
        (values - stats[f"{template}_mean"].numpy()) / stats[f"{template}_scale"].numpy()
        for template, values in features.items()
    ]


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0, -x)


def credence_logit(yes: np.ndarray, no: np.ndarray, weights: np.ndarray, bias: float):
    """logit c per response, c = 1/2 (p_yes + 1 - p_no), computed in log space so that
    saturated probes keep their ranking."""
    a, z = yes @ weights + bias, no @ weights + bias
    log_c = np.logaddexp(log_sigmoid(a), log_sigmoid(-z))
    log_not_c = np.logaddexp(log_sigmoid(-a), log_sigmoid(z))
    return log_c - log_not_c


def ccs_losses(features: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor):
    """The CCS loss of each restart's probe: features [2 (yes, no), responses, hidden], weights
    [restarts, hidden], bias [restarts]."""
    p_yes, p_no = torch.sigmoid(features @ weights.T + bias)
    confidence = torch.minimum(p_yes, p_no).square().mean(dim=0)
    consistency = (p_yes - (1 - p_no)).square().mean(dim=0)
    return confidence + consistency


def train_probes(yes: np.ndarray, no: np.ndarray, hyperparameters: dict, seed: int):
    """Every restart's weights, bias and final loss, trained side by side."""
    features = torch.from_numpy(np.stack([yes, no])).float()
    restarts, hidden = hyperparameters["restarts"], yes.shape[1]
    generator = torch.Generator().manual_seed(seed)
    bound = hidden**-0.5  # torch.nn.Linear's initialisation
    weights = ((torch.rand(restarts, hidden, generator=generator) * 2 - 1) * bound).requires_grad_()
    bias = ((torch.rand(restarts, generator=generator) * 2 - 1) * bound).requires_grad_()
    optimiser = torch.optim.AdamW(
        [weights, bias], lr=hyperparameters["lr"], weight_decay=hyperparameters["weight_decay"]
    )
    for _ in range(hyperparameters["epochs"]):
        optimiser.zero_grad()
        ccs_losses(features, weights, bias).sum().backward()
        optimiser.step()
    with torch.no_grad():
        losses = ccs_losses(features, weights, bias)
    return weights.detach(), bias.detach(), losses


@register
class ContrastConsistentSearch(Intervention):
    name = "ccs"
    reads = Reads(
        templates={template: {"residual": [-1], "heads": "none"} for template in TEMPLATES}
    )
    hyperparameters = {
        "layer": {
            "type": "integer",
            "minimum": -1,
            "default": -1,
            "description": "Hidden-state index of the features; -1 is the post-norm state L. "
            "Another index must be stored in the yes and no caches (activations.templates).",
        },
        "epochs": {"type": "integer", "minimum": 1, "default": 1000},
        "restarts": {"type": "integer", "minimum": 1, "default": 10},
        "lr": {"type": "number", "exclusiveMinimum": 0, "default": 1e-3},
        "weight_decay": {"type": "number", "minimum": 0, "default": 0.01},
    }

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        features = yes_no_features(data, hyperparameters["layer"])
        stats = source_statistics(features)
        yes, no = normalise(features, stats)
        hidden = yes.shape[-1]
        weights, bias, losses = train_probes(
            yes.reshape(-1, hidden), no.reshape(-1, hidden), hyperparameters, seed
        )
        best = int(torch.argmin(losses))
        w, b = weights[best].double().numpy(), float(bias[best])
        chosen, rejected = (credence_logit(yes[i], no[i], w, b) for i in (0, 1))
        above, below = int((chosen > rejected).sum()), int((chosen < rejected).sum())
        sign = -1.0 if below > above else 1.0  # negating the probe turns c into 1 - c
        return State(
            tensors={
                "weights": torch.from_numpy(sign * w),
                "bias": torch.tensor(sign * b, dtype=torch.float64),
                **stats,
            },
            info={
                "responses": 2 * len(data.pairs),
                "restart_losses": losses.tolist(),
                "kept_restart": best,
                # before the sign is chosen: source pairs whose preferred response the probe
                # ranks above (below) the dispreferred one
                "preferred_above": above,
                "preferred_below": below,
                "flipped": sign < 0,
            },
        )

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        from scipy.special import expit

        yes, no = normalise(yes_no_features(data, hyperparameters["layer"]), state.tensors)
        w, b = state.tensors["weights"].numpy(), state.tensors["bias"].item()
        chosen, rejected = (credence_logit(yes[i], no[i], w, b) for i in (0, 1))
        return np.clip(expit(chosen - rejected), CLIP, 1 - CLIP)
