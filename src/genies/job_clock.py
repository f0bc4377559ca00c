"""Where a `genies` job's time went, as one line at the end of its log: the whole job from the
process's start, the part before its work (the interpreter, the imports, up to `ready()`) and
the model loads. bench/jobs.py sums these lines over a run's logs. How a job ran goes in its log,
never into an artifact."""

import os
import time
from contextlib import contextmanager

_IMPORTED = time.monotonic()
_ready: float | None = None
_model_loads = 0.0


def since_start() -> float:
    """Seconds since this process started: from /proc on Linux, elsewhere since this module was
    imported (early in genies.cli, so only the interpreter's own start is missed)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: ticks after boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, AttributeError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


def ready() -> None:
    """The job's imports are done: what follows is its work."""
    global _ready
    _ready = since_start()


@contextmanager
def model_load():
    global _model_loads
    started = time.perf_counter()
    try:
        yield
    finally:
        _model_loads += time.perf_counter() - started


def summary(command: str) -> str:
    total = since_start()
    before = total if _ready is None else _ready
    return (
        f"genies {command}: {total:.2f} s, of which start and imports {before:.2f} s, "
        f"model loads {_model_loads:.2f} s"
    )
