"""`random`: the chance baseline, seeded random probabilities.

Each pair gets P(preferred) uniform on (0, 1), drawn from a hash of (seed, pair id), so a pair's
score does not depend on which other pairs are scored or in what order. Its accuracy is 0.5 up to
sampling noise. (Upstream's random baseline predicted a constant 0.5, which its tie rule, ties
count as correct, scored as accuracy 1.0.)
"""

import numpy as np

from genies.data.pairs import seeded_choice
from genies.interventions import register
from genies.interventions.base import Intervention, PairData, State

RESOLUTION = 2**32


@register
class RandomBaseline(Intervention):
    name = "random"
    trained = False
    target_tuned_candidate = False  # a maximum over chance draws measures luck, not capability

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        return State(info={"seed": seed})

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        seed = state.info["seed"]
        draws = [seeded_choice(seed, pair_id, RESOLUTION) for pair_id in data.pairs.pair_id]
        return (np.asarray(draws, dtype=float) + 0.5) / RESOLUTION
