"""The artifacts a built run reads that have gone missing since, for the Snakefile to force.

Snakemake rebuilds a missing file only where a job that needs it runs anyway: a deleted state,
evaluation or activation sidecar whose tables are still there is ignored, and the plain command
answers "Nothing to be done" (snakemake/snakemake#1978, by design since 7.7). Forced, each is
rebuilt by the plain command of any target, and what depends on it after it."""

from collections.abc import Iterable
from pathlib import Path


def missing_after_build(chains: Iterable[tuple[Iterable[str], str]]) -> list[str]:
    """The missing paths of each (paths, built) chain whose `built` product exists: what a run
    that was built once has lost."""
    return sorted(
        {
            str(path)
            for needed, built in chains
            if Path(built).exists()
            for path in needed
            if not Path(path).exists()
        }
    )
