"""The decoder families genies runs, and where each keeps what the pipeline reads.

A family is a transformers causal-LM class, named by `config.architectures[0]` (or the class a
config builds). The pipeline reads, per family: the decoder layers (`model.get_decoder().layers`),
each layer's attention module and its output projection (whose input is the per-head outputs, for
MMS and CRA), the final norm (the last residual state) and the modules LoRA adapts by default.
Everything else (the decoder, embeddings, LM head) goes through transformers' own accessors, the
same for every family.

A packed (tree-masked) extraction is exact only where every query may attend to every ancestor in
its tree: a sliding window shorter than the longest tree would cut attention that a text run alone
keeps (its window counts packed positions, not the text's), so such a model is extracted text by
text (`tree_packing_exact`). Soft-capping and embedding scaling act on each position alone and
pack exactly (tests/test_families.py checks every family against plain per-text passes).
"""

from dataclasses import dataclass

from genies.errors import GeniesError


@dataclass(frozen=True)
class Family:
    attention: str = "self_attn"  # a decoder layer's attention module
    out_projection: str = "o_proj"  # the attention's output projection: its input is the heads
    final_norm: str = "norm"  # the decoder's norm after the last layer
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")


FAMILIES = {
    "LlamaForCausalLM": Family(),
    "MistralForCausalLM": Family(),
    "Qwen2ForCausalLM": Family(),
    "Qwen3ForCausalLM": Family(),
    "Gemma2ForCausalLM": Family(),
    "Gemma3ForCausalLM": Family(),
    "Phi3ForCausalLM": Family(lora_targets=("qkv_proj",)),  # q, k and v in one fused projection
    "GPTNeoXForCausalLM": Family(
        attention="attention",
        out_projection="dense",
        final_norm="final_layer_norm",
        lora_targets=("query_key_value",),
    ),
}


def architecture_name(config) -> str:
    architectures = getattr(config, "architectures", None) or []
    return architectures[0] if architectures else f"{config.model_type} (no architectures)"


def family_named(architecture: str) -> Family:
    """The family of an architecture name; one line naming the supported ones otherwise."""
    if architecture not in FAMILIES:
        raise GeniesError(
            f"{architecture}: not a supported decoder family; supported: {', '.join(FAMILIES)}"
        )
    return FAMILIES[architecture]


def family_of(config) -> Family:
    """The family of a transformers config (see family_named)."""
    return family_named(architecture_name(config))


class DecoderParts:
    """The modules of a loaded causal LM that the pipeline hooks, by its family."""

    def __init__(self, model):
        self.family = family_of(model.config)
        self.decoder = model.get_decoder()
        self.layers = self.decoder.layers
        self.embeddings = model.get_input_embeddings()
        self.final_norm = getattr(self.decoder, self.family.final_norm)

    def attention(self, layer: int):
        return getattr(self.layers[layer], self.family.attention)

    def out_projection(self, layer: int):
        return getattr(self.attention(layer), self.family.out_projection)

    def heads_shape(self) -> tuple[int, int]:
        config = self.decoder.config
        heads = config.num_attention_heads
        return heads, getattr(config, "head_dim", None) or config.hidden_size // heads


def next_token_logits(model, hidden):
    """The LM head on decoder states, as the model's own forward computes it: Gemma 2 and 3
    soft-cap their logits (cap * tanh(logits / cap)) after the head."""
    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    return cap * (logits / cap).tanh() if cap else logits


def spread_plan(config, devices: list[str]) -> dict[str, str]:
    """A transformers device map of the causal LM `config` describes over `devices`: equal runs
    of consecutive layers, everything the decoder runs before them (embeddings, rotary tables) on
    the first device, its final norm and the LM head on the last. Module names are read from the
    model built on the meta device, not kept by hand."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    parts = DecoderParts(model)
    name = {module: path for path, module in model.named_modules()}
    per_device = -(-len(parts.layers) // len(devices))
    plan = {
        name[child]: devices[0]
        for child in parts.decoder.children()
        if child is not parts.layers and child is not parts.final_norm
    }
    plan |= {name[layer]: devices[i // per_device] for i, layer in enumerate(parts.layers)}
    return plan | {
        name[parts.final_norm]: devices[-1],
        name[model.get_output_embeddings()]: devices[-1],
    }


def sliding_window(config) -> int | None:
    """The shortest attention window of any layer, None where every layer attends to all."""
    window = getattr(config, "sliding_window", None)
    if window is None or getattr(config, "use_sliding_window", True) is False:
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and "sliding_attention" not in layer_types:
        return None
    return int(window)


def tree_packing_exact(config, longest_tree: int) -> bool:
    """Whether a packed tree of `longest_tree` nodes computes what its texts alone do."""
    window = sliding_window(config)
    return window is None or longest_tree <= window
