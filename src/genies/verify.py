"""`genies verify`: every artifact that jobs read, checked as its reader checks it, without
running a job: splits, activation files (checksum and sidecar), fitted states (checksum and the
JSON beside them), evaluations and per-shift tables (content checksum). A damaged file gets one
line naming it and the fix; deleting it and running the target again rebuilds it."""

from collections.abc import Callable, Iterator
from pathlib import Path

from genies.errors import GeniesError

# (folder, file pattern, what reads it)
ARTIFACTS = (
    ("data/splits", "*/*.parquet", "split"),
    ("results/activations", "**/*.safetensors", "activations"),
    ("results/interventions", "*/*/*.safetensors", "state"),
    ("results/evaluations", "*/*/*.parquet", "evaluation"),
    ("results/shift_metrics", "*.parquet", "shift table"),
    ("results/paper", "*.parquet", "paper table"),
)


def reader(kind: str) -> Callable[[Path], object]:
    if kind == "activations":
        from genies.models.activations import read_activations

        return read_activations
    if kind == "state":
        from genies.interventions.jobs import read_state

        return read_state
    from genies.files.parquet import read_table

    return lambda path: read_table(path, f"{kind} file")


def artifacts(root: Path) -> Iterator[tuple[Path, str]]:
    for folder, pattern, kind in ARTIFACTS:
        for path in sorted((root / folder).glob(pattern)):
            yield path, kind


def verify(root: str = ".") -> tuple[int, list[str]]:
    """(how many artifacts were checked, one line per damaged one); GeniesError where `root`
    holds none (not a built workspace). A failure that says nothing of the file (the reader's
    libraries, memory, permissions) stops the check: deleting the file would not mend it."""
    checked, damaged = 0, []
    for path, kind in artifacts(Path(root)):
        checked += 1
        try:
            reader(kind)(path)
        except GeniesError as exc:
            damaged.append(str(exc))
    if not checked:
        folders = ", ".join(folder for folder, _, _ in ARTIFACTS)
        raise GeniesError(f"{root}: no artifact to verify under {folders}: not a built workspace")
    return checked, damaged
