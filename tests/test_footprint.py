"""What a model job asks a cluster for (genies.models.footprint): at least what real jobs on the
embedded model use, and at least what a paper-size model needs on any hardware."""

import json
import subprocess
import sys
import time

import pytest

from genies.data.splits import build_split, read_examples
from genies.interventions import get
from genies.models.catalog import resolve_model
from genies.models.footprint import Work, compute_seconds, memory_mb, runtime_min
from genies.models.loading import materialise_model
from tests.helpers import ENV, RAW_DIR

# A child's peak resident memory, measured from a parent that has no other child.
PEAK_OF_CHILD = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, done.returncode)
"""
# code_hard's texts run past 256 tokens: every text is cut to full length, as the bounds assume
MAX_LENGTH, BATCH, EXAMPLES = 256, 16, 16


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "smollm2-135m"
    return folder, materialise_model("smollm2-135m", resolve_model("smollm2-135m", {}), folder)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    path = tmp_path_factory.mktemp("splits") / "train.parquet"
    build_split(RAW_DIR, "code_hard", "train", path)
    return path


def measured(*command: str) -> tuple[int, float]:
    """(peak resident MB, wall seconds) of `genies command`."""
    start = time.perf_counter()
    genies = [sys.executable, "-m", "genies", *command]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_OF_CHILD, *genies], env=ENV, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    peak, returncode = map(int, done.stdout.split())
    assert returncode == 0, done.stderr[-2000:]
    return peak, seconds


def test_an_extraction_uses_less_than_it_asks(smollm2, split, tmp_path):
    folder, manifest = smollm2
    spec = {
        "templates": {"raw": {"residual": "all", "heads": "all"}},
        "storage_dtype": "float16",
        "padding_side": "left",
        "dtype": "float32",
        "max_length": MAX_LENGTH,
    }
    peak, seconds = measured(
        "extract", "--model-dir", str(folder), "--split", str(split), "--spec", json.dumps(spec),
        "--out", str(tmp_path / "raw.safetensors"), "--max-examples", str(EXAMPLES),
        "--threads", "1", "--batch-size", str(BATCH), "--gpus", "0",
    )  # fmt: skip
    texts = int(read_examples(split, EXAMPLES, 0)["responses"].map(len).sum())
    work = Work(texts=texts, batch=BATCH, max_length=MAX_LENGTH)
    print(f"extraction of {texts} texts: {peak} MB, {seconds:.1f} s")
    assert peak <= memory_mb(manifest, work, "float32", gpus=0)
    assert seconds <= compute_seconds(manifest, work, "float32", gpus=0, threads=1)


def test_a_lora_fit_uses_less_than_it_asks(smollm2, split, tmp_path):
    folder, manifest = smollm2
    method = get("lora_fine_tuning")
    defaults = {key: spec["default"] for key, spec in method.hyperparameters.items()}
    hyperparameters = defaults | {"steps": 2, "batch_size": 4}
    peak, seconds = measured(
        "fit", "lora_fine_tuning", "--model-dir", str(folder), "--split", str(split),
        "--activations", "--hyperparameters", json.dumps(hyperparameters),
        "--settings", json.dumps({"dtype": "float32", "max_length": MAX_LENGTH}),
        "--seed", "0", "--threads", "1",
        "--batch-size", str(BATCH), "--gpus", "0", "--out", str(tmp_path / "lora.safetensors"),
    )  # fmt: skip
    texts, batch = method.fit_texts(hyperparameters)
    assert (texts, batch) == (2 * 4 * 2, 2 * 4)  # pairs of two texts, 4 pairs a step, 2 steps
    work = Work(texts=texts, batch=batch, max_length=MAX_LENGTH, backward=True)
    print(f"LoRA fit of {texts} texts: {peak} MB, {seconds:.1f} s")
    assert peak <= memory_mb(manifest, work, "float32", gpus=0)
    assert seconds <= compute_seconds(manifest, work, "float32", gpus=0, threads=1)


# LLaMA-7B and 30B as published (parameters counted from their weights).
LLAMA = {
    "7b": {"parameters": 6_738_415_616, "hidden_size": 4096, "num_hidden_layers": 32,
           "num_attention_heads": 32},
    "30b": {"parameters": 32_528_943_616, "hidden_size": 6656, "num_hidden_layers": 60,
            "num_attention_heads": 52},
}  # fmt: skip
H200_BF16_FLOPS = 989e12  # dense peak: no job runs faster


@pytest.mark.parametrize("size", LLAMA)
def test_a_paper_model_asks_for_its_weights_and_no_less_time_than_peak_compute(size):
    manifest = {"architecture": LLAMA[size] | {"vocab_size": 32000}}
    parameters = LLAMA[size]["parameters"]
    work = Work(texts=20_000, batch=32, max_length=1024)
    training = Work(texts=2 * 16 * 100, batch=32, max_length=1024, backward=True)
    # the weights sit in host memory once: 2 bytes each in bfloat16, 4 on a CPU in float32
    assert memory_mb(manifest, work, "auto", gpus=1) * 2**20 > 2 * parameters
    assert memory_mb(manifest, work, "auto", gpus=0) * 2**20 > 4 * parameters
    assert memory_mb(manifest, work, "float16", gpus=0) * 2**20 > 2 * parameters
    # training on a CPU keeps, per layer, at least the attention scores of every head
    attention_scores = training.batch * LLAMA[size]["num_attention_heads"] * 1024**2
    assert memory_mb(manifest, training, "float32", gpus=0) * 2**20 > (
        4 * (parameters + LLAMA[size]["num_hidden_layers"] * attention_scores)
    )
    tokens = work.texts * work.max_length
    # a model spread over several GPUs computes on one at a time: more GPUs are no faster
    for gpus in (1, 4):
        assert runtime_min(manifest, work, "auto", gpus, 1) * 60 > (
            2 * parameters * tokens / H200_BF16_FLOPS
        )
    assert runtime_min(manifest, work, "auto", 4, 1) == runtime_min(manifest, work, "auto", 1, 1)
