import pytest
import yaml

from genies.config import load_config, validate_config
from genies.errors import GeniesError
from genies.interventions import registry
from tests.helpers import REPO, run_genies

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def validate(config: dict):
    return validate_config({"raw_dir": str(REPO / "data" / "raw"), **config}, SCHEMA)


def test_shipped_configs_are_valid():
    default = load_config(REPO / "config" / "config.yaml", SCHEMA)
    assert len(default.distributions) == 66 and len(default.shifts) == 15
    assert list(default.models) == ["smollm2-135m"]
    paper = load_config(REPO / "config" / "paper.yaml", SCHEMA)
    assert list(paper.models) == ["openllama-3b", "llama-7b", "llama-13b", "llama-30b"]
    assert paper.models["llama-30b"]["loader"] == "pretrained"
    assert paper.max_examples == {"train": None, "test": None}
    test = load_config(REPO / "config" / "test.yaml", SCHEMA)
    assert list(test.models) == ["tiny-llama"]
    two = load_config(REPO / "config" / "two-families.yaml", SCHEMA)
    assert list(two.models) == ["smollm2-135m", "gemma3-270m"]
    assert two.models["gemma3-270m"]["loader"] == "embedded_gguf"
    # the default run in every other key
    default_raw, two_raw = (
        yaml.safe_load((REPO / "config" / name).read_text())
        for name in ("config.yaml", "two-families.yaml")
    )
    assert two_raw == default_raw | {
        "models": ["smollm2-135m", "gemma3-270m"],
        "activations": {"storage_dtype": "bfloat16"},  # Gemma 3's residuals overflow float16
    }
    assert two.activations["storage_dtype"] == "bfloat16"
    assert [s.name for s in test.shifts] == ["alpaca_short->alpaca_long"]


def test_defaults_are_filled_in():
    config = {"raw_dir": str(REPO / "data" / "raw")}
    resolved = validate_config(config, SCHEMA)
    assert config["shifts"] == "genies" and config["seed"] == 0
    assert len(resolved.shifts) == 15 and "mms" in resolved.interventions
    assert resolved.models["smollm2-135m"]["loader"] == "embedded_gguf"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"interventions": ["mms", "rlhf"]},
            r"config: interventions\[1\]: 'rlhf' is not one of \['ccs', 'cra', ",
        ),
        ({"shifts": "hardest"}, r"config: shifts: unknown shift set 'hardest'; allowed: genies, "),
        ({"shifts": ["math->nope"]}, r"config: shifts: unknown shift math->nope"),
        ({"distributions": ["math", "klingon"]}, r"unknown distribution 'klingon'; known: "),
        (
            {"models": ["gpt-5"]},
            r"unknown model 'gpt-5'; known: smollm2-135m, gemma3-270m, tiny-llama",
        ),
        (
            {"models": ["mine"], "model_settings": {"mine": {"loader": "pretrained"}}},
            r"mine: loader 'pretrained' needs a path",
        ),
        (
            {"model_settings": {"llama-7b": {"dtype": "int3"}}},
            r"model_settings\.llama-7b\.dtype: 'int3'",
        ),
        ({"seeds": 1}, r"'seeds' was unexpected\); allowed keys: raw_dir, "),
        ({"seed": -1}, r"config: seed: -1 is less than the minimum of 0"),
        (
            {"hyperparameters": {"mms": {"top_heads": 0}}},
            r"config: hyperparameters\.mms\.top_heads: 0 is less than the minimum of 1",
        ),
        (
            {"hyperparameters": {"ccs": {"lr": -0.001}}},
            r"config: hyperparameters\.ccs\.lr: -0\.001 is less than or equal to the minimum",
        ),
        (
            {"hyperparameters": {"mms": {"top_head": 8}}},
            r"config: hyperparameters\.mms: .*'top_head' was unexpected",
        ),
        (
            {"hyperparameters": {"rlhf": {}}},
            r"config: hyperparameters: .*'rlhf' was unexpected",
        ),
        (
            {"model_settings": {"smollm2-135m": {"hyperparameters": {"cra": {"alpha": "x"}}}}},
            r"config: model_settings\.smollm2-135m\.hyperparameters\.cra\.alpha: 'x' is not",
        ),
        (
            {"model_settings": {"smollm2-135M": {"batch_size": 8}}},
            r"config: model_settings: 'smollm2-135M' is neither in models",
        ),
        ({"interventions": ["mms"]}, r"config: interventions: zero_shot is required"),
        (
            {"hyperparameters": {"lora_fine_tuning": {"r": 0}}},
            r"config: hyperparameters\.lora_fine_tuning\.r: 0 is less than the minimum of 1",
        ),
        (
            {"hyperparameters": {"prompt_tuning": {"learning_rate": 0}}},
            r"config: hyperparameters\.prompt_tuning\.learning_rate: 0 is less than or equal",
        ),
        (
            {"hyperparameters": {"lora_fine_tuning": {"target_modules": "q_proj"}}},
            r"config: hyperparameters\.lora_fine_tuning\.target_modules: 'q_proj' is not",
        ),
        (
            {"contrasts": [["mms", "rlhf"]]},
            r"config: contrasts: \[mms, rlhf\]: 'rlhf' is not among the configured interventions",
        ),
        (
            {"interventions": ["zero_shot", "mms"], "contrasts": [["mms", "probe"]]},
            r"config: contrasts: \[mms, probe\]: 'probe' is not among the configured "
            r"interventions \(zero_shot, mms\)",
        ),
        ({"contrasts": [["mms", "mms"]]}, r"config: contrasts: \[mms, mms\] compares a method"),
        ({"contrasts": [["mms"]]}, r"config: contrasts\[0\]: \['mms'\] is too short"),
    ],
)
def test_bad_config_names_the_key_and_the_allowed_values(config, message):
    with pytest.raises(GeniesError, match=message):
        validate(config)


