"""Parquet artifacts of a fixed schema: written atomically, refused on read if of another shape."""

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from genies.errors import GeniesError
from genies.files.atomic import write_atomic


def write_parquet(table: pa.Table, path: str | os.PathLike) -> None:
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def read_parquet(path: str | os.PathLike, schema: pa.Schema, what: str) -> pd.DataFrame:
    """The table at `path` as pandas; GeniesError if missing, unreadable or not `schema`."""
    path = Path(path)
    if not path.is_file():
        raise GeniesError(f"{path}: {what} not found; build it with snakemake {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise GeniesError(
            f"{path}: unreadable Parquet file ({exc}); delete it and rebuild"
        ) from exc
    if not table.schema.remove_metadata().equals(schema):
        raise GeniesError(f"{path}: unexpected columns {table.schema.names}; delete it and rebuild")
    return table.to_pandas()
