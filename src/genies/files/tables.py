"""Writing result tables: CSV for machines, Markdown for people, both atomic."""

import os

import pandas as pd

from genies.files.atomic import write_atomic, write_text_atomic


def markdown_table(df: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else float_format.format(value)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    write_atomic(path, lambda tmp: df.to_csv(tmp, index=False, lineterminator="\n"))


def write_markdown(path: str | os.PathLike, title: str, body: str) -> None:
    write_text_atomic(path, f"# {title}\n\n{body}")
