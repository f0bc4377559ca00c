"""Benchmark: the workflow's jobs per rule, the DAG build time, and each job's fixed cost against
its compute.

For the default config and for config/paper.yaml with config/paper-all.yaml over it (all 56
distinct shifts), a dry run `snakemake -n genies` in a
scratch copy of the workflow (tests.helpers.copy_workflow: a run in the repository would leave
.snakemake state there) gives the jobs per rule (its "Job stats" table), the method of every fit
and evaluate job (its job listing) and the DAG build time (its wall time, median of --repeats).

Fixed cost of a job: a fresh interpreter importing what its `genies` command imports, plus one
model load for the jobs that run the model (extract_activations; fit and evaluate of a method
whose `reads.model` is set). What the command imports: the modules of
genies.code_inputs.library_files for the rule's command (for fit and evaluate with every
intervention module, which `interventions.get` imports through the registry), timed as
`python -c "import ..."`. Not `genies <command> --help`, which stops at argument parsing and runs
only genies.cli's top-level imports, never those inside `cmd_<name>` (0.07 s where fit imports
for seconds). The listed modules include those a command imports inside functions (an upper bound
where a job's path skips them, e.g. genies.models.loading for a cache-only method); third-party
libraries imported inside functions (peft, scikit-learn) are left to the compute. The model load
is genies.models.loading.load_model of the materialised embedded SmolLM2-135M (--model-dir) on
the CPU in a fresh interpreter, transformers already imported: a floor for the paper's LLaMAs.

Compute per job: the mean wall time of the rule's jobs in a finished run (Snakemake's records in
<run-dir>/.snakemake/metadata, one JSON per output; the outputs of one job share its start and
end and count once) minus the fixed cost of those jobs. Printed per config: rule, jobs, fixed
s/job, compute s/job (when a run exists; the run's, whatever config it ran) and the fixed share.

    python bench/jobs.py                                  # records of `make run`, if any
    python bench/jobs.py --run-dir /tmp/sizing --repeats 3
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers

from genies import interventions  # noqa: E402
from genies.code_inputs import library_files  # noqa: E402
from tests.helpers import ENV, copy_workflow  # noqa: E402

CONFIGS = {"default": [], "paper-all": ["config/paper.yaml", "config/paper-all.yaml"]}
JOB = re.compile(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    wildcards: (.*)$", re.M)
LOAD = """import sys, time
from genies.models.loading import load_model
started = time.perf_counter()
load_model(sys.argv[1])
print("load", time.perf_counter() - started)"""


def wall(command: list[str], **kwargs) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, **kwargs)
    if done.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - started, done.stdout + done.stderr


def median_wall(command: list[str], repeats: int, **kwargs) -> tuple[float, str]:
    runs = [wall(command, **kwargs) for _ in range(repeats)]
    return statistics.median(t for t, _ in runs), runs[-1][1]


def runs_model(command: str | None, method: str | None) -> bool:
    if command in ("fit", "evaluate"):
        return interventions.registry()[method].reads.model
    return command == "extract"


def rule_commands(workdir: Path) -> dict[str, str]:
    """rule -> the `genies` subcommand of its shell line."""
    commands = {}
    for path in sorted(workdir.glob("rules/*.smk")):
        blocks = re.split(r"^rule (\w+):$", path.read_text(encoding="utf-8"), flags=re.M)
        for rule, body in zip(blocks[1::2], blocks[2::2], strict=True):
            if found := re.search(r'"genies ([\w-]+)', body):
                commands[rule] = found[1]
    return commands


def dry_run(workdir: Path, configfiles: list[str], repeats: int):
    """(median seconds, jobs per rule, jobs per rule that run the model, rule -> command)."""
    command = [sys.executable, "-m", "snakemake", "genies", "-n"]
    command += ["--configfile", *configfiles] if configfiles else []
    seconds, out = median_wall(command, repeats, cwd=workdir)
    table = out.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    counts = {name: int(count) for name, count in (line.split() for line in table)}
    assert counts.pop("total") == sum(counts.values())
    commands, model_jobs = rule_commands(workdir), Counter()
    for rule, wildcards in JOB.findall(out):
        method = dict(pair.split("=", 1) for pair in wildcards.split(", ")).get("intervention")
        model_jobs[rule] += runs_model(commands.get(rule), method)
    return seconds, counts, model_jobs, commands


def import_seconds(command: str, repeats: int) -> float:
    extra = [method.__module__ for method in interventions.registry().values()]
    files = library_files(REPO / "src", command, *(extra if command in ("fit", "evaluate") else ()))
    modules = []
    for path in files:
        parts = Path(path).relative_to(REPO / "src").with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return median_wall([sys.executable, "-c", "import " + ", ".join(modules)], repeats)[0]


def run_records(run_dir: Path, commands: dict[str, str]) -> dict[str, tuple[list[float], int]]:
    """rule -> (wall seconds of each finished job, jobs of them that ran the model)."""
    jobs = {}
    for path in Path(run_dir, ".snakemake", "metadata").glob("*"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):  # being written
            continue
        if not record.get("incomplete") and record.get("endtime"):
            key = (record["rule"], record["starttime"], record["endtime"])
            jobs[key] = record.get("shellcmd") or ""
    times, model = defaultdict(list), Counter()
    for (rule, start, end), shell in jobs.items():
        times[rule].append(end - start)
        method = re.match(r"genies (?:fit|evaluate) (\w+)", shell)
        model[rule] += runs_model(commands.get(rule), method and method[1])
    return {rule: (seconds, model[rule]) for rule, seconds in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=REPO, help="a finished run's workdir")
    parser.add_argument("--model-dir", type=Path, help="default: RUN_DIR/models/smollm2-135m")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    model_dir = args.model_dir or args.run_dir / "models" / "smollm2-135m"

    with tempfile.TemporaryDirectory(prefix="genies-bench-jobs-") as scratch:
        workdir = copy_workflow(Path(scratch) / "workflow")
        dags = {name: dry_run(workdir, files, args.repeats) for name, files in CONFIGS.items()}
    commands = {rule: c for dag in dags.values() for rule, c in dag[3].items()}
    imports = {c: import_seconds(c, args.repeats) for c in sorted(set(commands.values()))}
    start = median_wall([sys.executable, "-c", "pass"], args.repeats)[0]
    load = None
    if (model_dir / "genies_model.json").is_file():
        outs = [wall([sys.executable, "-c", LOAD, str(model_dir)])[1] for _ in range(args.repeats)]
        load = statistics.median(float(re.search(r"^load (\S+)$", o, re.M)[1]) for o in outs)
    records = run_records(args.run_dir, commands)

    print(f"Python start {start:.2f} s; imports per command (Python start included), s:")
    print("  " + ", ".join(f"{c} {s:.2f}" for c, s in imports.items()))
    print(f"model load ({model_dir}): " + (f"{load:.2f} s" if load else "not found, left out"))
    if records:
        print(f"run records: {sum(len(t) for t, _ in records.values())} jobs in {args.run_dir}")
    else:
        print(f"no run found in {args.run_dir}/.snakemake/metadata: fixed costs only")

    def fixed(rule: str, jobs: int, model_jobs: int) -> float:
        base = imports[commands[rule]] if rule in commands else 0.0
        return base + (load or 0.0) * model_jobs / jobs

    for name, (seconds, counts, model_jobs, _) in dags.items():
        print(f"\n{name}: {sum(counts.values())} jobs, DAG build (dry run) {seconds:.1f} s")
        header = f"{'rule':<20} {'jobs':>5} {'fixed s/job':>12}"
        print(header + (f" {'compute s/job':>14} {'fixed %':>8}" if records else ""))
        total_fixed = total_known = total_all = 0.0
        for rule, jobs in counts.items():
            cost = fixed(rule, jobs, model_jobs[rule])
            total_fixed += jobs * cost
            line = f"{rule:<20} {jobs:>5} {cost:>12.2f}"
            if rule in records:
                times, ran_model = records[rule]
                compute = statistics.mean(times) - fixed(rule, len(times), ran_model)
                total_known += jobs * cost
                total_all += jobs * (cost + compute)
                line += f" {compute:>14.2f} {cost / (cost + compute):>8.1%}"
            print(line)
        total = sum(counts.values())
        share = f" {'':>14} {total_known / total_all:>8.1%}" if total_all else ""
        print(f"{'total':<20} {total:>5} {total_fixed / total:>12.2f}{share}")
        print(f"fixed cost of all jobs: {total_fixed / 60:.1f} min", end="")
        print(" (fixed % of the total: over the rules with records)" if total_all else "")


if __name__ == "__main__":
    main()
