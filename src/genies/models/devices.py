"""Which devices a job runs on. Snakemake's `gpu` resource is only a counter: it never says which
GPUs a job got, so a GPU job claims free ones itself with exclusive locks on per-GPU lock files,
held for the life of the job. A lock file is named by the GPU's entry in CUDA_VISIBLE_DEVICES
(its index where that is unset), so jobs that see the same GPU under different numbers still
exclude each other. Inside a SLURM job the locks are the job's own: SLURM already gave the job
GPUs no other job has, and where it confines jobs to their devices (ConstrainDevices) every job
numbers its GPUs from 0, so jobs of different allocations sharing locks would wait on each other
for nothing. Jobs of one allocation (Snakemake run inside salloc) still claim among themselves.
Without a GPU, or asked for none, jobs run on the CPU.

A model that needs several GPUs (the model setting `gpus`) is spread over the ones its job
claimed (genies.models.families.spread_plan): its decoder layers split into equal consecutive
runs, the embedding on the first GPU, the final norm and LM head on the last; each layer runs
where its weights are (accelerate's hooks move the activations), one GPU at a time.
"""

import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from genies.errors import GeniesError


def default_lock_dir() -> Path:
    """Per user, and per SLURM job inside one (see above)."""
    job = os.environ.get("SLURM_JOB_ID")
    return Path(tempfile.gettempdir()) / (
        f"genies-gpu-slots-{os.getuid()}" + (f"-slurm-{job}" if job else "")
    )


def try_lock(path: Path):
    handle = open(path, "a+")  # noqa: SIM115 (held open for the life of the claim)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def visible_ids(count: int) -> list[str]:
    """The name of each visible GPU: its CUDA_VISIBLE_DEVICES entry, else its index."""
    listed = [i for i in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if i.strip()]
    return listed[:count] if len(listed) >= count else [str(i) for i in range(count)]


@contextmanager
def claim_slots(
    names: list[str], count: int = 1, lock_dir=None, timeout_s: float = 3600, poll_s: float = 1.0
) -> Iterator[list[int]]:
    """Hold `count` of the slots `names` (the lowest free ones, all or none) until the block
    ends; yield their positions in `names`."""
    if count > len(names):
        raise GeniesError(f"a job needs {count} GPUs, but only {len(names)} are visible")
    lock_dir = Path(lock_dir or default_lock_dir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        with ExitStack() as held:
            slots = []
            for slot, name in enumerate(names):
                handle = try_lock(lock_dir / f"gpu-{name}.lock")
                if handle is not None:
                    held.callback(handle.close)  # closing releases the lock
                    slots.append(slot)
                    if len(slots) == count:
                        yield slots
                        return
        # fewer than `count` free: all released (no job holds part of a claim while it waits)
        if time.monotonic() > deadline:
            raise GeniesError(
                f"no {count} free GPU(s) of {len(names)} in {lock_dir} after {timeout_s:.0f} s"
            )
        time.sleep(poll_s)


@contextmanager
def claim_devices(count: int = 1, lock_dir=None) -> Iterator[list[str]]:
    """`count` free CUDA devices (["cuda:N", ...]) for the block; ["cpu"] where `count` is 0 or
    no GPU is visible. Says on stderr (the job's log) which ones, and what the job was granted."""
    import torch

    visible = torch.cuda.device_count()
    with ExitStack() as stack:
        if count == 0 or visible == 0:
            devices = ["cpu"]
        else:
            slots = stack.enter_context(claim_slots(visible_ids(visible), count, lock_dir))
            devices = [f"cuda:{slot}" for slot in slots]
        granted = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        print(f"devices: {', '.join(devices)} (CUDA_VISIBLE_DEVICES={granted})", file=sys.stderr)
        yield devices


def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX); without it torch
    converts to float32 and back around every operation."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def compute_dtype(setting: str, device: str) -> str:
    """The dtype a model runs in: "auto" is bfloat16 on a GPU, and on a CPU with native
    bfloat16 (measured: docs/performance.md); float32 elsewhere."""
    if setting != "auto":
        return setting
    return "bfloat16" if device.startswith("cuda") or native_bfloat16() else "float32"
