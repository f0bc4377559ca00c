"""`genies validate`: the record checks, run on any folder in the upstream layout.

A distribution folder holds train.json and test.json (plain or .xz) and optionally metadata.json.
Nothing else in it is read: upstream's extra.json, *-copy.json, "test copy.json", swap files and
the alpaca_mmlu/hps/ sub-folder are stray files, not data.
"""

import os
from pathlib import Path

from genies.data.records import validate_records
from genies.data.vendored import SPLITS, read_json_file
from genies.errors import GeniesError


def data_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.json", folder / f"{stem}.json.xz"):
        if candidate.is_file():
            return candidate
    return None


def is_distribution_dir(folder: Path) -> bool:
    return any(data_file(folder, split) for split in SPLITS)


def distribution_dirs(path: str | os.PathLike) -> list[Path]:
    """`path` itself if it is a distribution folder, else its distribution sub-folders."""
    path = Path(path)
    if not path.is_dir():
        raise GeniesError(f"{path}: not a folder")
    if is_distribution_dir(path):
        return [path]
    folders = sorted(sub for sub in path.iterdir() if sub.is_dir() and is_distribution_dir(sub))
    if not folders:
        raise GeniesError(f"{path}: no train.json or test.json here or in its sub-folders")
    return folders


def validate_distribution_dir(folder: Path) -> dict[str, int]:
    """Record counts per split; raises GeniesError at the first problem."""
    counts = {}
    for split in SPLITS:
        path = data_file(folder, split)
        if path is None:
            raise GeniesError(f"{folder}: missing {split}.json")
        records = read_json_file(path)
        validate_records(records, str(path))
        counts[split] = len(records)
    metadata = data_file(folder, "metadata")
    if metadata is not None and not isinstance(read_json_file(metadata), dict):
        raise GeniesError(f"{metadata}: expected a JSON object")
    return counts
