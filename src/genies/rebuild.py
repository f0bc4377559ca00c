"""The artifacts a built run reads that have gone missing since, rebuilt by the plain command.

Snakemake rebuilds a missing file only where a job that needs it runs anyway: a deleted state,
evaluation or activation sidecar whose tables are still there is ignored, and the plain command
answers "Nothing to be done" (snakemake/snakemake#1978, by design since 7.7). Its settings cannot
be changed from a Snakefile (they are set after it is read), so the Snakefile starts Snakemake
again, once, with the same arguments and those files given to `--forcerun`: each is rebuilt, and
what depends on it after it."""

import os
import sys
from collections.abc import Iterable
from pathlib import Path

AGAIN = "GENIES_FORCED_MISSING"  # set in the restarted Snakemake: restart once only


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


def rebuild_missing(chains: Iterable[tuple[Iterable[str], str]]) -> None:
    """Restart this Snakemake with the chains' missing paths forced, if there are any."""
    if os.environ.get(AGAIN) or not (lost := missing_after_build(chains)):
        return
    print(
        f"rebuilding {len(lost)} missing artifact(s) of a built run, e.g. {lost[0]}",
        file=sys.stderr,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[AGAIN] = "1"
    os.execv(sys.executable, [sys.executable, "-m", "snakemake", *forcing(sys.argv[1:], lost)])


def forcing(arguments: list[str], lost: list[str]) -> list[str]:
    """`arguments` with `lost` added to the files and rules they force (`--forcerun`/`-R` takes
    every value up to the next option, and its last occurrence wins: add to that one)."""
    flags = [i for i, argument in enumerate(arguments) if argument in ("--forcerun", "-R")]
    if not flags:
        return [*arguments, "--forcerun", *lost]
    at = flags[-1] + 1
    return [*arguments[:at], *lost, *arguments[at:]]
