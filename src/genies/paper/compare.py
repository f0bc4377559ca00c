"""Cell-by-cell comparison of a recomputed table with a published one."""

import math
import os

import pandas as pd

from genies.errors import GeniesError


def read_as_text(path: str | os.PathLike) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as exc:
        raise GeniesError(f"{path}: unreadable CSV ({exc})") from exc


def as_number(text: str) -> float | None:
    try:
        return float(text) if text != "" else math.nan
    except ValueError:
        return None


def cells_equal(ours: str, theirs: str, tolerance: float) -> bool:
    a, b = as_number(ours), as_number(theirs)
    if a is None or b is None:
        return ours == theirs
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance


def differing_cells(ours_path, published_path, tolerance: float = 1e-9) -> list[dict]:
    """Every (row, column) where the tables differ: strings exactly, numbers within `tolerance`."""
    ours, theirs = read_as_text(ours_path), read_as_text(published_path)
    if list(ours.columns) != list(theirs.columns) or len(ours) != len(theirs):
        raise GeniesError(
            f"{ours_path}: shape {len(ours)}x{list(ours.columns)} differs from {published_path}: "
            f"{len(theirs)}x{list(theirs.columns)}"
        )
    return [
        {"row": i, "column": c, "ours": ours.at[i, c], "published": theirs.at[i, c]}
        for i in range(len(ours))
        for c in ours.columns
        if not cells_equal(ours.at[i, c], theirs.at[i, c], tolerance)
    ]