def test_contrasts_default_to_the_baselines_and_the_trained_pairs():
    assert len(validate({}).contrasts) == 55  # 11 methods: 9 + 10 + 36, genies.evaluation
    named = validate({"contrasts": [["mms", "lora_fine_tuning"], ["cra", "zero_shot"]]})
    assert named.contrasts == [("mms", "lora_fine_tuning"), ("cra", "zero_shot")]


def test_hyperparameters_resolve_defaults_then_config_then_model_overrides():
    resolved = validate(
        {
            "models": ["smollm2-135m", "tiny-llama"],
            "interventions": ["zero_shot", "mms", "cra"],
            "hyperparameters": {"mms": {"top_heads": 8}},
            "model_settings": {"tiny-llama": {"hyperparameters": {"mms": {"top_heads": 2}}}},
        }
    )
    assert resolved.hyperparameters["smollm2-135m"]["mms"]["top_heads"] == 8
    assert resolved.hyperparameters["tiny-llama"]["mms"]["top_heads"] == 2
    # a key nobody set keeps the method's default, for every model
    defaults = {name: spec["default"] for name, spec in registry()["cra"].hyperparameters.items()}
    assert resolved.hyperparameters["tiny-llama"]["cra"] == defaults


def test_cache_templates_are_what_every_method_reads_where_one_configured_reads_any():
    only_mms = validate({"interventions": ["zero_shot", "mms"]}).activations["templates"]
    # mms reads every head of the raw template, lat_stim_1 and probe its residuals; cra every
    # head of yes/no, ccs their last residual; lat_stim_2 its template's residuals: all stored
    assert only_mms["raw"] == {"residual": "all", "heads": "all"}
    assert only_mms["yes"] == only_mms["no"] == {"residual": [-1], "heads": "all"}
    assert only_mms["lat_stim"]["residual"] != "none"
    everything = validate({"interventions": list(registry())}).activations["templates"]
    assert everything == only_mms
    no_cache = validate({"interventions": ["zero_shot", "random"]}).activations["templates"]
    assert no_cache == {}
    # an explicit choice wins, if it keeps what the methods read
    explicit = {"raw": {"residual": "all", "heads": "all"}, "yes": {"residual": [1], "heads": [0]}}
    chosen = validate(
        {"interventions": ["zero_shot", "mms"], "activations": {"templates": explicit}}
    )
    assert chosen.activations["templates"] == explicit
    short = {"raw": {"residual": "all", "heads": [0]}}
    with pytest.raises(GeniesError, match=r"templates\.raw\.heads: keeps \[0\], but the .* 'all'"):
        validate({"interventions": ["zero_shot", "mms"], "activations": {"templates": short}})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_examples": 3}, r"max_examples: 3 is too few for cra on smollm2-135m .* at least 5"),
        (
            {"max_examples": 4, "interventions": ["zero_shot", "few_shot"]},
            r"max_examples: 4 is too few for few_shot .* at least 5",
        ),
        (
            {"max_examples": 5, "hyperparameters": {"few_shot": {"shots": 5}}},
            r"max_examples: 5 is too few for few_shot .* at least 6",
        ),
        (  # fewer training pairs than a reward model's step takes
            {"max_examples": 7, "hyperparameters": {"lora_fine_tuning": {"batch_size": 8}}},
            r"max_examples: 7 is too few for lora_fine_tuning .* at least 8",
        ),
        (
            {
                "max_examples": {"train": 7, "test": 20},
                "hyperparameters": {"lora_fine_tuning": {"batch_size": 8}},
            },
            r"max_examples\.train: 7 is too few for lora_fine_tuning .* at least 8",
        ),
    ],
)
def test_too_few_examples_for_a_method_are_refused(config, message):
    with pytest.raises(GeniesError, match=message):
        validate(config)
    validate({**config, "max_examples": 10})


def test_check_config_command(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"shifts": ["alpaca_mmlu->klingon"]}))
    result = run_genies("check-config", str(path))
    assert result.returncode == 1
    assert "unknown shift alpaca_mmlu->klingon" in result.stderr
    result = run_genies("check-config", "config/config.yaml")
    assert result.returncode == 0 and "15 shifts" in result.stdout
