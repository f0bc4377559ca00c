"""Adding a distribution or a shift of one's own to the vendored data, checksummed like the rest.

`add_distribution` vendors a folder in the upstream layout (train.json, test.json, optional
metadata.json), or preference data in the community's layouts read with `datasets`
(genies.data.preference_import), under `distributions/<name>/` (xz, one file per split).
`add_shift` appends a shift to its category file and to all.json (and, asked for, GENIES.json).
Both update SHA256SUMS, so the pipeline reads them like the upstream data.
"""

import json
import lzma
import os
import re
from pathlib import Path

from genies.data.preference_import import Columns, import_preferences
from genies.data.shifts import LABELS, SHIFTS_DIR, load_shifts
from genies.data.validate import data_file, validate_distribution_dir
from genies.data.vendored import (
    SPLITS,
    copy_bytes,
    distribution_file,
    load_vendored_json,
    read_json_file,
    vendored_distributions,
    write_manifest,
)
from genies.errors import GeniesError

NAME = re.compile(r"[a-z0-9_]+")


def check_name(name: str, what: str) -> None:
    if not NAME.fullmatch(name):
        raise GeniesError(f"{what} {name!r}: use lower-case letters, digits and underscores")


def add_distribution(
    path: str | os.PathLike,
    raw_dir: str | os.PathLike,
    name: str | None = None,
    columns: Columns | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
) -> str:
    """Vendor the data at `path` as `name` (default: the folder's or file's name): a folder in
    the upstream layout as it is, anything else through genies.data.preference_import with the
    named `columns` and, for one split, a seeded `test_fraction` (recorded in metadata.json)."""
    path, raw_dir = Path(path), Path(raw_dir)
    if not path.exists():
        raise GeniesError(f"{path}: not found")
    name = name or path.stem
    check_name(name, "distribution")
    if name in vendored_distributions(raw_dir):
        raise GeniesError(f"distribution {name!r} already exists in {raw_dir}")
    if is_upstream_layout(path):
        validate_distribution_dir(path)
        contents = {split: read_json_file(data_file(path, split)) for split in SPLITS}
        metadata = data_file(path, "metadata")
        contents["metadata"] = read_json_file(metadata) if metadata else {"id": name}
    else:
        records, described = import_preferences(path, columns or Columns(), test_fraction, seed)
        contents = records | {"metadata": {"id": name, "import": described}}
    manifest = {}
    for stem, content in contents.items():
        relpath = distribution_file(name, stem)
        packed = lzma.compress(json.dumps(content, ensure_ascii=False).encode())
        manifest[relpath] = copy_bytes(packed, raw_dir / relpath)
    write_manifest(raw_dir, manifest)
    return name


def is_upstream_layout(path: Path) -> bool:
    """A folder whose train.json(.xz) is a JSON list of records with a {text: score} object."""
    train = data_file(path, "train") if path.is_dir() else None
    try:
        records = read_json_file(train) if train else None
    except GeniesError:  # not JSON: JSON Lines, say
        return False
    return (
        isinstance(records, list)
        and bool(records)
        and isinstance(records[0], dict)
        and isinstance(records[0].get("responses"), dict)
    )


def add_shift(
    raw_dir: str | os.PathLike,
    source: str,
    target: str,
    label: str,
    category: str,
    target_reference: str | None = None,
    genies: bool = False,
) -> None:
    """Append source -> target to `<label>/<category>.json` and all.json (and GENIES.json)."""
    raw_dir = Path(raw_dir)
    if label not in LABELS:
        raise GeniesError(f"label {label!r}: expected one of {', '.join(LABELS)}")
    check_name(category, "category")
    if source == target:
        raise GeniesError(f"shift {source}->{target}: the source is the target; nothing shifts")
    known = vendored_distributions(raw_dir)
    for name in (source, target, target_reference or target):
        if name not in known:
            raise GeniesError(f"distribution {name!r} not in {raw_dir}; add it first")
    if any((s.source, s.target) == (source, target) for s in load_shifts(raw_dir).distinct):
        raise GeniesError(f"shift {source}->{target} already exists")
    row = {"source": source, "target": target}
    if target_reference and target_reference != target:
        row["target_reference"] = target_reference
    files = [f"{SHIFTS_DIR}/{label}/{category}.json", f"{SHIFTS_DIR}/all.json"]
    if genies:
        files.append(f"{SHIFTS_DIR}/GENIES.json")
    manifest = {}
    for relpath in files:
        path = raw_dir / relpath
        rows = load_vendored_json(raw_dir, relpath) if path.is_file() else []
        extra = {"label": label, "category": category} if relpath.endswith("GENIES.json") else {}
        text = json.dumps([*rows, row | extra], indent=4) + "\n"
        manifest[relpath] = copy_bytes(text.encode(), path)
    write_manifest(raw_dir, manifest)
