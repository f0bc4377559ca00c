"""dvc.yaml, written from the workflow: `python -m genies.dvc_stages` (or `make dvc.yaml`).

Each DVC stage runs one Snakemake target; Snakemake owns the DAG and decides what is stale, DVC
records, pushes and pulls the artifacts. A stage depends on what its own rules read and no other
stage writes: the library files of the `genies` commands its rules run (derived from imports, the
same files Snakemake's jobs take as code inputs), the rule files, the vendored data, the config
keys its rules read, and the artifacts of the stages before it. So editing one module marks only
the stages whose jobs run it, and a test fails when dvc.yaml differs from what this writes.
"""

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from genies import interventions
from genies.code_inputs import library_files
from genies.config import load_config
from genies.errors import GeniesError

CONFIG = "config/config.yaml"
LOCK = "dvc.lock"  # what `dvc repro` writes: the runner's record, never shipped by the project
NOT_RUN = "not in dvc.lock"
# a rule's shell line: the subcommand, and the method's name where it loads one by name
SHELL_COMMAND = re.compile(r'shell:\s*\n\s*"genies ([\w-]+)( \{wildcards\.intervention\})?')
WORKFLOW = ["Snakefile", "rules/common.smk", "workflow/schemas/config.schema.yaml", "data/raw"]


@dataclass(frozen=True)
class Stage:
    name: str
    desc: str
    target: str
    rules: tuple[str, ...]  # the rules whose jobs the target runs beyond earlier stages'
    config_keys: tuple[str, ...] | None  # None: every key (the stage reads the whole config)
    after: tuple[str, ...] = ()  # the stages whose artifacts its jobs read
    outs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    report: str | None = None  # the report's path, when the stage writes one
    extra_deps: tuple[str, ...] = ()


PAPER_FIGURES = tuple(
    f"results/paper/figures/{name}.png"
    for name in (
        "genies_de",
        "scaling",
        "extreme_vs_probing",
        "extreme_vs_probing_all",
        "mixing",
        "contrasts",
        *(
            f"{kind}_{model}"
            for kind in ("heatmap", "heatmap_all", "accuracy_vs_zero_shot", "reliability")
            for model in ("openllama-3b", "llama-7b", "llama-13b", "llama-30b")
        ),
    )
)

STAGES = (
    Stage(
        "splits",
        "every configured distribution's train and test split, from the vendored data",
        "splits",
        ("split",),
        ("raw_dir", "distributions"),
        outs=("data/splits",),
    ),
    Stage(
        "audit",
        "the data audit of the configured distributions",
        "data_audit",
        ("data_audit",),
        ("raw_dir", "distributions"),
        after=("splits",),
        outs=("results/data_audit.csv", "results/data_audit.md"),
    ),
    Stage(
        "paper",
        "every published table recomputed from the published evaluations, the summary, the "
        "figures and the HTML report",
        "paper",
        (
            "published_evaluations",
            "paper_tables",
            "paper_summary",
            "paper_contrasts",
            "paper_claims",
            "paper_figures",
            "paper_mixing",
        ),
        ("raw_dir", "bootstrap", "seed"),
        after=("splits",),
        outs=(
            "results/paper/published_evaluations.parquet",
            "results/paper/generalization_metrics",
            "results/paper/shift_metrics.parquet",
            "results/paper/notes.csv",
            "results/paper/target_tuned_capability.csv",
            "results/paper/correlations.csv",
            "results/paper/genies_summary.csv",
            "results/paper/genies_summary.md",
            "results/paper/mixing.csv",
            "results/paper/mixing.md",
            "results/paper/contrasts.csv",
            "results/paper/contrasts.md",
            "results/paper/contrast_shifts.csv",
            "results/paper/claims.csv",
            "results/paper/claims.md",
        ),
        metrics=("results/paper/genies_summary.json",),
        plots=PAPER_FIGURES,
        report="results/paper/report.html",
        extra_deps=("workflow/report",),
    ),
    Stage(
        "activations",
        "the configured models materialised, and the activation cache of every split the "
        "configured shifts read",
        "activations",
        ("materialise_model", "extract_activations"),
        ("raw_dir", "shifts", "models", "model_settings", "activations", "max_examples", "seed"),
        after=("splits",),
        outs=("models", "results/activations"),
    ),
    Stage(
        "genies",
        "every configured intervention fitted on each shift's source and scored on its target, "
        "the per-shift tables, the GENIES table, the contrasts, the claims, the figures and the "
        "report",
        "genies",
        (
            "fit",
            "evaluate",
            "shift_metrics",
            "genies_table",
            "genies_contrasts",
            "genies_claims",
            "genies_figures",
        ),
        None,
        after=("splits", "activations"),
        outs=(
            "results/interventions",
            "results/evaluations",
            "results/shift_metrics",
            "results/generalization_metrics",
            "results/genies_table.csv",
            "results/genies_table.md",
            "results/genies_shifts.csv",
            "results/genies_models_per_shift.csv",
            "results/genies_contrasts.csv",
            "results/genies_contrasts.md",
            "results/genies_contrast_shifts.csv",
            "results/claims.csv",
            "results/claims.md",
        ),
        metrics=("results/genies_table.json",),
        plots=("results/figures",),
        report="results/report.html",
        extra_deps=("workflow/report",),
    ),
)


