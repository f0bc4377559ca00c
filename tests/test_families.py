"""Every supported decoder family (genies.models.families) on a tiny random model of its own
transformers class, entered as a local Hugging Face folder through the `pretrained` loader (the
documented config entry): the packed extraction against plain per-text passes, zero-shot scores
against an independent log-softmax, one LoRA and one prompt-tuning step with the family's own
target modules, and a multi-GPU plan naming modules that exist."""

import numpy as np
import pytest
import torch
import transformers

from genies import interventions
from genies.data.pairs import evaluation_pairs, training_pairs
from genies.data.splits import build_split, read_split
from genies.errors import GeniesError
from genies.interventions.base import PairData
from genies.models.activations import (
    ExtractionSpec,
    extract_split_templates,
    read_activations,
    split_texts,
)
from genies.models.catalog import resolve_model
from genies.models.families import FAMILIES, spread_plan
from genies.models.loading import load_model, materialise_model, train_tiny_tokenizer
from genies.models.templates import TEMPLATES
from tests.helpers import record, write_vendored

SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "max_position_embeddings": 512,
}
GQA = {"num_key_value_heads": 2}
LONG_WINDOW = 4096  # longer than every tree: packing stays exact
# per architecture: its config class and what distinguishes the family
TINY = {
    "LlamaForCausalLM": (  # Llama 3: grouped keys and values, rope scaling
        "LlamaConfig",
        GQA | {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}},
    ),
    "MistralForCausalLM": ("MistralConfig", GQA | {"sliding_window": LONG_WINDOW}),
    "Qwen2ForCausalLM": ("Qwen2Config", GQA),  # biases on q, k and v
    "Qwen3ForCausalLM": ("Qwen3Config", GQA | {"head_dim": 16}),  # q and k norms
    "Gemma2ForCausalLM": (  # embedding scaling, soft-capped attention and logits, eager only
        "Gemma2Config", GQA | {"head_dim": 16, "sliding_window": LONG_WINDOW},
    ),
    "Gemma3ForCausalLM": (  # alternating sliding-window layers
        "Gemma3TextConfig",
        GQA | {"head_dim": 16, "sliding_window": LONG_WINDOW, "final_logit_softcapping": 30.0},
    ),
    "Phi3ForCausalLM": ("Phi3Config", GQA),  # fused qkv_proj
    "GPTNeoXForCausalLM": ("GPTNeoXConfig", {"rotary_pct": 0.25}),  # parallel, partial rotary
}  # fmt: skip
# the attention's output projection, named here apart from the code under test
OUT_PROJECTION = {"GPTNeoXForCausalLM": ("attention", "dense")}
RESPONSES = {"hi": 1.0, "bye": 0.0, "red sky": 0.0}
PROMPTS = ["Say hi.\n\n### Response:\n", "Count to three.\n", "Name a colour. " * 12]
MAX_LENGTH = 48


def test_every_supported_family_has_a_tiny_model_here():
    assert set(TINY) == set(FAMILIES)


