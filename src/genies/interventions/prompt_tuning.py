"""`prompt_tuning`: the reward model of genies.interventions.reward_model with trainable virtual
tokens before every text instead of adapters (SPEC §4.4): 10 of them, randomly initialised as
peft's PromptEmbedding does (N(0, 1)), trained with the score head at lr 5.2e-3 as upstream; the
base model stays frozen.

Where it differs from peft's own prompt-tuning forward pass: peft puts the virtual tokens before
the padding and drops position ids, so with left padding a text's positions (and its reward)
depend on its batch mates; here they sit after the padding, at positions 0..9.
"""

import numpy as np
import torch

from genies.interventions import register
from genies.interventions.base import Intervention, PairData, Reads, State
from genies.interventions.reward_model import (
    TRAINING_HYPERPARAMETERS,
    RewardModel,
    TextBatches,
    check_tensors,
    fingerprint,
    pair_probabilities,
    train,
)


def prompt_model(data: PairData, hyperparameters: dict, seed: int) -> RewardModel:
    """The frozen base decoder with fresh virtual tokens and a fresh head, drawn with `seed`."""
    from peft import PromptTuningConfig
    from peft.tuners.prompt_tuning import PromptEmbedding

    torch.manual_seed(seed)
    decoder = data.model.model.model
    decoder.requires_grad_(False)
    hidden = data.model.model.config.hidden_size
    config = PromptTuningConfig(
        num_virtual_tokens=hyperparameters["virtual_tokens"],
        token_dim=hidden,
        num_transformer_submodules=1,
        prompt_tuning_init="RANDOM",
    )
    prompt = PromptEmbedding(config, decoder.embed_tokens)
    return RewardModel(decoder, decoder.embed_tokens, hidden, prompt).to(data.device)


def peft_tensors(model: RewardModel) -> dict[str, torch.Tensor]:
    """The virtual tokens as peft saves them, and the head."""
    return {
        "prompt_embeddings": model.prompt.embedding.weight.detach().cpu().contiguous(),
        "score.weight": model.score.weight.detach().cpu().contiguous(),
    }


@torch.no_grad()
def load_peft_tensors(model: RewardModel, tensors: dict[str, torch.Tensor], where) -> None:
    check_tensors(peft_tensors(model), tensors, where)
    model.prompt.embedding.weight.copy_(tensors["prompt_embeddings"])
    model.score.weight.copy_(tensors["score.weight"])


def text_batches(data: PairData, hyperparameters: dict) -> TextBatches:
    return TextBatches(data.model, hyperparameters["max_length"], hyperparameters["virtual_tokens"])


@register
class PromptTuning(Intervention):
    name = "prompt_tuning"
    reads = Reads(model=True)
    hyperparameters = {
        "learning_rate": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 5.2e-3,
            "description": "AdamW learning rate, constant (upstream: 5.2e-3).",
        },
        **TRAINING_HYPERPARAMETERS,
        "virtual_tokens": {
            "type": "integer",
            "minimum": 1,
            "default": 10,
            "description": "Trainable tokens before every text.",
        },
    }

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        model = prompt_model(data, hyperparameters, seed)
        texts = text_batches(data, hyperparameters)
        key = fingerprint(data, hyperparameters, seed, self.name)
        losses = train(model, texts, data, hyperparameters, seed, key)
        return State(tensors=peft_tensors(model), info={"loss": losses})

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        model = prompt_model(data, hyperparameters, seed=0)
        load_peft_tensors(model, state.tensors, "the prompt_tuning state")
        model.eval()
        texts = text_batches(data, hyperparameters)
        return pair_probabilities(model, texts, data)
