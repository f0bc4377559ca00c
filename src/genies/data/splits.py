"""Parquet splits: `data/splits/<distribution>/<split>.parquet`, one row per example."""

import json
import os
from hashlib import sha256
from pathlib import Path

import pandas as pd
import pyarrow as pa

from genies.data.records import SPLIT_SCHEMA, records_to_table, write_split
from genies.data.vendored import (
    SPLITS,
    distribution_file,
    load_vendored_json,
    read_manifest,
    vendored_distributions,
)
from genies.errors import GeniesError
from genies.files.parquet import read_parquet


def check_distribution(raw_dir: str | os.PathLike, distribution: str) -> None:
    known = vendored_distributions(raw_dir)
    if distribution not in known:
        raise GeniesError(
            f"unknown distribution {distribution!r} (not in {Path(raw_dir)}); "
            f"known: {', '.join(known)}"
        )


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise GeniesError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")


def build_split(raw_dir: str | os.PathLike, distribution: str, split: str, out: str) -> pa.Table:
    """Validate one vendored split and write it as Parquet (nothing is written on error)."""
    check_distribution(raw_dir, distribution)
    check_split(split)
    relpath = distribution_file(distribution, split)
    records = load_vendored_json(raw_dir, relpath)
    table = records_to_table(records, distribution, split, source=str(Path(raw_dir) / relpath))
    manifest = read_manifest(raw_dir)
    provenance = {"source": relpath, "source_sha256": manifest[relpath]}
    metadata = distribution_file(distribution, "metadata")
    if metadata in manifest:  # how an imported distribution was read, grouped and split
        imported = load_vendored_json(raw_dir, metadata).get("import")
        if imported:
            provenance["import"] = json.dumps(imported, sort_keys=True)
    write_split(table, out, provenance)
    return table


def read_split(path: str | os.PathLike) -> pd.DataFrame:
    """Load a split written by `build_split`, refusing a file of another shape."""
    return read_parquet(path, SPLIT_SCHEMA, "split file")


def load_split(path: str | os.PathLike):
    """A split written by `build_split` as a `datasets.Dataset` (responses and scores as lists);
    its shape is checked as `read_split` does."""
    import datasets

    read_split(path)
    return datasets.Dataset.from_parquet(str(path), keep_in_memory=True)


def sample_examples(split: pd.DataFrame, count: int | None, seed: int) -> pd.DataFrame:
    """`count` examples of `split` drawn with `seed`, in the split's order (all if None).

    Upstream files are ordered (by topic, source, difficulty), so the first rows are not a sample.
    An example is drawn by the rank of sha256("<seed>/<example_id>"): the same seed draws the same
    examples whatever the row order or library versions, and a larger count keeps a smaller one's.
    """
    if count is None or count >= len(split):
        return split
    keys = split.example_id.map(lambda example: sha256(f"{seed}/{example}".encode()).hexdigest())
    return split[keys.rank(method="first") <= count].reset_index(drop=True)


def read_examples(path: str | os.PathLike, max_examples: int | None, seed: int) -> pd.DataFrame:
    """The examples of a split that model runs use: a seeded sample of `max_examples` (all if
    None)."""
    return sample_examples(read_split(path), max_examples, seed)


def count_texts(path: str | os.PathLike, max_examples: int | None, seed: int) -> int:
    """Prompt-response texts of the examples model runs read (every response of each)."""
    return int(read_examples(path, max_examples, seed)["responses"].map(len).sum())
