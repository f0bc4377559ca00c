"""`lora_fine_tuning`: a reward model on the base LM with LoRA adapters (peft) on the attention
projections, trained with the score head on the source's pairs (SPEC §4.3; the shared model,
tokenisation and training: genies.interventions.reward_model).

LoRA as upstream: r 64, alpha 16, dropout 0.1, no bias, on the query and value projections
(q_proj and v_proj; per family in genies.models.families); adapter weights in
float32 whatever the base model's dtype (peft's default). The state holds the adapter in peft's
own naming (`get_peft_model_state_dict`, as `save_pretrained` writes it) plus `score.weight`, and
the LoRA configuration under `peft_config`. Upstream trained in 4-bit NF4 with fp16 compute; here
the base model runs in its configured dtype (bfloat16 on a GPU).
"""

import torch

from genies.interventions import register
from genies.interventions.base import PairData
from genies.interventions.reward_model import (
    TRAINING_HYPERPARAMETERS,
    RewardModel,
    RewardModelMethod,
)
from genies.models.families import family_of


@register
class LoraFineTuning(RewardModelMethod):
    name = "lora_fine_tuning"
    hyperparameters = {
        "learning_rate": {
            "type": "number",
            "exclusiveMinimum": 0,
            # sized, like the default steps and pairs, for the embedded model's CPU run: in 6
            # steps of 4 pairs upstream's 2e-4 moves neither head nor adapters (32
            # alpaca_high_quality pairs: 0.562 on 48 test pairs; 0.896 at 1e-3)
            "default": 1e-3,
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
            "type": ["array", "null"],
            "items": {"type": "string"},
            "minItems": 1,
            "default": None,
            "description": "Linear layers that get adapters; null: the family's query and value "
            "projections (genies.models.families: q_proj and v_proj, Phi-3's fused qkv_proj, "
            "GPT-NeoX's query_key_value).",
        },
    }

    def build(self, data: PairData, hyperparameters: dict, seed: int) -> RewardModel:
        """The base decoder with fresh LoRA adapters and a fresh head, drawn with `seed`."""
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(seed)
        decoder = data.model.model.get_decoder()
        config = LoraConfig(
            r=hyperparameters["r"],
            lora_alpha=hyperparameters["alpha"],
            lora_dropout=hyperparameters["dropout"],
            target_modules=hyperparameters["target_modules"]
            or list(family_of(data.model.model.config).lora_targets),
            bias="none",
        )
        embed_tokens = decoder.get_input_embeddings()
        hidden = data.model.model.config.hidden_size
        return RewardModel(get_peft_model(decoder, config), embed_tokens, hidden).to(data.device)

    def stored(self, model: RewardModel) -> dict[str, torch.Tensor]:
        """The adapter as peft saves it, and the head."""
        from peft import get_peft_model_state_dict

        adapter = get_peft_model_state_dict(model.decoder) | {"score.weight": model.score.weight}
        return {name: tensor.detach().cpu().contiguous() for name, tensor in adapter.items()}

    def restore(self, model: RewardModel, tensors: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        adapter = {name: tensor for name, tensor in tensors.items() if name != "score.weight"}
        set_peft_model_state_dict(model.decoder, adapter)
        with torch.no_grad():
            model.score.weight.copy_(tensors["score.weight"])

    def recorded(self, model: RewardModel) -> dict:
        config = model.decoder.peft_config["default"].to_dict()
        return {
            "peft_config": {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
        }
