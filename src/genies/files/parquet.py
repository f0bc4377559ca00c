"""Parquet artifacts: written atomically with a checksum of their content, refused on read if
damaged or of another shape.

The checksum covers the schema's metadata (the facts an artifact records) and every column's
name, type and values, taken as Python values (so it does not depend on how a pyarrow version lays
out pages): a flipped byte that Parquet's own decoding lets through still fails it."""

import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from genies.errors import GeniesError
from genies.files.atomic import write_atomic
from genies.files.hashing import checksum_refused

# v2 covers the columns' types too: a file of v1 (values only) is one of an earlier genies
CHECKSUM_KEY = b"genies.checksum.v2"


def type_name(data_type: pa.DataType) -> str:
    """The type as the reader gets it, whatever layout a Parquet round trip gives it: a list's
    item is named "item" written and "element" read, a dictionary's indices and large strings
    may come back narrower or wider."""
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return f"list<{type_name(data_type.value_type)}>"
    if pa.types.is_dictionary(data_type):
        return f"dictionary<{type_name(data_type.value_type)}>"
    if pa.types.is_large_string(data_type):
        return "string"
    if pa.types.is_large_binary(data_type):
        return "binary"
    return str(data_type)


def content_checksum(table: pa.Table) -> str:
    digest = hashlib.sha256()
    metadata = table.schema.metadata or {}
    for key in sorted(set(metadata) - {CHECKSUM_KEY}):
        digest.update(b"%d:%s%d:%s" % (len(key), key, len(metadata[key]), metadata[key]))
    for name, column in zip(table.column_names, table.columns, strict=True):
        # repr: a value JSON has no form for (bytes where text was written) still hashes
        digest.update(
            json.dumps([name, type_name(column.type), column.to_pylist()], default=repr).encode()
        )
    return digest.hexdigest()


def write_parquet(table: pa.Table, path: str | os.PathLike) -> None:
    metadata = (table.schema.metadata or {}) | {CHECKSUM_KEY: content_checksum(table).encode()}
    table = table.replace_schema_metadata(metadata)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_frame(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """A table of any columns (a per-shift table), without the index."""
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)


def read_table(path: str | os.PathLike, what: str) -> pa.Table:
    """The table at `path`, its checksum verified; GeniesError if missing, unreadable or
    damaged."""
    path = Path(path)
    if not path.is_file():
        raise GeniesError(f"{path}: {what} not found; build it with snakemake {path}")
    try:
        table = pq.read_table(path)
        checksum = content_checksum(table).encode()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise GeniesError(f"{path}: unreadable {what} ({exc}); delete it and rebuild") from exc
    stored = (table.schema.metadata or {}).get(CHECKSUM_KEY)
    if stored != checksum:
        raise checksum_refused(path, what, stored)
    return table


def read_parquet(path: str | os.PathLike, schema: pa.Schema | None, what: str) -> pd.DataFrame:
    """The table at `path` as pandas, verified (`read_table`) and of `schema` where given."""
    table = read_table(path, what)
    if schema is not None and not table.schema.remove_metadata().equals(schema):
        raise GeniesError(f"{path}: unexpected columns {table.schema.names}; delete it and rebuild")
    return table.to_pandas()
