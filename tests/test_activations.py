"""The activation cache on tiny-llama and the embedded SmolLM2: a cached row equals the text run
alone, unpadded."""

import json
import tempfile
import threading
from dataclasses import replace

import pytest
import torch

from genies import cli
from genies.data.splits import build_split, read_split
from genies.errors import GeniesError
from genies.models.activations import (
    ExtractionSpec,
    encode,
    extract,
    extract_split,
    extract_split_templates,
    read_activations,
    resolve_layers,
    sidecar_path,
    split_texts,
)
from genies.models.catalog import resolve_model
from genies.models.devices import (
    claim_devices,
    claim_slots,
    compute_dtype,
    default_lock_dir,
    visible_ids,
)
from genies.models.families import spread_plan
from genies.models.loading import load_model, materialise_model, train_tiny_tokenizer
from genies.models.packing import node_batches, prefix_trees
from genies.models.templates import TEMPLATES
from tests.helpers import EXTRACTION_SPEC, RAW_DIR, record, write_vendored


def close(actual: torch.Tensor, expected: torch.Tensor) -> bool:
    """Equal up to float32 rounding: within 1e-4, plus 1e-6 of the row's largest magnitude.
    SmolLM2's residual stream holds entries near 560, where float32 values lie 6e-5 apart, so
    an absolute 1e-4 is under two steps there (measured deviations: up to 2e-4)."""
    scale = expected.abs().max()
    return bool(((actual - expected).abs() <= 1e-4 + 1e-6 * scale).all())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    materialise_model("tiny-llama", resolve_model("tiny-llama", {}), folder)
    return load_model(folder, "cpu", "float32")


@pytest.fixture(scope="module")
def split_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("splits") / "alpaca_short" / "test.parquet"
    build_split(RAW_DIR, "alpaca_short", "test", path)
    return path


def alone(loaded, text: str, ids=None):
    """Reference: the text (or the given ids) alone, no padding, all hidden states and o_proj
    inputs by hand."""
    decoder = loaded.model.model
    ids = torch.tensor([ids if ids is not None else loaded.tokenizer(text)["input_ids"]])
    heads = {}
    handles = [
        layer.self_attn.o_proj.register_forward_pre_hook(
            lambda module, args, i=i: heads.__setitem__(i, args[0][0, -1])
        )
        for i, layer in enumerate(decoder.layers)
    ]
    with torch.no_grad():
        states = decoder(input_ids=ids, output_hidden_states=True).hidden_states
    for handle in handles:
        handle.remove()
    residual = torch.stack([state[0, -1] for state in states])
    return residual, torch.stack([heads[i] for i in range(len(decoder.layers))])


@pytest.mark.parametrize(
    ("side", "budget"),
    # the CPU's budget (0) copies each layer's rows at once; a large one (as on a GPU) keeps
    # views of the last column and stacks them once per batch
    [("left", None), ("right", None), ("left", 2**40)],
)
def test_a_cached_row_equals_the_text_run_alone(tiny, split_path, side, budget, monkeypatch):
    if budget is not None:
        monkeypatch.setattr("genies.models.activations.memory_budget", lambda device: budget)
    split = read_split(split_path).head(6)
    texts, _, _ = split_texts(split, "yes")
    layers = tiny.model.config.num_hidden_layers
    spec = ExtractionSpec(
        "yes", tuple(range(layers + 1)), tuple(range(layers)), "float32", 4, 512, side
    )
    cached, stats = extract(tiny.model, tiny.tokenizer, texts, spec, progress=False)
    assert stats["padding_fraction"] > 0  # the batches really were padded
    heads_shape = (tiny.model.config.num_attention_heads, tiny.model.config.head_dim)
    for row, text in enumerate(texts):
        residual, heads = alone(tiny, text)
        assert close(cached["residual"][row], residual)
        assert close(cached["heads"][row], heads.reshape(layers, *heads_shape))


RESPONSES = {  # examples of 2, 3 and 4 responses; the last prompt is cut at max_length
    2: {"hi": 1.0, "bye": 0.0},
    3: {"1 2 3": 1.0, "1 2": 0.0, "3 2 1": 0.0},
    4: {"red": 1.0, "a car": 0.0, "a dog": 0.0, "blue sky": 0.0},
}


