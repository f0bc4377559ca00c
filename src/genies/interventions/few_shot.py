"""`few_shot`: zero_shot's scoring, with solved examples of the source distribution in the prompt.

For every evaluation example, `shots` (default 4) distinct examples of the source's training split
are drawn. Each shot is "\\n\\n" + its prompt + its preferred response, and the prompt scored is
the concatenated shots + "\\n\\n" + the example's own prompt (as upstream, SPEC §4.2). Responses
are then scored as in zero_shot: summed log-likelihood of response + EOS given that prompt,
P(preferred) the softmax over the pair (genies.interventions.text_scoring).

`fit` learns nothing from the pairs: it stores the shot pool (example ids, prompts and preferred
responses of the source's training split), the seed and the tokenisation, so that scoring needs
nothing else.

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
from genies.interventions.text_scoring import pair_probabilities, tokenisation

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


def few_shot_prompt(prompt: str, shots: list[tuple[str, str]]) -> str:
    """`prompt` after its shots, each a (prompt, preferred response)."""
    return "".join(SEPARATOR + shot + response for shot, response in shots) + SEPARATOR + prompt


def shot_prompts(pairs: pd.DataFrame, info: dict, shots: int) -> list[str]:
    """The prompt scored for each pair: its example's shots, then the pair's prompt."""
    pool = info["pool"]
    built: dict[str, str] = {}
    for example_id, prompt in zip(pairs.example_id, pairs.prompt, strict=True):
        if example_id not in built:
            picked = draw_shots(pool["example_id"], example_id, info["seed"], shots)
            examples = [(pool["prompt"][i], pool["response"][i]) for i in picked]
            built[example_id] = few_shot_prompt(prompt, examples)
    return [built[example_id] for example_id in pairs.example_id]


@register
class FewShot(Intervention):
    name = "few_shot"
    reads = Reads(model=True)
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
                "tokenisation": tokenisation(data.model).info(),
                "pool": shot_pool(data.shots),
            }
        )

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        prompts = shot_prompts(data.pairs, state.info, hyperparameters["shots"])
        return pair_probabilities(data, prompts, state.info["tokenisation"])
