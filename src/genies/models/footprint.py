"""What a job that runs the model asks a cluster scheduler for: host memory and wall time, from
the model's size (its manifest) and the texts the job runs. SLURM kills a job past either, so
both are upper bounds: every text counted at full length, a margin on top (the workflow
multiplies them by Snakemake's `attempt`: a killed job, retried, asks for twice as much). Reads
no deep-learning library: the workflow evaluates it for every job.

The constants are set from measured peaks and rates with room to spare (docs/performance.md,
"Memory of jobs against the SLURM bounds"); tests/test_footprint.py checks an extraction and a
LoRA fit against their bounds.
"""

import math
from dataclasses import dataclass

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
BASE_MB = 1000  # interpreter, torch, tokenizer and data
MARGIN = 1.5
# Sustained rates, set below the measured ones so that a time ask is an upper bound; the GPU's is
# a tenth of a recent data-centre GPU's bfloat16 peak.
CPU_FLOPS_PER_THREAD = 3e10
GPU_FLOPS = 1e14
LOAD_BYTES_PER_SECOND = 1e8  # weights read from shared storage
MIN_RUNTIME_MIN = 15
CACHE_COPIES = 4  # the cache read, its float32 copy and the method's working copies
# A job reading the cache only: no cost model; the probe's and CCS's fits take seconds here.
CACHE_RUNTIME_MIN = 30


@dataclass(frozen=True)
class Work:
    """The texts a job runs through the model: how many, how many at once, and their length."""

    texts: int
    batch: int
    max_length: int
    backward: bool = False


def compute_bytes(dtype: str, gpus: int) -> int:
    """Bytes per weight: "auto" is bfloat16 on a GPU, float32 on a CPU (as a bound: a CPU with
    native bfloat16 halves it)."""
    if dtype == "auto":
        dtype = "bfloat16" if gpus else "float32"
    return DTYPE_BYTES[dtype]


def memory_mb(manifest: dict, work: Work, dtype: str, gpus: int) -> int:
    """Host memory: the weights (loaded on the host before they move to a GPU) and, on a CPU, the
    activations of one batch."""
    shape = manifest["architecture"]
    value_bytes = compute_bytes(dtype, gpus)
    weights = shape["parameters"] * value_bytes
    activations = 0 if gpus else activation_bytes(shape, work, value_bytes)
    total = MARGIN * (BASE_MB + (weights + activations) / 2**20)
    return 100 * math.ceil(total / 100)


def activation_bytes(shape: dict, work: Work, value_bytes: int) -> int:
    """One batch of texts at full length. A forward pass keeps every layer's hidden state and the
    logits; training keeps, per layer and token, the 34 h + 5 a s bytes of 16-bit values that
    Korthikanti et al. count (arXiv 2205.05198: h hidden size, a heads, s length), and the
    logits with their log-softmax and gradient."""
    hidden, layers = shape["hidden_size"], shape["num_hidden_layers"]
    vocab, heads = shape["vocab_size"], shape["num_attention_heads"]
    if work.backward:
        per_layer = (34 * hidden + 5 * heads * work.max_length) / 2
        values = layers * per_layer + 3 * vocab
    else:
        values = hidden * (layers + 1) + vocab
    return int(work.batch * work.max_length * values * value_bytes)


def compute_seconds(manifest: dict, work: Work, dtype: str, gpus: int, threads: int) -> float:
    """Loading the weights, then 2 FLOPs per parameter per token forward (3 times that with the
    backward pass), at the rates above. A model spread over several GPUs runs its layers one
    GPU after another (genies.models.devices): more GPUs hold a larger model, no faster."""
    parameters = manifest["architecture"]["parameters"]
    flops = 2 * parameters * work.texts * work.max_length * (3 if work.backward else 1)
    rate = GPU_FLOPS if gpus else CPU_FLOPS_PER_THREAD * threads
    return parameters * compute_bytes(dtype, gpus) / LOAD_BYTES_PER_SECOND + flops / rate


def runtime_min(manifest: dict, work: Work, dtype: str, gpus: int, threads: int) -> int:
    """Wall time: compute_seconds with the margin, and never under MIN_RUNTIME_MIN."""
    minutes = MARGIN * compute_seconds(manifest, work, dtype, gpus, threads) / 60
    return max(MIN_RUNTIME_MIN, math.ceil(minutes))


def cache_memory_mb(cache_bytes: int) -> int:
    """A job reading cached activations only: float16 files widened to float32, with a copy."""
    return 100 * math.ceil(MARGIN * (BASE_MB + CACHE_COPIES * cache_bytes / 2**20) / 100)
