"""`lora_fine_tuning`: a reward model on the base LM with LoRA adapters (peft) on the attention
projections, trained with the score head on the source's pairs (SPEC §4.3; the shared model,
tokenisation and training: genies.interventions.reward_model).

LoRA as upstream: r 64, alpha 16, dropout 0.1, no bias, on q_proj and v_proj; adapter weights in
float32 whatever the base model's dtype (peft's default). The state holds the adapter in peft's
own naming (`get_peft_model_state_dict`, as `save_pretrained` writes it) plus `score.weight`, and
the LoRA configuration under `peft_config`. Upstream trained in 4-bit NF4 with fp16 compute; here
the base model runs in its configured dtype (bfloat16 on a GPU).
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


def lora_model(data: PairData, hyperparameters: dict, seed: int) -> RewardModel:
    """The base decoder with fresh LoRA adapters and a fresh head, drawn with `seed`."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    decoder = data.model.model.model
    config = LoraConfig(
        r=hyperparameters["r"],
        lora_alpha=hyperparameters["alpha"],
        lora_dropout=hyperparameters["dropout"],
        target_modules=hyperparameters["target_modules"],
        bias="none",
    )
    embed_tokens = decoder.embed_tokens
    peft_decoder = get_peft_model(decoder, config)
    hidden = data.model.model.config.hidden_size
    return RewardModel(peft_decoder, embed_tokens, hidden).to(data.device)


def peft_tensors(model: RewardModel) -> dict[str, torch.Tensor]:
    """The adapter as peft saves it, and the head."""
    from peft import get_peft_model_state_dict

    adapter = get_peft_model_state_dict(model.decoder) | {"score.weight": model.score.weight}
    return {name: tensor.detach().cpu().contiguous() for name, tensor in adapter.items()}


def load_peft_tensors(model: RewardModel, tensors: dict[str, torch.Tensor], where) -> None:
    from peft import set_peft_model_state_dict

    check_tensors(peft_tensors(model), tensors, where)
    adapter = {name: tensor for name, tensor in tensors.items() if name != "score.weight"}
    set_peft_model_state_dict(model.decoder, adapter)
    with torch.no_grad():
        model.score.weight.copy_(tensors["score.weight"])


@register
class LoraFineTuning(Intervention):
    name = "lora_fine_tuning"
    reads = Reads(model=True)
    hyperparameters = {
        "learning_rate": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 2e-4,
            "description": "AdamW learning rate, constant (upstream: 2e-4, 7.2e-5 for 3B).",
        },
        **TRAINING_HYPERPARAMETERS,
        "r": {"type": "integer", "minimum": 1, "default": 64, "description": "LoRA rank."},
        "alpha": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 16,
            "description": "LoRA alpha (the update is scaled by alpha / r).",
        },
        "dropout": {
            "type": "number",
            "minimum": 0,
            "exclusiveMaximum": 1,
            "default": 0.1,
            "description": "Dropout on the LoRA input.",
        },
        "target_modules": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "default": ["q_proj", "v_proj"],
            "description": "Linear layers that get adapters.",
        },
    }

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        model = lora_model(data, hyperparameters, seed)
        texts = TextBatches(data.model, hyperparameters["max_length"], 0)
        key = fingerprint(data, hyperparameters, seed, self.name)
        losses = train(model, texts, data, hyperparameters, seed, key)
        return State(
            tensors=peft_tensors(model),
            info={"loss": losses, "peft_config": peft_config(model)},
        )

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        model = lora_model(data, hyperparameters, seed=0)
        load_peft_tensors(model, state.tensors, "the lora_fine_tuning state")
        model.eval()
        texts = TextBatches(data.model, hyperparameters["max_length"], 0)
        return pair_probabilities(model, texts, data)


def peft_config(model: RewardModel) -> dict:
    config = model.decoder.peft_config["default"].to_dict()
    return {key: sorted(v) if isinstance(v, set) else v for key, v in config.items()}
