"""A failed job's one line on the console. Snakemake reports a failed job by the name of its log;
the job's own error (genies.cli: one line naming the file and the fix, after any traceback) is
that log's last line. The Snakefile prints those lines last, after Snakemake's own."""

from pathlib import Path


def job_error_lines(logs: Path, since: float) -> list[str]:
    """The last line of each log under `logs` written since `since` that is a genies error,
    oldest first, each once."""
    found = {}
    for path in Path(logs).rglob("*.log"):
        try:
            written = path.stat().st_mtime
            lines = (
                path.read_text(errors="replace").strip().splitlines() if written >= since else []
            )
        except OSError:
            continue
        if lines and lines[-1].startswith("genies: error: "):
            found.setdefault(lines[-1], written)
    return sorted(found, key=found.get)
