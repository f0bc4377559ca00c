"""Clearing the directory lock that a killed Snakemake run leaves behind, and only that one.

Snakemake locks the files a run reads and writes (.snakemake/locks/<n>.input.lock, .output.lock)
and deletes the lock when the run ends. A run killed with SIGKILL, or by a power cut, cannot: the
next run stops until someone types `snakemake --unlock`, which would break the lock of a run still
alive just as well. So each run, once it holds its lock, names its lock files in an owner file on
which it keeps an exclusive flock until it exits; the kernel drops a flock when its process dies,
however it dies. A later run removes the lock files of the owners whose flock it can take (dead
ones) and nothing else: lock files without an owner file are left to Snakemake's own message.
"""

import fcntl
import json
import os
import socket
from pathlib import Path

_held = []  # this process's open owner files: closing one would drop its flock


def hold(lock_files) -> Path:
    """Record this process as the owner of `lock_files` for as long as it lives."""
    lock_files = [Path(path) for path in lock_files]
    lock_dir = lock_files[0].parent
    name = f"owner-{socket.gethostname()}-{os.getpid()}.json"
    # flocked before it gets its name: whoever sees the owner file sees it locked
    handle = open(lock_dir / f".{name}", "w")  # noqa: SIM115 (kept open: it holds the flock)
    fcntl.flock(handle, fcntl.LOCK_EX)
    json.dump({"pid": os.getpid(), "lock_files": [path.name for path in lock_files]}, handle)
    handle.flush()
    os.replace(lock_dir / f".{name}", lock_dir / name)
    _held.append(handle)
    return lock_dir / name


def clear_stale(lock_dir) -> list[str]:
    """Remove the lock files of runs that are no longer alive; the names of the removed files."""
    removed = []
    for owner in sorted(Path(lock_dir).glob("owner-*.json")):
        with open(owner) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its run is alive
            for name in json.load(handle)["lock_files"]:
                (owner.parent / name).unlink(missing_ok=True)
                removed.append(name)
            owner.unlink()
    return removed
