"""Upstream example records: validation with precise errors, and the Parquet split table.

A record is `{"prompt": str, "responses": {text: 1.0 | 0.0, ...}, ...extra fields}`. The checks
follow the upstream dataset class, stated strictly: a string prompt, 2+ responses, every score
exactly 1.0 or 0.0, exactly one 1.0. The response count may differ between examples (imported
pairwise data groups the pairs of a prompt): every example is paired by its own responses.
"""

import json
import os

import pyarrow as pa

from genies.data.vendored import RepeatedKey
from genies.errors import GeniesError
from genies.files.parquet import write_parquet

SPLIT_SCHEMA = pa.schema(
    [
        ("example_id", pa.string()),
        ("prompt", pa.string()),
        ("responses", pa.list_(pa.string())),
        ("scores", pa.list_(pa.float64())),
        ("preferred", pa.int64()),
        ("extra", pa.string()),
    ]
)


def repeated_response(position: int, text: str) -> str:
    """The one wording of every layout for a response text given twice in one record."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"response {position} appears twice ({shown!r})"


def record_error(source: str, index: int, field: str | None, problem: str) -> GeniesError:
    where = f"{source}: record {index}" + (f": field '{field}'" if field else "")
    return GeniesError(f"{where}: {problem}")


def validate_record(record, index: int, source: str) -> None:
    if not isinstance(record, dict):
        raise record_error(source, index, None, f"expected an object, got {type(record).__name__}")
    if "prompt" not in record:
        raise record_error(source, index, "prompt", "missing")
    if not isinstance(record["prompt"], str):
        kind = type(record["prompt"]).__name__
        raise record_error(source, index, "prompt", f"must be a string, got {kind}")
    if "responses" not in record:
        raise record_error(source, index, "responses", "missing")
    responses = record["responses"]
    if not isinstance(responses, dict):
        kind = type(responses).__name__
        raise record_error(source, index, "responses", f"must be an object, got {kind}")
    if isinstance(responses, RepeatedKey):
        problem = repeated_response(responses.position, responses.repeated)
        raise record_error(source, index, "responses", problem)
    if len(responses) < 2:
        raise record_error(source, index, "responses", f"has {len(responses)} entries, needs 2+")
    for position, score in enumerate(responses.values()):
        if isinstance(score, bool) or not isinstance(score, int | float) or score not in (0, 1):
            raise record_error(
                source,
                index,
                "responses",
                f"score of response {position} is {score!r}, not 1.0/0.0",
            )
    preferred = sum(1 for score in responses.values() if score == 1)
    if preferred != 1:
        raise record_error(
            source, index, "responses", f"{preferred} responses scored 1.0, expected exactly one"
        )


def validate_records(records, source: str) -> None:
    """Raise GeniesError naming the file, the record index and the field of the first problem."""
    if not isinstance(records, list):
        raise GeniesError(
            f"{source}: expected a JSON list of records, got {type(records).__name__}"
        )
    if not records:
        raise GeniesError(f"{source}: contains no records")
    for index, record in enumerate(records):
        validate_record(record, index, source)


def records_to_table(records, distribution: str, split: str, source: str) -> pa.Table:
    validate_records(records, source)
    rows = {name: [] for name in SPLIT_SCHEMA.names}
    for index, record in enumerate(records):
        responses = record["responses"]
        scores = [float(score) for score in responses.values()]
        extra = {k: v for k, v in record.items() if k not in ("prompt", "responses")}
        rows["example_id"].append(f"{distribution}/{split}/{index}")
        rows["prompt"].append(record["prompt"])
        rows["responses"].append(list(responses))
        rows["scores"].append(scores)
        rows["preferred"].append(scores.index(1.0))
        rows["extra"].append(json.dumps(extra, ensure_ascii=False, sort_keys=True))
    return pa.Table.from_pydict(rows, schema=SPLIT_SCHEMA)


def feature(arrow_type: pa.DataType) -> dict:
    """The `datasets` feature of an Arrow column type."""
    if pa.types.is_list(arrow_type):
        return {"feature": feature(arrow_type.value_type), "_type": "List"}
    dtype = {"double": "float64", "float": "float32"}.get(str(arrow_type), str(arrow_type))
    return {"dtype": dtype, "_type": "Value"}


# `datasets` reads a Parquet file's features from this key: responses and scores come back as
# lists of strings and of floats
HF_FEATURES = json.dumps(
    {"info": {"features": {field.name: feature(field.type) for field in SPLIT_SCHEMA}}}
)


def write_split(table: pa.Table, path: str | os.PathLike, provenance: dict[str, str]) -> None:
    metadata = {f"genies.{k}": v for k, v in provenance.items()} | {"huggingface": HF_FEATURES}
    write_parquet(table.replace_schema_metadata(metadata), path)
