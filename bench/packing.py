"""Benchmark: packed extraction (each example's template texts as one prefix tree) against the
text-by-text path, in the same run, on the embedded model and a fixed set of splits.

Prints, for the four default templates and layers: the tokens computed over the tokens of the
template texts, both paths' wall times and their ratio; with --ratio-splits, the token ratio
over every split the GENIES shifts read (tokenising only, no model); with --dtypes, the packed
path's time in each compute dtype and its rows' deviation from float32's, which is what
`dtype: auto` chooses by on the CPU.

    python bench/packing.py --model-dir models/smollm2-135m --examples 8
    python bench/packing.py --model-dir models/smollm2-135m --ratio-splits
    python bench/packing.py --model-dir models/smollm2-135m --dtypes float32,bfloat16
"""

import argparse
import time
from dataclasses import replace
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
    extract_split_templates,
    read_activations,
    resolve_layers,
    split_texts,
)
from genies.models.devices import native_bfloat16
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


def packed_rows(args, config, paths, dtype) -> tuple[float, dict[str, torch.Tensor]]:
    """Seconds of the packed extraction of `paths` in `dtype`, and its rows (stored in float32)
    per template and kind: [texts of every split, layers x width]."""
    loaded = load_model(args.model_dir, "cpu", dtype)
    settings = next(iter(config.models.values()))
    specs = [
        replace(spec, storage_dtype="float32")
        for spec in specs_of(config, loaded.model.config.num_hidden_layers, settings)
    ]
    outs = [
        [Path(args.work) / f"{dtype}-{number}-{spec.template}.safetensors" for spec in specs]
        for number in range(len(paths))
    ]
    started = time.perf_counter()
    for path, split_outs in zip(paths, outs, strict=True):
        extract_split_templates(loaded, path, specs, split_outs, args.examples)
    seconds = time.perf_counter() - started
    rows = {}
    for index, spec in enumerate(specs):
        for kind in ("residual", "heads"):
            parts = [read_activations(split_outs[index])[0][kind] for split_outs in outs]
            if parts[0].shape[1]:  # the template keeps layers of this kind
                rows[f"{spec.template} {kind}"] = torch.cat(parts).flatten(1)
    return seconds, rows


def compare_dtypes(args, config, dtypes: list[str]) -> None:
    """Packed extraction of the fixed splits in each dtype, timed, and each dtype's rows against
    the first's: the largest absolute deviation, the largest deviation relative to its row's
    largest magnitude, and the smallest cosine similarity of a row."""
    paths = [split_file(config.raw_dir, Path(args.work), *pair) for pair in SPLITS]
    runs = {dtype: packed_rows(args, config, paths, dtype) for dtype in dtypes}
    print(f"CPU native bfloat16: {native_bfloat16()}; {args.threads} thread(s)")
    first_seconds, reference = runs[dtypes[0]]
    for dtype, (seconds, rows) in list(runs.items())[1:]:
        deviation = relative = 0.0
        cosine = 1.0
        for key, expected in reference.items():
            difference = (rows[key] - expected).abs()
            scale = expected.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
            deviation = max(deviation, difference.max().item())
            relative = max(relative, (difference / scale).max().item())
            similarity = torch.nn.functional.cosine_similarity(rows[key], expected, dim=1)
            cosine = min(cosine, similarity.min().item())
        print(
            f"{dtype}: {seconds:.1f} s against {first_seconds:.1f} s in {dtypes[0]} "
            f"({first_seconds / seconds:.2f}x faster); its rows against {dtypes[0]}'s, over every "
            f"template and layer: max |deviation| {deviation:.3g}, max |deviation| / the row's "
            f"max |value| {relative:.3g}, min cosine similarity {cosine:.6f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="models/smollm2-135m")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--examples", type=int, default=8, help="per split, for the timing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ratio-splits", action="store_true", help="token ratio, GENIES splits")
    parser.add_argument("--dtypes", help="compute dtypes to compare, e.g. float32,bfloat16")
    parser.add_argument("--work", default="/tmp/genies-bench")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if args.dtypes:
        compare_dtypes(args, config, args.dtypes.split(","))
        return
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
                extract_split_templates(loaded, path, specs, outs, args.examples)
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