def rule_commands(rules_dir: Path) -> dict[str, tuple[str, str, bool]]:
    """Rule name -> (its .smk file, the `genies` subcommand its shell runs, whether the command
    loads an intervention by name), for the rules that run one."""
    commands = {}
    for path in sorted(Path(rules_dir).glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", path.read_text(encoding="utf-8")):
            rule = re.match(r"rule (\w+):", block)
            command = re.search(SHELL_COMMAND, block)
            if rule and command:
                by_name = command.group(2) is not None
                commands[rule.group(1)] = (f"rules/{path.name}", command.group(1), by_name)
    return commands


def stage_deps(stage: Stage, root: Path, commands, methods: list[str]) -> list[str]:
    """`methods`: the modules of the configured interventions, which fit and evaluate load."""
    code = set()
    for rule in stage.rules:
        smk, command, by_name = commands[rule]
        files = library_files(root / "src", command, *(methods if by_name else []))
        code |= {smk, *(Path(path).relative_to(root).as_posix() for path in files)}
    upstream = [out for other in STAGES if other.name in stage.after for out in other.outs]
    return [*WORKFLOW, *stage.extra_deps, *upstream, *sorted(code)]


def config_params(stage: Stage, keys: dict) -> list[str]:
    wanted = stage.config_keys if stage.config_keys is not None else tuple(keys)
    return [key for key in wanted if key in keys]  # DVC refuses a key the file lacks


def persisted(paths) -> list[dict]:
    # Snakemake, not DVC, decides what is stale: DVC never deletes an output before a stage runs
    return [{path: {"persist": True}} for path in paths]


def stage_entry(stage: Stage, root: Path, commands, methods: list[str], keys: dict) -> dict:
    cmd = f"snakemake {stage.target}"
    if stage.report:
        cmd += f" && snakemake {stage.target} --report {stage.report}"
    entry = {
        "desc": stage.desc,
        "cmd": cmd,
        "deps": stage_deps(stage, root, commands, methods),
        "params": [{CONFIG: config_params(stage, keys)}],
        # the HTML report is a record of how the run went (its jobs' times and dates): written,
        # never tracked, so that the same config gives the same dvc.lock
        "outs": persisted(stage.outs),
    }
    if stage.metrics:
        entry["metrics"] = persisted(stage.metrics)
    if stage.plots:
        entry["plots"] = persisted(stage.plots)
    return entry


def dvc_yaml(root: Path) -> str:
    root = Path(root)
    commands = rule_commands(root / "rules")
    configured = load_config(root / CONFIG).interventions
    methods = [interventions.get(name).__module__ for name in configured]
    keys = yaml.safe_load((root / CONFIG).read_text(encoding="utf-8"))
    stages = {stage.name: stage_entry(stage, root, commands, methods, keys) for stage in STAGES}
    header = "# Written by `python -m genies.dvc_stages` (see its docstring): do not edit.\n"
    return header + yaml.safe_dump({"stages": stages}, sort_keys=False, width=100)


def artifacts(stage: Stage) -> list[str]:
    return [*stage.outs, *stage.metrics, *stage.plots]


def dvc(*args: str) -> str:
    """Run a dvc command; its output, or a GeniesError with its last line."""
    done = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
        raise GeniesError(f"`dvc {' '.join(args)}` failed: {lines[-1]}")
    return done.stdout


def stale_records() -> dict[str, list[str]]:
    """What, per stage, differs between dvc.lock and the checkout's code, rule files, data and
    config (`dvc status`), leaving out the stages' artifacts: those exist only where the pipeline
    ran, and a stage reading another's artifacts is stale through that stage. A stage the lock
    does not hold (never reproduced here) is `NOT_RUN`."""
    if not Path(LOCK).is_file():
        raise GeniesError(
            f"no {LOCK} in {Path.cwd()}: the project ships none; `make run` records one, or "
            "`git pull` a lab's fork that committed theirs"
        )
    recorded = yaml.safe_load(Path(LOCK).read_text(encoding="utf-8")).get("stages", {})
    outs = {path for stage in STAGES for path in artifacts(stage)}
    stale: dict[str, list[str]] = {}
    for name, changes in json.loads(dvc("status", "--json") or "{}").items():
        if name not in recorded:
            stale[name] = [NOT_RUN]
            continue
        for change in changes:
            if isinstance(change, str):  # "changed command", "always changed"
                stale.setdefault(name, []).append(change)
                continue
            for kind, paths in change.items():
                if kind == "changed outs":
                    continue
                for path, state in paths.items():
                    if path not in outs:
                        stale.setdefault(name, []).append(f"{path}: {state}")
    return stale


def pull() -> tuple[list[str], dict[str, list[str]]]:
    """`dvc pull` the artifacts of every stage that dvc.lock records for this very checkout, then
    tell Snakemake they are current (`snakemake --touch`: pulled files carry the time of the pull,
    in no order, and no Snakemake metadata). A stage recorded from other code or config, or after
    one, is not pulled: its artifacts would be stale, and Snakemake could not tell. Returns
    (pulled stages, skipped stages with why)."""
    stale = stale_records()
    pulled, skipped = [], {}
    for stage in STAGES:
        waits_on = [name for name in stage.after if name in skipped]
        if stage.name in stale or waits_on:
            skipped[stage.name] = stale.get(stage.name, []) + [f"after {n}" for n in waits_on]
        else:
            pulled.append(stage)
    if pulled:
        dvc("pull", *(stage.name for stage in pulled))
        # --forceall: every job of those targets, so that each records its metadata (params,
        # code) and a later config change still reruns what it touches
        touch = ["snakemake", "--touch", "--forceall", *(stage.target for stage in pulled)]
        if subprocess.run(touch, capture_output=True, text=True).returncode != 0:
            raise GeniesError(f"`{' '.join(touch)}` failed: run it to see why")
    return [stage.name for stage in pulled], skipped


def recorded_dtypes(model: str, root: Path = Path(".")) -> set[str]:
    """The compute dtypes that `model`'s activation caches and evaluations record."""
    from genies.interventions.jobs import evaluation_facts

    sidecars = (root / "results/activations" / model).glob("**/*.json")
    found = {json.loads(path.read_text(encoding="utf-8")).get("compute_dtype") for path in sidecars}
    evaluations = (root / "results/evaluations" / model).glob("**/*.parquet")
    found |= {evaluation_facts(path).get("compute_dtype") for path in evaluations}
    return found - {None}


def dtype_notes(root: Path = Path(".")) -> list[str]:
    """One line per configured model whose artifacts were computed in another dtype than its
    `dtype` setting resolves to here ("auto": bfloat16 on a GPU or a CPU with native bfloat16):
    a job rerun here would refuse to combine its output with them."""
    import torch

    from genies.models.devices import compute_dtype

    notes = []
    for model, settings in load_config(root / CONFIG).models.items():
        gpu = torch.cuda.is_available() and settings.get("gpus", 1) > 0
        device = "cuda" if gpu else "cpu"
        here = compute_dtype(settings["dtype"], device)
        found = sorted(recorded_dtypes(model, root))
        if found and found != [here]:
            notes.append(
                f"note: {model}'s pulled artifacts were computed in {', '.join(found)}, but "
                f"dtype {settings['dtype']} computes {here} on this machine ({device}): jobs "
                f"rerun here refuse to combine with them unless its dtype is set to {found[0]}"
            )
    return notes


if __name__ == "__main__":  # from the repository root, as the config's paths are
    Path("dvc.yaml").write_text(dvc_yaml(Path(".")), encoding="utf-8")
