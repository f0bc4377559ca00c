"""The forward hooks that hand an extraction the residual states and per-head outputs of the
decoder layers it keeps, for the text-by-text (genies.models.activations) and packed
(genies.models.packing) passes alike."""


def register_hooks(parts, residual_layers, head_layers, keep_residual, keep_heads) -> list:
    """Hooks calling `keep_residual(states)` with each listed hidden state and `keep_heads(states)`
    with each listed layer's per-head outputs (its attention's output projection's input), on
    the modules of `parts` (genies.models.families.DecoderParts)."""

    # hidden state i < L is what layer i receives (transformers' hidden_states[i], any embedding
    # scaling applied), state L the final norm's output
    def layer_input(module, args, kwargs) -> None:
        keep_residual(args[0] if args else kwargs["hidden_states"])

    def norm_output(module, args, output) -> None:
        keep_residual(output[0] if isinstance(output, tuple) else output)

    handles = [
        parts.layers[i].register_forward_pre_hook(layer_input, with_kwargs=True)
        if i < len(parts.layers)
        else parts.final_norm.register_forward_hook(norm_output)
        for i in residual_layers
    ]
    return handles + [
        parts.out_projection(i).register_forward_pre_hook(lambda module, args: keep_heads(args[0]))
        for i in head_layers
    ]
