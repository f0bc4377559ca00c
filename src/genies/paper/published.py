"""The authors' published per-example evaluations, validated and indexed once into Parquet.

The vendored archive `published/evaluations.tar.xz` holds 5,648 JSON files
`evaluations/<intervention>/<run>/<target>.json`, where `<run>` is `<model>-<source>` for a model
trained on a source (or `<model>` alone for the base model), plus older nested copies
(`old_evals/`, `classify_lora/`, `lat/`). Several schemas exist (trainer, representation, CCS,
human_eval); the index keeps what every metric needs, under one set of names.
"""

import io
import json
import math
import os
import tarfile
from pathlib import Path, PurePosixPath

import pandas as pd
import pyarrow as pa

from genies.data.vendored import read_verified
from genies.errors import GeniesError
from genies.files.parquet import read_parquet, write_parquet

ARCHIVE = "published/evaluations.tar.xz"
INDEX_SCHEMA = pa.schema(
    [
        ("path", pa.string()),  # inside evaluations/, e.g. mms/llama-30b-alpaca_mmlu/math.json
        ("intervention", pa.string()),
        ("run", pa.string()),
        ("target", pa.string()),
        ("nested", pa.bool_()),  # under old_evals/, classify_lora/, lat/ ...: superseded copies
        ("distribution_id", pa.string()),
        ("timestamp", pa.string()),
        ("accuracy", pa.float64()),
        ("stored_rms_calibration_error", pa.float64()),
        ("probabilities", pa.list_(pa.float64())),
    ]
)


def field_error(where: str, field: str, problem: str) -> GeniesError:
    return GeniesError(f"{where}: field '{field}': {problem}")


def number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def index_row(path: str, record, where: str) -> dict:
    """One evaluation file as an index row; GeniesError naming the file on a malformed one."""
    if not isinstance(record, dict):
        raise GeniesError(f"{where}: expected a JSON object, got {type(record).__name__}")
    accuracy_key = "eval_accuracy" if "eval_accuracy" in record else "accuracy"
    if not number(record.get(accuracy_key)):
        raise field_error(
            where, "eval_accuracy", f"missing or not a number: {record.get(accuracy_key)!r}"
        )
    probabilities_key = "eval_probabilities" if "eval_probabilities" in record else "probabilities"
    probabilities = record.get(probabilities_key)
    if probabilities is not None:
        if not isinstance(probabilities, list) or not probabilities:
            raise field_error(where, probabilities_key, "expected a non-empty list")
        for position, value in enumerate(probabilities):
            if not number(value) or not 0 <= value <= 1:
                raise field_error(
                    where, probabilities_key, f"item {position} is {value!r}, not in [0, 1]"
                )
    stored_rms = record.get("eval_rms_calibration_error")
    if stored_rms is not None and not number(stored_rms):
        raise field_error(where, "eval_rms_calibration_error", f"not a number: {stored_rms!r}")
    parts = PurePosixPath(path).parts
    distribution = (
        record.get("distribution_id") or PurePosixPath(record.get("distribution_dir", "")).name
    )
    return {
        "path": path,
        "intervention": parts[0],
        "run": parts[-2],
        "target": PurePosixPath(path).stem,
        "nested": len(parts) > 3,
        "distribution_id": distribution,
        "timestamp": str(record.get("timestamp", "")),
        "accuracy": float(record[accuracy_key]),
        "stored_rms_calibration_error": None if stored_rms is None else float(stored_rms),
        "probabilities": None if probabilities is None else [float(p) for p in probabilities],
    }


def index_evaluations(raw_dir: str | os.PathLike) -> pa.Table:
    archive_path = Path(raw_dir) / ARCHIVE
    rows = []
    with tarfile.open(fileobj=io.BytesIO(read_verified(raw_dir, ARCHIVE))) as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            if not member.isfile() or name.suffix != ".json" or name.parts[0] != "evaluations":
                continue
            path = name.relative_to("evaluations").as_posix()
            where = f"{archive_path}:{member.name}"
            try:
                record = json.loads(tar.extractfile(member).read())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise GeniesError(f"{where}: invalid JSON ({exc})") from exc
            rows.append(index_row(path, record, where))
    rows.sort(key=lambda row: row["path"])
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def write_index(table: pa.Table, out: str | os.PathLike) -> None:
    write_parquet(table, out)


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    return read_parquet(path, INDEX_SCHEMA, "evaluation index")
