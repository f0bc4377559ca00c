"""sha256 of files read in blocks, never whole: model weights run to gigabytes."""

import hashlib
import os
from collections.abc import Callable, Iterable

from genies.errors import GeniesError

BLOCK = 1 << 20


def stream_blocks(paths: Iterable[str | os.PathLike], *sinks: Callable[[bytes], object]) -> None:
    """Hand every block of `paths`, in order, to each of `sinks` (a digest's update, a file's
    write): one read serves several digests and a copy."""
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(BLOCK):
                for sink in sinks:
                    sink(block)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    stream_blocks([path], digest.update)
    return digest.hexdigest()


def checksum_refused(path, what: str, stored) -> GeniesError:
    """The refusal of a file whose stored checksum (None: none stored) does not match."""
    if stored is None:
        return GeniesError(
            f"{path}: a {what} without a checksum (written by an earlier genies): "
            "delete it and rebuild"
        )
    return GeniesError(f"{path}: checksum mismatch: the {what} is damaged; delete it and rebuild")
