"""`zero_shot`: the base model's own preference, read from its log-likelihoods.

Each response's score is the summed log-likelihood of its tokens and EOS given the prompt
(genies.interventions.text_scoring); P(preferred) is the softmax of the pair's two scores,
sigmoid(score_chosen - score_rejected). Nothing is learnt: `fit` only records the tokenisation.

Where it differs from upstream (SPEC §4.1): upstream averaged the token cross-entropy over every
position of the left-padded pair tensor, which divides both summed log-likelihoods by L - 1 (L
the padded length of the pair) before the softmax. The ranking, and so the accuracy, is the same;
the probabilities are not: upstream's sit close to 0.5 (a temperature of L - 1), so calibration
metrics differ. Upstream also loaded the model in 4-bit NF4 and never prepended BOS; here the
model runs in its configured dtype and BOS follows the tokenizer's default.
"""

import numpy as np

from genies.interventions import register
from genies.interventions.base import Intervention, PairData, Reads, State
from genies.interventions.text_scoring import pair_probabilities, tokenisation


@register
class ZeroShot(Intervention):
    name = "zero_shot"
    reads = Reads(model=True)
    trained = False

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        spec = tokenisation(data.model, data.settings["max_length"])
        return State(info={"tokenisation": spec.info()})

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        return pair_probabilities(data, state.info["tokenisation"])