@pytest.fixture(scope="module")
def packing_splits(tmp_path_factory):
    prompts = ["Say hi.\n\n### Response:\n", "Count to three.\n", "Name a colour. " * 30]
    raw = tmp_path_factory.mktemp("raw")
    write_vendored(
        raw,
        {
            f"k{k}": {"test": [record(prompt, responses) for prompt in prompts]}
            for k, responses in RESPONSES.items()
        },
    )
    for k in RESPONSES:
        build_split(raw, f"k{k}", "test", raw / f"k{k}.parquet")
    return {k: raw / f"k{k}.parquet" for k in RESPONSES}


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The embedded model, in float32."""
    folder = tmp_path_factory.mktemp("models") / "smollm2-135m"
    materialise_model("smollm2-135m", resolve_model("smollm2-135m", {}), folder)
    return load_model(folder, "cpu", "float32")


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    """The second embedded model (Gemma 3, sliding-window layers), in float32."""
    folder = tmp_path_factory.mktemp("models") / "gemma3-270m"
    materialise_model("gemma3-270m", resolve_model("gemma3-270m", {}), folder)
    return load_model(folder, "cpu", "float32")


@pytest.mark.parametrize("model", ["tiny", "smollm2", "gemma"])
@pytest.mark.parametrize("k", sorted(RESPONSES))
def test_packed_rows_equal_each_text_run_alone(request, model, packing_splits, tmp_path, k):
    loaded = request.getfixturevalue(model)
    layers = loaded.model.config.num_hidden_layers
    max_length = 64
    specs = [
        ExtractionSpec(
            template, tuple(range(layers + 1)), tuple(range(layers)), "float32", 2, max_length
        )
        for template in TEMPLATES
    ]
    outs = [tmp_path / f"{template}.safetensors" for template in TEMPLATES]
    written = extract_split_templates(loaded, packing_splits[k], specs, outs, None)
    split = read_split(packing_splits[k])
    heads_shape = (loaded.model.config.num_attention_heads, loaded.model.config.head_dim)
    for spec, out, (metadata, _) in zip(specs, outs, written, strict=True):
        cached, _ = read_activations(out)
        texts, examples, responses = split_texts(split, spec.template)
        assert cached["example_index"].tolist() == examples.tolist()
        assert cached["response_index"].tolist() == responses.tolist()
        lengths = [len(loaded.tokenizer(text)["input_ids"]) for text in texts]
        assert metadata["truncated_rows"] == sum(n > max_length for n in lengths) >= k
        for row, text in enumerate(texts):
            ids = loaded.tokenizer(text)["input_ids"][-max_length:]
            residual, heads = alone(loaded, text, ids)
            assert close(cached["residual"][row], residual)
            assert close(cached["heads"][row], heads.reshape(layers, *heads_shape))
    # Gemma 3 packs only where an example's texts fit its 512-token window, text by text else
    window = getattr(loaded.model.config, "sliding_window", None)
    packs = window is None or max(examples_tokens(loaded, split, max_length)) <= window
    assert written[0][0]["packed"] == packs
    if packs:  # shared prefixes were computed once: fewer tokens than the texts hold
        assert written[0][0]["computed_tokens"] < 0.8 * written[0][0]["template_tokens"]


def examples_tokens(loaded, split, max_length: int) -> list[int]:
    """Each example's tokens over every template and response, each text cut at max_length."""
    totals = {}
    for template in TEMPLATES:
        texts, examples, _ = split_texts(split, template)
        for text, example in zip(texts, examples, strict=True):
            n = min(len(loaded.tokenizer(text)["input_ids"]), max_length)
            totals[example] = totals.get(example, 0) + n
    return list(totals.values())


@pytest.mark.parametrize("attention", ["sdpa", "eager", "fallback"])
def test_trees_of_unequal_size_in_one_batch_equal_each_text_run_alone(
    attention, tiny, packing_splits, tmp_path, monkeypatch, capsys
):
    # every tree of the split in one batch, so padding nodes sit between trees of other sizes;
    # sdpa takes the tree mask as bool, eager as additive, and an implementation that takes no
    # 4-D mask (sdpa struck from the known ones here) falls back to text by text
    from genies.models import packing

    monkeypatch.setattr(packing, "node_batches", lambda sizes, budget: [list(range(len(sizes)))])
    if attention == "fallback":
        monkeypatch.setattr(packing, "MASK_KINDS", {"eager": packing.MASK_KINDS["eager"]})
    before = tiny.model.config._attn_implementation
    if attention != "fallback":
        tiny.model.set_attn_implementation(attention)
    layers = tiny.model.config.num_hidden_layers
    spec = ExtractionSpec("raw", tuple(range(layers + 1)), tuple(range(layers)), "float32", 2, 64)
    out = tmp_path / "raw.safetensors"
    try:
        [(metadata, run)] = extract_split_templates(tiny, packing_splits[4], [spec], [out])
    finally:
        tiny.model.set_attn_implementation(before)
    assert ("extracting text by text" in capsys.readouterr().err) == (attention == "fallback")
    assert run["padding_fraction"] > 0
    cached, _ = read_activations(out)
    texts, _, _ = split_texts(read_split(packing_splits[4]), "raw")
    heads_shape = (tiny.model.config.num_attention_heads, tiny.model.config.head_dim)
    for row, text in enumerate(texts):
        residual, heads = alone(tiny, text, tiny.tokenizer(text)["input_ids"][-64:])
        assert close(cached["residual"][row], residual)
        assert close(cached["heads"][row], heads.reshape(layers, *heads_shape))


