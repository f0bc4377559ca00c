"""Benchmark: packed extraction (each example's template texts as one prefix tree) against the
text-by-text path, in the same run, on the embedded model and a fixed set of splits.

Prints, for the four default templates and layers: the tokens computed over the tokens of the
template texts, both paths' wall times and their ratio; and, with --ratio-splits, the token
ratio over every split the GENIES shifts read (tokenising only, no model).

    python bench/packing.py --model-dir models/smollm2-135m --examples 8
    python bench/packing.py --model-dir models/smollm2-135m --ratio-splits
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from genies.config import load_config
from genies.data.shifts import splits_read
from genies.data.splits import build_split, read_split
from genies.models.activations import (
    ExtractionSpec,
    encode,
    extract_split,
    extract_split_packed,
    resolve_layers,
    split_texts,
)
from genies.models.loading import load_model
from genies.models.packing import prefix_tree

SPLITS = [("alpaca_mmlu", "test"), ("math", "train"), ("change_my_view", "test"), ("code", "test")]


def specs_of(config, layers: int, settings: dict) -> list[ExtractionSpec]:
    return [
        ExtractionSpec(
            template=template,
            residual_layers=resolve_layers(stored["residual"], layers + 1, "residual"),
            head_layers=resolve_layers(stored["heads"], layers, "head"),
            storage_dtype=config.activations["storage_dtype"],
            batch_size=settings["batch_size"],
            max_length=settings["max_length"],
        )
        for template, stored in config.activations["templates"].items()
    ]


def split_file(raw_dir: str, work: Path, distribution: str, split: str) -> Path:
    path = work / distribution / f"{split}.parquet"
    if not path.is_file():
        build_split(raw_dir, distribution, split, path)
    return path


def token_ratio(tokenizer, specs, paths, examples=None) -> tuple[int, int]:
    """(tokens the packed trees hold, tokens of the template texts) over the splits."""
    computed = total = 0
    for path in paths:
        split = read_split(path).head(examples)
        encoded = [
            encode(tokenizer, split_texts(split, spec.template)[0], spec.max_length)[0]
            for spec in specs
        ]
        starts = np.cumsum([0, *split.responses.map(len)])
        for first, last in zip(starts[:-1], starts[1:], strict=True):
            texts = [ids for rows in encoded for ids in rows[first:last]]
            computed += len(prefix_tree(texts)[0])
            total += sum(len(ids) for ids in texts)
    return computed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="models/smollm2-135m")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--examples", type=int, default=8, help="per split, for the timing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ratio-splits", action="store_true", help="token ratio, GENIES splits")
    parser.add_argument("--work", default="/tmp/genies-bench")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    loaded = load_model(args.model_dir, "cpu")
    settings = next(iter(config.models.values()))
    specs = specs_of(config, loaded.model.config.num_hidden_layers, settings)
    work = Path(args.work)
    if args.ratio_splits:
        paths = [split_file(config.raw_dir, work, *pair) for pair in splits_read(config.shifts)]
        computed, total = token_ratio(loaded.tokenizer, specs, paths)
        ratio = computed / total
        print(f"{len(paths)} splits: {computed:,} tokens computed of {total:,} ({ratio:.3f})")
        return
    paths = [split_file(config.raw_dir, work, *pair) for pair in SPLITS]
    outs = [work / f"out-{spec.template}.safetensors" for spec in specs]
    timings = {}
    for name in ("text by text", "packed"):
        started = time.perf_counter()
        for path in paths:
            if name == "packed":
                extract_split_packed(loaded, path, specs, outs, args.examples)
            else:
                for spec, out in zip(specs, outs, strict=True):
                    extract_split(loaded, path, spec, out, args.examples)
        timings[name] = time.perf_counter() - started
    computed, total = token_ratio(loaded.tokenizer, specs, paths, args.examples)
    print(f"splits {SPLITS}, {args.examples} examples each, {args.threads} thread(s)")
    print(f"tokens computed / template tokens: {computed:,} / {total:,} = {computed / total:.3f}")
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.1f} s")
    print(f"packed speed-up: {timings['text by text'] / timings['packed']:.2f}x")


if __name__ == "__main__":
    main()