def local_folder(architecture: str, folder, **overrides):
    """A Hugging Face folder (config.json, safetensors, tokenizer) of a seeded tiny model."""
    tokenizer = train_tiny_tokenizer()
    config_class, extra = TINY[architecture]
    config = getattr(transformers, config_class)(
        **SHAPE | extra | overrides,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        architectures=[architecture],
    )
    torch.manual_seed(0)
    getattr(transformers, architecture)(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def as_config_entry(architecture: str, tmp_path, **overrides):
    """The model through the documented entry: loader pretrained, path a local folder."""
    folder = local_folder(architecture, tmp_path / "hf", **overrides)
    settings = {"loader": "pretrained", "path": str(folder), "dtype": "float32"}
    manifest = materialise_model(architecture, settings, tmp_path / "model")
    return manifest, load_model(tmp_path / "model", "cpu", "float32")


@pytest.fixture(scope="module")
def split_path(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    write_vendored(raw, {"d": {"test": [record(prompt, RESPONSES) for prompt in PROMPTS]}})
    build_split(raw, "d", "test", raw / "d.parquet")
    return raw / "d.parquet"


def alone(loaded, architecture: str, ids: list[int]):
    """A text's ids alone through the plain causal LM: every hidden state at the last token,
    and each layer's attention output-projection input (the heads) by a hook of its own."""
    model = loaded.model
    attention, projection = OUT_PROJECTION.get(architecture, ("self_attn", "o_proj"))
    heads = {}
    layers = model.get_decoder().layers
    handles = [
        getattr(getattr(layer, attention), projection).register_forward_pre_hook(
            lambda module, args, i=i: heads.__setitem__(i, args[0][0, -1])
        )
        for i, layer in enumerate(layers)
    ]
    with torch.no_grad():
        output = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    for handle in handles:
        handle.remove()
    residual = torch.stack([state[0, -1] for state in output.hidden_states])
    return residual, torch.stack([heads[i] for i in range(len(layers))]), output.logits[0]


def close(actual, expected) -> bool:
    return bool(((actual - expected).abs() <= 1e-4 + 1e-5 * expected.abs().max()).all())


def extracted(loaded, split_path, tmp_path):
    layers = loaded.model.config.num_hidden_layers
    specs = [
        ExtractionSpec(t, tuple(range(layers + 1)), tuple(range(layers)), "float32", 2, MAX_LENGTH)
        for t in TEMPLATES
    ]
    outs = [tmp_path / f"{spec.template}.safetensors" for spec in specs]
    return specs, outs, extract_split_templates(loaded, split_path, specs, outs, None)


def check_rows_equal_plain_passes(loaded, architecture, split_path, specs, outs):
    split = read_split(split_path)
    heads_shape = None
    for spec, out in zip(specs, outs, strict=True):
        cached, _ = read_activations(out)
        texts, _, _ = split_texts(split, spec.template)
        for row, text in enumerate(texts):
            ids = loaded.tokenizer(text)["input_ids"][-MAX_LENGTH:]
            residual, heads, _ = alone(loaded, architecture, ids)
            heads_shape = cached["heads"].shape[2:]
            assert close(cached["residual"][row], residual), (spec.template, row)
            assert close(cached["heads"][row], heads.reshape(len(heads), *heads_shape))


@pytest.mark.parametrize("architecture", sorted(TINY))
def test_packed_extraction_equals_plain_passes(architecture, split_path, tmp_path, capsys):
    manifest, loaded = as_config_entry(architecture, tmp_path)
    assert manifest["path"] == str(tmp_path / "hf")
    specs, outs, written = extracted(loaded, split_path, tmp_path)
    assert all(metadata["packed"] for metadata, _ in written)
    assert "text by text" not in capsys.readouterr().err
    check_rows_equal_plain_passes(loaded, architecture, split_path, specs, outs)


@pytest.mark.parametrize("architecture", ["MistralForCausalLM", "Gemma3ForCausalLM"])
def test_a_sliding_window_shorter_than_a_tree_falls_back_to_text_by_text(
    architecture, split_path, tmp_path, capsys
):
    """Packed, a window of 8 tokens would count packed positions: wrong numbers. The job says
    so, extracts text by text, and the rows equal the plain passes (which slide the window)."""
    _, loaded = as_config_entry(architecture, tmp_path, sliding_window=8)
    specs, outs, written = extracted(loaded, split_path, tmp_path)
    assert not any(metadata["packed"] for metadata, _ in written)
    assert "sliding window of 8 tokens is shorter than a packed tree" in capsys.readouterr().err
    check_rows_equal_plain_passes(loaded, architecture, split_path, specs, outs)


@pytest.mark.parametrize("architecture", sorted(TINY))
def test_zero_shot_equals_an_independent_log_softmax(architecture, split_path, tmp_path):
    _, loaded = as_config_entry(architecture, tmp_path)
    split = read_split(split_path)
    pairs = evaluation_pairs(split)
    data = PairData(pairs, model=loaded, settings={"batch_size": 4, "max_length": MAX_LENGTH})
    zero_shot = interventions.get("zero_shot")
    probability = zero_shot.score(data, {}, zero_shot.fit(data, {}, 0))
    tokenizer = loaded.tokenizer

    def log_likelihood(prompt: str, response: str) -> float:
        head = [tokenizer.bos_token_id]  # the tiny tokenizer adds BOS
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        scored = tokenizer(response, add_special_tokens=False)["input_ids"]
        scored = [*scored, tokenizer.eos_token_id]
        ids = (head + prompt_ids + scored)[-MAX_LENGTH:]
        _, _, logits = alone(loaded, architecture, ids)
        log_p = logits.double().log_softmax(-1)
        start = len(ids) - len(scored)
        return sum(log_p[t - 1, ids[t]].item() for t in range(start, len(ids)))

    expected = []
    for pair in pairs.itertuples():
        chosen = log_likelihood(pair.prompt, pair.chosen)
        rejected = log_likelihood(pair.prompt, pair.rejected)
        expected.append(1 / (1 + np.exp(rejected - chosen)))
    np.testing.assert_allclose(probability, expected, atol=1e-5)


@pytest.mark.parametrize("architecture", sorted(TINY))
@pytest.mark.parametrize("name", ["lora_fine_tuning", "prompt_tuning"])
def test_a_training_step_runs_with_the_familys_own_modules(
    name, architecture, split_path, tmp_path
):
    _, loaded = as_config_entry(architecture, tmp_path)
    pairs = training_pairs(read_split(split_path), 0)
    data = PairData(pairs, model=loaded, settings={"batch_size": 4, "max_length": MAX_LENGTH})
    method = interventions.get(name)
    hp = {key: spec["default"] for key, spec in method.hyperparameters.items()}
    hp |= {"steps": 1, "batch_size": 2}
    state = method.fit(data, hp, 0)
    assert len(state.info["loss"]) == 1 and np.isfinite(state.info["loss"][0])
    if name == "lora_fine_tuning":
        targets = set(state.info["peft_config"]["target_modules"])
        assert targets == set(FAMILIES[architecture].lora_targets)
        modules = {path.rsplit(".", 1)[-1] for path, _ in loaded.model.named_modules()}
        assert targets <= modules
        assert any(key.startswith("base_model") for key in state.tensors)


@pytest.mark.parametrize("architecture", sorted(TINY))
def test_the_multi_gpu_plan_covers_every_weight_with_modules_that_exist(architecture, tmp_path):
    folder = local_folder(architecture, tmp_path)
    config = transformers.AutoConfig.from_pretrained(folder)
    plan = spread_plan(config, ["cuda:0", "cuda:1"])
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    modules = dict(model.named_modules())
    assert set(plan) <= set(modules)
    for name, _ in [*model.named_parameters(), *model.named_buffers()]:
        assert any(name.startswith(f"{key}.") for key in plan), name
    layers = [key for key in plan if key.rsplit(".", 1)[-1].isdigit()]
    assert [plan[key] for key in layers] == ["cuda:0", "cuda:0", "cuda:1"]


def test_an_unsupported_architecture_is_refused_in_one_line(tmp_path):
    tokenizer = train_tiny_tokenizer()
    config = transformers.GPT2Config(
        n_embd=32, n_layer=1, n_head=2, vocab_size=len(tokenizer), architectures=["GPT2LMHeadModel"]
    )
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    settings = {"loader": "pretrained", "path": str(tmp_path / "hf"), "dtype": "float32"}
    with pytest.raises(GeniesError) as raised:
        materialise_model("gpt2-tiny", settings, tmp_path / "model")
    message = str(raised.value)
    assert "\n" not in message
    assert "GPT2LMHeadModel: not a supported decoder family" in message
    assert "GPTNeoXForCausalLM" in message
    assert not (tmp_path / "model").exists()
    # the config check refuses the folder before any job runs, naming the model and the file
    with pytest.raises(GeniesError) as raised:
        resolve_model("gpt2-tiny", settings)
    assert str(raised.value).startswith(f"config: model gpt2-tiny: {tmp_path / 'hf'}/config.json")
    assert "GPT2LMHeadModel: not a supported decoder family" in str(raised.value)
    # a supported family passes it
    folder = local_folder("Qwen2ForCausalLM", tmp_path / "qwen")
    assert resolve_model("qwen", settings | {"path": str(folder)})["path"] == str(folder)