def test_texts_that_share_no_first_token_become_separate_trees():
    # texts cut at max_length lose their start: packed together they would share nothing and
    # pay for the masked attention between them
    groups = prefix_trees([[1, 2, 3], [5, 6], [1, 2, 4], [5, 7]])
    assert [texts for texts, _ in groups] == [[0, 2], [1, 3]]
    assert [tree[0].tolist() for _, tree in groups] == [[1, 2, 3, 4], [5, 6, 7]]
    assert [tree[1].tolist() for _, tree in groups] == [[-1, 0, 1, 1], [-1, 0, 0]]
    assert [tree[2] for _, tree in groups] == [[2, 3], [1, 2]]


def test_batches_keep_trees_of_similar_size_within_the_budget():
    # sorted by size; 100+95 fills 2x100 to 97.5%; 50 would fill 3x100 to 82%
    assert node_batches([50, 100, 10, 95], token_budget=1000) == [[1, 3], [0], [2]]
    # the budget caps a batch even when the sizes are equal
    assert node_batches([10] * 5, token_budget=20) == [[0, 1], [2, 3], [4]]
    # a tree larger than the budget still gets a batch of its own
    assert node_batches([30, 5], token_budget=20) == [[0], [1]]


def test_cache_file_and_sidecar(tiny, split_path, tmp_path):
    spec = ExtractionSpec("raw", resolve_layers([-1, 0], 4, "residual"), (1,), "float16", 8, 64)
    out = tmp_path / "act" / "test.safetensors"
    extract_split(tiny, split_path, spec, out, max_examples=5)
    tensors, metadata = read_activations(out)
    assert tensors["residual"].shape == (10, 2, tiny.model.config.hidden_size)
    assert tensors["residual"].dtype == torch.float16
    assert tensors["heads"].shape[:2] == (10, 1)
    assert tensors["example_index"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert tensors["response_index"].tolist() == [0, 1] * 5
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar == metadata
    assert metadata["model"] == "tiny-llama"
    assert metadata["weights_sha256"] == tiny.manifest["weights_sha256"]
    assert metadata["residual_layers"] == [0, 3] and metadata["head_layers"] == [1]
    assert metadata["template"] == "raw" and metadata["position"] == "last_token"
    assert metadata["rows"] == 10 and metadata["examples"] == 5
    assert metadata["storage_dtype"] == "float16" and metadata["compute_dtype"] == "float32"
    assert len(metadata["checksum"]) == 64 and len(metadata["split_sha256"]) == 64


def test_a_corrupt_or_truncated_cache_file_is_refused(tiny, split_path, tmp_path):
    spec = ExtractionSpec("raw", (3,), (), "float16", 8, 64)
    out = tmp_path / "test.safetensors"
    extract_split(tiny, split_path, spec, out, max_examples=3)
    data = bytearray(out.read_bytes())
    data[-5] ^= 0x01  # inside the tensor data
    out.write_bytes(bytes(data))
    with pytest.raises(GeniesError, match=r"test\.safetensors: checksum mismatch"):
        read_activations(out)
    out.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(GeniesError, match=r"test\.safetensors: corrupt or truncated"):
        read_activations(out)
    with pytest.raises(GeniesError, match="activation file not found"):
        read_activations(tmp_path / "missing.safetensors")


def test_an_edited_header_a_reshaped_tensor_or_another_sidecar_is_refused(
    tiny, split_path, tmp_path
):
    from safetensors.torch import load_file, save_file

    spec = ExtractionSpec("raw", (3,), (1,), "float16", 8, 64)
    out = tmp_path / "test.safetensors"
    extract_split(tiny, split_path, spec, out, max_examples=3)
    tensors, metadata = read_activations(out)
    header = {"genies": json.dumps(metadata)}

    edited = {"genies": json.dumps(metadata | {"template": "yes"})}
    save_file(load_file(out), out, metadata=edited)
    with pytest.raises(GeniesError, match="checksum mismatch"):
        read_activations(out)
    # the same bytes viewed in another shape
    reshaped = tensors | {"heads": tensors["heads"].reshape(3 * 2, 1, -1, 2)}
    save_file(reshaped, out, metadata=header)
    with pytest.raises(GeniesError, match="checksum mismatch"):
        read_activations(out)
    save_file(tensors, out, metadata=header)
    read_activations(out)  # the untouched file and sidecar are accepted
    sidecar_path(out).write_text(json.dumps(metadata | {"rows": 7}))
    with pytest.raises(GeniesError, match=r"test\.json: differs from the header"):
        read_activations(out)
    sidecar_path(out).unlink()
    with pytest.raises(GeniesError, match=r"test\.json: missing or unreadable"):
        read_activations(out)


def test_an_interrupted_extraction_leaves_no_file(tiny, split_path, tmp_path, monkeypatch):
    import genies.models.activations as activations

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(activations, "save_file", fail)
    out = tmp_path / "test.safetensors"
    with pytest.raises(KeyboardInterrupt):
        extract_split(tiny, split_path, ExtractionSpec("raw", (0,), (), "float16"), out, 2)
    assert list(tmp_path.iterdir()) == []


def test_states_past_the_storage_dtype_are_refused_and_nothing_is_written(split_path, tmp_path):
    folder = tmp_path / "tiny-llama"
    materialise_model("tiny-llama", resolve_model("tiny-llama", {}), folder)
    loaded = load_model(folder, "cpu", "float32")
    with torch.no_grad():  # embeddings near 1e6: the residual stream before layer 0 holds them
        loaded.model.get_input_embeddings().weight.mul_(1e8)
    out = tmp_path / "act" / "test.safetensors"
    spec = ExtractionSpec("raw", (0,), (1,), "float16", 8, 64)
    message = r"test\.safetensors: \d+ residual values of tiny-llama in layers 0 .* as float16"
    with pytest.raises(GeniesError, match=message):
        extract_split(loaded, split_path, spec, out, max_examples=3)
    with pytest.raises(GeniesError, match=message):
        extract_split_templates(loaded, split_path, [spec], [out], max_examples=3)
    assert not out.exists() and not sidecar_path(out).exists()
    extract_split(loaded, split_path, replace(spec, storage_dtype="bfloat16"), out, 3)
    assert torch.isfinite(read_activations(out)[0]["residual"]).all()


def test_layer_selection_errors():
    assert resolve_layers("all", 3, "head") == (0, 1, 2)
    assert resolve_layers("none", 3, "head") == ()
    assert resolve_layers([-1, 0, -1], 5, "residual") == (0, 4)
    with pytest.raises(GeniesError, match="residual layer 5 out of range for 5 layers"):
        resolve_layers([5], 5, "residual")


def test_gpu_slots_are_claimed_exclusively(tmp_path):
    gpus = ["0", "1"]
    with claim_slots(gpus, 1, tmp_path) as first, claim_slots(gpus, 1, tmp_path) as second:
        assert (first, second) == ([0], [1])
        with (
            pytest.raises(GeniesError, match="no 1 free GPU"),
            claim_slots(gpus, 1, tmp_path, timeout_s=0),
        ):
            pass
    with claim_slots(gpus, 1, tmp_path) as again:
        assert again == [0]  # released on exit


def test_a_job_needing_several_gpus_takes_all_or_none(tmp_path):
    gpus = ["0", "1", "2"]
    with claim_slots(gpus, 1, tmp_path) as one:
        assert one == [0]
        with claim_slots(gpus, 2, tmp_path) as two:
            assert two == [1, 2]
        with pytest.raises(GeniesError, match="no 3 free GPU"), claim_slots(gpus, 3, tmp_path, 0):
            pass
        # the failed claim released what it had taken: two are free again
        with claim_slots(gpus, 2, tmp_path) as again:
            assert again == [1, 2]
    with (
        pytest.raises(GeniesError, match="needs 4 GPUs, but only 3 are visible"),
        claim_slots(gpus, 4, tmp_path),
    ):
        pass


def test_gpu_locks_are_named_by_the_visible_gpu(tmp_path, monkeypatch):
    # two jobs given one GPU each through CUDA_VISIBLE_DEVICES both call theirs cuda:0; the entry
    # (its physical number) tells them apart
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with claim_slots(visible_ids(1), 1, tmp_path):
        assert [p.name for p in tmp_path.iterdir()] == ["gpu-3.lock"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_ids(2) == ["0", "1"]


def test_jobs_of_different_slurm_allocations_do_not_share_gpu_locks(tmp_path, monkeypatch):
    # where SLURM confines jobs to their devices, each job calls its own GPU "0"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("SLURM_JOB_ID", "101")
    with claim_slots(["0"], 1, default_lock_dir()):
        monkeypatch.setenv("SLURM_JOB_ID", "102")
        with claim_slots(["0"], 1, default_lock_dir(), timeout_s=0) as other:
            assert other == [0]  # another allocation's GPU: no wait
        monkeypatch.setenv("SLURM_JOB_ID", "101")
        with (
            pytest.raises(GeniesError, match="no 1 free GPU"),
            claim_slots(["0"], 1, default_lock_dir(), timeout_s=0),
        ):
            pass  # a second job of the same allocation waits for it


def test_a_job_claims_as_many_of_its_visible_gpus_as_it_asks(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # as if two GPUs were granted
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    with claim_devices(2, tmp_path) as devices:
        assert devices == ["cuda:0", "cuda:1"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-5.lock", "gpu-7.lock"]
    assert "devices: cuda:0, cuda:1 (CUDA_VISIBLE_DEVICES=5,7)" in capsys.readouterr().err
    with claim_devices(0, tmp_path) as devices:
        assert devices == ["cpu"]  # `gpus: 0`: the CPU, though GPUs are visible


def test_an_extraction_asked_for_no_gpu_runs_on_the_cpu(split_path, tmp_path, monkeypatch, capsys):
    # `gpus: 0`: the model stays on the CPU though GPUs are visible (this torch has no CUDA, so
    # a GPU claimed here would fail to load the model)
    model_dir = tmp_path / "tiny-llama"
    materialise_model("tiny-llama", resolve_model("tiny-llama", {}), model_dir)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "raw.safetensors"
    command = ["extract", "--model-dir", str(model_dir), "--split", str(split_path)]
    command += ["--spec", json.dumps(EXTRACTION_SPEC), "--out", str(out), "--max-examples", "2"]
    assert cli.main([*command, "--gpus", "0"]) == 0
    assert "devices: cpu (CUDA_VISIBLE_DEVICES=" in capsys.readouterr().err
    assert out.exists() and not list(tmp_path.glob("genies-gpu-slots-*/*.lock"))


def test_a_waiting_job_gets_the_slot_when_it_is_released(tmp_path):
    got = []
    with claim_slots(["0"], 1, tmp_path):
        waiter = threading.Thread(
            target=lambda: got.append(claim_slots(["0"], 1, tmp_path, poll_s=0.05).__enter__())
        )
        waiter.start()
        waiter.join(0.3)
        assert got == []  # still waiting while the slot is held
    waiter.join(5)
    assert got == [[0]]


def test_a_model_spreads_over_its_gpus_in_equal_runs_of_layers():
    from transformers import LlamaConfig

    config = LlamaConfig(
        hidden_size=64, intermediate_size=64, num_hidden_layers=30, num_attention_heads=4,
        architectures=["LlamaForCausalLM"],
    )  # fmt: skip
    device_map = spread_plan(config, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"])
    layers = [device_map[f"model.layers.{i}"] for i in range(30)]
    assert [layers.count(f"cuda:{d}") for d in range(4)] == [8, 8, 8, 6]
    assert layers == sorted(layers)  # consecutive runs: activations cross each boundary once
    assert device_map["model.embed_tokens"] == "cuda:0"
    assert device_map["model.norm"] == device_map["lm_head"] == "cuda:3"


@pytest.mark.parametrize("native", [True, False])
def test_compute_dtype(monkeypatch, native):
    # the CPU's answer is replaced, so both branches run on any machine
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert compute_dtype("auto", "cpu") == ("bfloat16" if native else "float32")
    assert compute_dtype("auto", "cuda:1") == "bfloat16"
    assert compute_dtype("float16", "cpu") == "float16"


def test_texts_cut_by_the_pipeline_raise_no_tokenizer_warning(caplog):
    """Transformers warns that a text beyond the tokenizer's maximum length 'will result in
    indexing errors'; the pipeline cuts such texts itself and counts them."""
    from transformers.utils import logging as hf_logging

    tokenizer = train_tiny_tokenizer()
    tokenizer.model_max_length = 8
    hf_logging.enable_propagation()  # transformers' records reach caplog
    try:
        with caplog.at_level("WARNING"):
            ids, truncated = encode(tokenizer, ["a b c d e f g h i j k l m n o p", "a b"], 8)
    finally:
        hf_logging.disable_propagation()
    assert truncated == 1 and [len(row) for row in ids] == [8, len(ids[1])]
    assert "Token indices sequence length" not in caplog.text
