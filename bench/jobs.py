"""Benchmark: the workflow's jobs per rule and the DAG build time, and where a finished run's job
time went: each job's fixed cost (Python's start, the imports, model loads) against its work.

For the default config and for config/paper.yaml with config/paper-all.yaml over it (all 56
distinct shifts), a dry run `snakemake -n genies` in a scratch copy of the workflow
(tests.helpers.copy_workflow: a run in the repository would leave .snakemake state there) gives
the jobs per rule (its "Job stats" table) and the DAG build time (its wall time, median of
--repeats).

Fixed cost: every `genies` job ends its log with one line (genies.job_clock): its seconds from
the process's start, of which start and imports (up to the point the command's modules are
loaded) and model loads. Read from <run-dir>/logs, summed per log folder (one per rule family;
fits and evaluations per method) and over all: the fixed share is the fixed seconds over the job
seconds.

    python bench/jobs.py                          # the logs of `make run`, if any
    python bench/jobs.py --run-dir /tmp/clone --repeats 3
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers

from tests.helpers import ENV, copy_workflow  # noqa: E402

CONFIGS = {"default": [], "paper-all": ["config/paper.yaml", "config/paper-all.yaml"]}
TIMING = re.compile(
    r"^genies [\w-]+: (\S+) s, of which start and imports (\S+) s, model loads (\S+) s$", re.M
)


def wall(command: list[str], **kwargs) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, **kwargs)
    if done.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - started, done.stdout + done.stderr


def dry_run(workdir: Path, configfiles: list[str], repeats: int) -> tuple[float, dict[str, int]]:
    """(median seconds, jobs per rule) of `snakemake -n genies`."""
    command = [sys.executable, "-m", "snakemake", "genies", "-n"]
    command += ["--configfile", *configfiles] if configfiles else []
    runs = [wall(command, cwd=workdir) for _ in range(repeats)]
    table = runs[-1][1].split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    counts = {name: int(count) for name, count in (line.split() for line in table)}
    assert counts.pop("total") == sum(counts.values())
    return statistics.median(seconds for seconds, _ in runs), counts


def job_times(run_dir: Path) -> dict[str, list[tuple[float, float, float]]]:
    """job family -> (seconds, start and imports, model loads) of each job that logged them. A
    family is a log folder (one per rule), fits and evaluations apart per method
    (logs/<fit|evaluate>/<model>/<method>/...): their work differs a hundredfold."""
    times = defaultdict(list)
    for log in sorted(Path(run_dir, "logs").rglob("*.log")):
        found = TIMING.findall(log.read_text(encoding="utf-8", errors="replace"))
        if found:  # a job logging straight into logs/ is named by its file
            parts = log.relative_to(run_dir, "logs").parts
            family = parts[0].removesuffix(".log")
            if family in ("fit", "evaluate") and len(parts) > 3:
                family = f"{family} {parts[2]}"
            times[family].append(tuple(map(float, found[-1])))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=REPO, help="a finished run's workdir")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="genies-bench-jobs-") as scratch:
        workdir = copy_workflow(Path(scratch) / "workflow")
        for name, files in CONFIGS.items():
            seconds, counts = dry_run(workdir, files, args.repeats)
            print(f"{name}: {sum(counts.values())} jobs, DAG build (dry run) {seconds:.1f} s")
            print("  " + ", ".join(f"{rule} {jobs}" for rule, jobs in counts.items()))

    times = job_times(args.run_dir)
    if not times:
        sys.exit(f"\nno job timing lines in {args.run_dir}/logs: fixed costs need a run")
    print(f"\njobs of {args.run_dir}/logs, seconds per job (mean) and the fixed share")
    header = ("job family", "jobs", "job s", "imports s", "loads s", "fixed")
    print("{:<24} {:>5} {:>7} {:>9} {:>8} {:>6}".format(*header))
    totals = [0.0, 0.0]
    for folder, jobs in sorted(times.items()):
        seconds, imports, loads = (sum(column) for column in zip(*jobs, strict=True))
        totals = [totals[0] + seconds, totals[1] + imports + loads]
        n = len(jobs)
        print(
            f"{folder:<24} {n:>5} {seconds / n:>7.2f} {imports / n:>9.2f} {loads / n:>8.2f}"
            f" {(imports + loads) / seconds:>6.1%}"
        )
    jobs = sum(len(j) for j in times.values())
    share = totals[1] / totals[0]
    print(f"{'all':<24} {jobs:>5} {totals[0] / jobs:>7.2f} {'':>9} {'':>8} {share:>6.1%}")


if __name__ == "__main__":
    main()
