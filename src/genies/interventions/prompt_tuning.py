"""`prompt_tuning`: the reward model of genies.interventions.reward_model with trainable virtual
tokens before every text instead of adapters (SPEC §4.4): 10 of them, randomly initialised as
peft's PromptEmbedding does (N(0, 1)), trained with the score head at lr 5.2e-3 as upstream; the
base model stays frozen.

Where it differs from peft's own prompt-tuning forward pass: peft puts the virtual tokens before
the padding and drops position ids, so with left padding a text's positions (and its reward)
depend on its batch mates; here they sit after the padding, at positions 0..9.
"""

import torch

from genies.interventions import register
from genies.interventions.base import PairData
from genies.interventions.reward_model import (
    TRAINING_HYPERPARAMETERS,
    RewardModel,
    RewardModelMethod,
)


@register
class PromptTuning(RewardModelMethod):
    name = "prompt_tuning"
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

    def build(self, data: PairData, hyperparameters: dict, seed: int) -> RewardModel:
        """The frozen base decoder with fresh virtual tokens and a fresh head, drawn with `seed`."""
        from peft import PromptTuningConfig
        from peft.tuners.prompt_tuning import PromptEmbedding

        torch.manual_seed(seed)
        decoder = data.model.model.get_decoder()
        decoder.requires_grad_(False)
        hidden = data.model.model.config.hidden_size
        config = PromptTuningConfig(
            num_virtual_tokens=hyperparameters["virtual_tokens"],
            token_dim=hidden,
            num_transformer_submodules=1,
            prompt_tuning_init="RANDOM",
        )
        embed_tokens = decoder.get_input_embeddings()
        prompt = PromptEmbedding(config, embed_tokens)
        return RewardModel(decoder, embed_tokens, hidden, prompt).to(data.device)

    def virtual_tokens(self, hyperparameters: dict) -> int:
        return hyperparameters["virtual_tokens"]

    def stored(self, model: RewardModel) -> dict[str, torch.Tensor]:
        """The virtual tokens as peft saves them, and the head."""
        return {
            "prompt_embeddings": model.prompt.embedding.weight.detach().cpu().contiguous(),
            "score.weight": model.score.weight.detach().cpu().contiguous(),
        }

    @torch.no_grad()
    def restore(self, model: RewardModel, tensors: dict[str, torch.Tensor]) -> None:
        model.prompt.embedding.weight.copy_(tensors["prompt_embeddings"])
        model.score.weight.copy_(tensors["score.weight"])
