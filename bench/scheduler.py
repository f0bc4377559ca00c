"""Benchmark: Snakemake's own cost per job on the real DAG, from the default config to the paper's
4,636 jobs, with every job's command replaced by a stand-in that only writes its outputs.

In a scratch copy of the workflow (tests.helpers.copy_workflow, with the repository's profiles),
a fake `genies` first on PATH looks up its job by the log file its stderr goes to (every rule
writes `2> {log}`) in a map taken from a dry run, and writes the job's outputs: a real split for
`split` and a real model manifest for `materialise` (made once by the real commands for the test
config, so that the resources Snakemake computes from them still compute), an empty file for the
rest (a folder for an output without a suffix: the workflow's directory() outputs). Then
`snakemake genies` runs the whole DAG with the profile's settings. Printed per size: the CPU time
of the dry run (parsing and the DAG) and of the run, user + system of the snakemake process and
its threads but not of its jobs (sampled from /proc every 0.05 s), and the run's wall time, each
also per job. `--job-seconds` makes every stand-in sleep, as real jobs take time: Snakemake's
passes over the ready jobs come with finished jobs and with timers, so its cost grows with the
run's length too.

Sizes: the default config, cuts of the paper's run (config/paper.yaml with paper-all.yaml, one,
two and three of its four models) and the whole of it.

    python bench/scheduler.py                     # every size
    python bench/scheduler.py --sizes default paper-all-1 --job-seconds 1
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers

from tests.helpers import ENV, copy_workflow  # noqa: E402

PAPER_ALL = ["--configfile", "config/paper.yaml", "config/paper-all.yaml"]
PAPER_MODELS = ["openllama-3b", "llama-7b", "llama-13b", "llama-30b"]
SIZES = {
    "default": [],
    **{
        f"paper-all-{n}": [*PAPER_ALL, "--config", f"models={json.dumps(PAPER_MODELS[:n])}"]
        for n in (1, 2, 3)
    },
    "paper-all": PAPER_ALL,
}
# a job of the dry run's listing: its rule, and the output and log lines that follow
JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", re.M)
FAKE = '''#!{python} -SE
"""A stand-in for `genies`: writes the outputs of the job whose log its stderr is."""
import json, os, shutil, sys, time
from pathlib import Path

time.sleep({seconds})
job = json.loads(Path({jobs!r}).read_text())[os.path.realpath("/proc/self/fd/2")]
for path in map(Path, job["outputs"]):
    path.parent.mkdir(parents=True, exist_ok=True)
    if job["rule"] == "split":
        shutil.copy({split!r}, path)
    elif path.suffix:
        path.touch()
    else:  # a directory() output: a model folder, the figures
        path.mkdir(exist_ok=True)
        if job["rule"] == "materialise_model":
            shutil.copy({manifest!r}, path / "genies_model.json")
'''


def snakemake(workdir: Path, *args: str, env=ENV) -> tuple[str, float, float]:
    """Run snakemake; (its output, its own CPU seconds, wall seconds)."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    log = workdir / "bench.log"  # a file, not a pipe: a pipe nobody reads would block snakemake
    started = time.perf_counter()
    with log.open("w") as out:
        process = psutil.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    cpu = 0.0
    while process.poll() is None:
        try:
            times = process.cpu_times()
            cpu = times.user + times.system
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    wall = time.perf_counter() - started
    if process.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{log.read_text()[-3000:]}")
    return log.read_text(), cpu, wall


def templates(scratch: Path) -> tuple[Path, Path]:
    """A real split and a real model manifest, made by the real commands (test config)."""
    workdir = copy_workflow(scratch / "templates")
    split, model = "data/splits/alpaca_short/train.parquet", "models/tiny-llama"
    snakemake(workdir, split, model, "--configfile", "config/test.yaml")
    return workdir / split, workdir / model / "genies_model.json"


def job_map(dry_run: str, workdir: Path) -> dict[str, dict]:
    """log path -> {rule, outputs} of every job of a dry run's listing."""
    jobs = {}
    for rule, body in JOB.findall(dry_run):
        fields = dict(re.findall(r"^    (\w+): (.*)$", body, re.M))
        if "log" in fields:
            log = os.path.realpath(workdir / fields["log"].split(" ")[0])
            jobs[log] = {"rule": rule, "outputs": fields["output"].split(", ")}
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--job-seconds", type=float, default=0.0, help="each stand-in sleeps")
    more = "more snakemake options for the run, e.g. --scheduler greedy"
    parser.add_argument("--snakemake", nargs=argparse.REMAINDER, default=[], help=more)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genies-bench-scheduler-") as scratch:
        scratch = Path(scratch)
        split, manifest = templates(scratch)
        fake = scratch / "bin" / "genies"
        fake.parent.mkdir()
        fake.write_text(FAKE.format(python=sys.executable, jobs=str(scratch / "jobs.json"),
                                    manifest=str(manifest), split=str(split),
                                    seconds=args.job_seconds))  # fmt: skip
        fake.chmod(0o755)
        env = {**ENV, "PATH": f"{fake.parent}{os.pathsep}{ENV['PATH']}"}
        print(f"stand-in jobs of {args.job_seconds} s; CPU and wall of the snakemake process")
        print("size          jobs  DAG CPU s  run CPU s  CPU per job ms  run wall s  wall/job ms")
        for name in args.sizes:
            workdir = copy_workflow(scratch / name)
            dry_run, dag_cpu, _ = snakemake(workdir, "genies", "-n", *SIZES[name])
            (scratch / "jobs.json").write_text(json.dumps(job_map(dry_run, workdir)))
            out, cpu, wall = snakemake(workdir, "genies", *args.snakemake, *SIZES[name], env=env)
            jobs = int(re.findall(r"(\d+) of \d+ steps \(100%\) done", out)[-1])
            print(f"{name:12} {jobs:5} {dag_cpu:10.1f} {cpu:10.1f} {1000 * cpu / jobs:15.1f}"
                  f" {wall:11.1f} {1000 * wall / jobs:12.1f}", flush=True)  # fmt: skip
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
