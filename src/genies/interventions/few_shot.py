"""`few_shot`: zero_shot's scoring, with solved examples of the source distribution in the prompt.

For every evaluation example, `shots` (default 4) distinct examples of the source's training split
are drawn. The text scored is "\\n\\n" + shot prompt + preferred response for each shot, then
"\\n\\n" + the example's own prompt (as upstream, SPEC §4.2). Responses are then scored as in
zero_shot: summed log-likelihood of response + EOS given what precedes it, P(preferred) the softmax
over the pair (genies.interventions.text_scoring). Each shot (its "\\n\\n" included) and the
example's own text are tokenised and cut to the model's `max_length` one by one, by the rule every
method shares, so the example's own tokens are zero_shot's (bar BOS, which opens the first shot)
and the whole stays within (shots + 1) * max_length. Where that exceeds the positions the model
has, an example's earliest shots are dropped whole until its text fits (counted on stderr).

`fit` learns nothing from the pairs: it stores the shot pool (example ids, prompts and preferred
responses of the source's training split), the seed and the tokenisation (from the model's
manifest: the fit never runs the model), so that scoring needs nothing else.

Where it differs from upstream: upstream drew the shots unseeded, so its scores changed from run
to run; here an example's shots come from a generator seeded by a hash of (seed, example id), so
they depend neither on row order nor on which other examples are scored, and an example never
gets itself as a shot (possible only when scoring the source's training split). As in zero_shot,
the pair softmax is over the summed log-likelihoods, not upstream's sums divided by the padded
length, so the probabilities are less squeezed toward 0.5; the ranking is the same.
"""

import numpy as np
import pandas as pd

from genies.data.pairs import seeded_choice
from genies.errors import GeniesError
from genies.interventions import register
from genies.interventions.base import Intervention, PairData, Reads, State
from genies.interventions.text_scoring import adds_bos, pair_probabilities, tokenisation_info

SEPARATOR = "\n\n"
SEED_RANGE = 2**63


def shot_pool(split: pd.DataFrame) -> dict[str, list[str]]:
    """Example ids, prompts and preferred responses of a split, in its order."""
    return {
        "example_id": list(split.example_id),
        "prompt": list(split.prompt),
        "response": [
            responses[preferred]
            for responses, preferred in zip(split.responses, split.preferred, strict=True)
        ],
    }


def draw_shots(pool_ids: list[str], example_id: str, seed: int, shots: int) -> list[int]:
    """Indices into the pool of the `shots` distinct examples shown to `example_id`, never
    itself; the draw depends on (seed, example id) and the pool only."""
    # a key of its own, so that the draw is unrelated to the example's training-pair draw
    rng = np.random.default_rng(seeded_choice(seed, f"few_shot:{example_id}", SEED_RANGE))
    # one spare draw replaces the example itself if it comes up
    drawn = rng.choice(len(pool_ids), size=min(shots + 1, len(pool_ids)), replace=False)
    picked = [int(i) for i in drawn if pool_ids[i] != example_id][:shots]
    if len(picked) < shots:
        raise GeniesError(
            f"few_shot: {shots} shots wanted for {example_id}, but the source's training split "
            f"has only {len(picked)} other examples"
        )
    return picked


def shot_texts(shots: list[tuple[str, str]]) -> tuple[str, ...]:
    """The texts before a prompt, one per shot (prompt, preferred response): each opens with the
    separator and the last ends with the one before the prompt, so that the prompt itself is
    zero_shot's."""
    texts = [SEPARATOR + prompt + response for prompt, response in shots]
    return (*texts[:-1], texts[-1] + SEPARATOR)


def pair_shots(pairs: pd.DataFrame, info: dict, shots: int) -> list[tuple[str, ...]]:
    """The shot texts shown before each pair's prompt."""
    pool = info["pool"]
    built: dict[str, tuple[str, ...]] = {}
    for example_id in pairs.example_id:
        if example_id not in built:
            picked = draw_shots(pool["example_id"], example_id, info["seed"], shots)
            built[example_id] = shot_texts(
                [(pool["prompt"][i], pool["response"][i]) for i in picked]
            )
    return [built[example_id] for example_id in pairs.example_id]


@register
class FewShot(Intervention):
    name = "few_shot"
    reads = Reads(model=True, model_in_fit=False)
    hyperparameters = {"shots": {"type": "integer", "minimum": 1, "default": 4}}

    @classmethod
    def min_examples(cls, hyperparameters: dict) -> int:
        # scored on the source's own test split too, an example never sees itself as a shot
        return hyperparameters["shots"] + 1

    @classmethod
    def text_length(cls, hyperparameters: dict, max_length: int) -> int:
        return (hyperparameters["shots"] + 1) * max_length  # the shots come before the text

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        if data.shots is None:
            raise GeniesError("few_shot: fit needs the source's training split (PairData.shots)")
        return State(
            info={
                "seed": seed,
                "tokenisation": tokenisation_info(
                    adds_bos(data.manifest), data.settings["max_length"]
                ),
                "pool": shot_pool(data.shots),
            }
        )

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        shots = pair_shots(data.pairs, state.info, hyperparameters["shots"])
        return pair_probabilities(data, state.info["tokenisation"], shots)
