"""Which device a job runs on. Snakemake's `gpu` resource is only a counter: it never says which
GPU a job got, so a GPU job claims a free one itself with an exclusive lock on one of N slot
files, held for the life of the job. Without a GPU, jobs run on the CPU."""

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genies.errors import GeniesError


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"genies-gpu-slots-{os.getuid()}"


def try_lock(path: Path):
    handle = open(path, "a+")  # noqa: SIM115 (held open for the life of the claim)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextmanager
def claim_slot(n_slots: int, lock_dir=None, timeout_s: float = 3600, poll_s: float = 1.0):
    """Hold one of `n_slots` slots (the lowest free one) until the block ends; yield its number."""
    lock_dir = Path(lock_dir or default_lock_dir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        for slot in range(n_slots):
            handle = try_lock(lock_dir / f"slot{slot}.lock")
            if handle is not None:
                try:
                    yield slot
                finally:
                    handle.close()  # closing releases the lock
                return
        if time.monotonic() > deadline:
            raise GeniesError(
                f"no free GPU slot of {n_slots} in {lock_dir} after {timeout_s:.0f} s"
            )
        time.sleep(poll_s)


@contextmanager
def claim_device(lock_dir=None) -> Iterator[str]:
    """A free CUDA device ("cuda:N") for the block, or "cpu" on a machine without one."""
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        yield "cpu"
        return
    with claim_slot(count, lock_dir) as slot:
        yield f"cuda:{slot}"


def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX); without it torch
    converts to float32 and back around every operation."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def compute_dtype(setting: str, device: str) -> str:
    """The dtype a model runs in: "auto" is bfloat16 on a GPU, and on a CPU with native
    bfloat16 (measured in the README); float32 elsewhere."""
    if setting != "auto":
        return setting
    return "bfloat16" if device.startswith("cuda") or native_bfloat16() else "float32"
