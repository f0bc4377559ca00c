import atexit
import functools
import json
import os
import re
import sys
import time
from pathlib import Path

from genies import interventions
from genies.code_inputs import code_stamp
from genies.config import validate_config
from genies.errors import GeniesError
from genies import run_lock
from genies.data.mixing import parse_mixed_source
from genies.evaluation.model_jobs import (
    mixed_scored,
    needed_evaluations,
    needed_states,
    scored_distributions,
)
from genies.paths import (
    activation_sidecar_path,
    CLAIMS,
    FIGURES_DIR,
    GENIES_CONTRAST_SHIFTS,
    GENIES_CONTRASTS,
    GENIES_SHIFTS,
    GENIES_TABLE,
    MIXING_MEANS,
    MIXING_TABLE,
    MODELS_PER_SHIFT,
    UNTRAINED_SOURCE,
    activation_path,
    evaluation_path,
    generalization_table_path,
    model_dir,
    shift_metrics_path,
    split_path,
    state_info_path,
    state_path,
)
from genies.paper.tables import PAPER_MODELS, TTC_DIR
from genies.rebuild import rebuild_missing
from genies.job_errors import job_error_lines
from genies.data.shifts import SHIFTS_DIR, load_shifts, splits_read
from genies.data.splits import count_texts
from genies.data.vendored import SPLITS, vendored_distributions
from genies.models import footprint
from genies.models.catalog import how, results_config, weights_identity
from genies.models.manifest import MANIFEST

# Fails here, before any job, on a bad key or an unknown name (with the allowed values): one line,
# no traceback (the error is the config's, not the workflow's).
try:
    CFG = validate_config(
        config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
    )
except GeniesError as error:
    sys.exit(f"genies: error: {error}")
RAW = CFG.raw_dir

# A run killed with SIGKILL leaves its lock behind; clear it when its owner is gone (see
# genies.run_lock), so that the next run simply resumes (the profile reruns incomplete jobs).
if workflow.is_main_process:
    for name in run_lock.clear_stale(Path(".snakemake", "locks")):
        print(f"removed {name}: its run is no longer alive", file=sys.stderr)


onstart:
    # the file persistence's own lock files (a database backend keeps its locks elsewhere)
    if lock_files := getattr(workflow.persistence, "_lockfile", {}).values():
        run_lock.hold(lock_files)
    # Snakemake's job-rate limiter (--max-jobs-per-timespan, default 100/1s) has every scheduling
    # pass start a timer for one more pass a second later, so each finished job adds a chain of
    # passes that never ends (36 passes a second after 150 jobs), each checking every ready job:
    # its CPU grew with the jobs times the run's length. A local run has no submission rate to
    # limit (the option cannot switch it off); a cluster executor keeps it.
    if workflow.local_exec:
        workflow.scheduler.job_rate_limiter = None


# The published tables cover every distinct shift, whatever the config selects.
ALL_SHIFTS = load_shifts(RAW)
PAPER_TARGETS = sorted({shift.target for shift in ALL_SHIFTS.distinct})
TTC_FILES = sorted(str(path) for path in Path(RAW, TTC_DIR).rglob("*.json"))
# The shift specifications: a changed label, category or reference reruns the shift tables.
SHIFT_SPECS = sorted(str(path) for path in Path(RAW, SHIFTS_DIR).rglob("*.json"))


def code(command, *modules):
    """The library files `genies <command>` runs (derived from imports), as one input (their
    stamp, genies.code_inputs): editing one reruns its jobs."""
    return code_stamp("src", command, *modules)


def raw_dir_of(shift_spec):
    """data/raw, from the path of one of its shift specifications."""
    return next(p.parent for p in Path(shift_spec).parents if p.name == SHIFTS_DIR)


def paper_figure(name, caption):
    return report(
        f"results/paper/figures/{name}.png",
        caption=f"../workflow/report/{caption}.rst",
        category="Paper reproduction",
        subcategory=caption,
    )


PAPER_FIGURES = {
    name: paper_figure(name, name)
    for name in ("genies_de", "scaling", "extreme_vs_probing", "extreme_vs_probing_all")
} | {
    f"{kind}_{model}": paper_figure(f"{kind}_{model}", kind)
    for kind in ("heatmap", "heatmap_all", "accuracy_vs_zero_shot", "reliability")
    for model in PAPER_MODELS
}


# (method, mixed fit as filed) -> [its target], for the configured mixing fractions
MIXED = mixed_scored(CFG.mixing, CFG.shifts)
# the splits the plain shifts read; a mixed fit reads the target's training split too
SHIFT_SPLITS = sorted(splits_read(CFG.shifts))
ACTIVATION_SPLITS = sorted(
    {*SHIFT_SPLITS} | {(shift.target, "train") for shift in CFG.shifts if MIXED}
)
TEMPLATES = list(CFG.activations["templates"])


def extraction_request(wildcards):
    """The JSON the extract command reads: dtypes, batching, and per template what to keep."""
    settings = CFG.models[wildcards.model]
    return json.dumps(
        {
            "templates": CFG.activations["templates"],
            "storage_dtype": CFG.activations["storage_dtype"],
            "padding_side": CFG.activations["padding_side"],
            "dtype": settings["dtype"],
            "max_length": settings["max_length"],
        },
        separators=(",", ":"),
    )


def fit_inputs(wildcards):
    """A fit job's inputs: the source's training split, the model folder (its manifest says
    which weights every state used), the cache files the method reads; for a mixed fit, the
    target's training split and cache files too."""
    method = interventions.registry()[wildcards.intervention]
    mixed = parse_mixed_source(wildcards.source)
    source = wildcards.source if mixed is None else mixed[0]

    def caches(distribution):
        return [
            activation_path(wildcards.model, template, distribution, "train")
            for template in method.reads.templates
        ]

    inputs = {
        "split": split_path(source, "train"),
        "model": model_dir(wildcards.model),
        "activations": caches(source),
    }
    if mixed is not None:
        inputs["mix_split"] = split_path(mixed[1], "train")
        inputs["mix_activations"] = caches(mixed[1])
    return inputs


def mix_argument(wildcards, input):
    """--mix of a mixed fit: the target's training split, its cache files, the fraction."""
    mixed = parse_mixed_source(wildcards.source)
    if mixed is None:
        return ""
    method = interventions.registry()[wildcards.intervention]
    mix = {
        "split": input.mix_split,
        "activations": dict(
            zip(method.reads.templates, input.mix_activations, strict=True)
        ),
        "fraction": mixed[2],
    }
    return f"--mix '{json.dumps(mix, separators=(',', ':'))}'"


# (method, source as filed) -> the test splits its one evaluation job scores
SCORED = scored_distributions(CFG.interventions, CFG.shifts) | MIXED


def scored_inputs(wildcards) -> dict:
    """distribution -> its test split and the cache files the method reads of it."""
    method = interventions.registry()[wildcards.intervention]
    key = (wildcards.intervention, wildcards.source)
    if key not in SCORED:
        raise ValueError(
            f"no configured shift scores {wildcards.intervention} fitted on {key[1]}"
        )
    return {
        distribution: {
            "split": split_path(distribution, "test"),
            "activations": {
                template: activation_path(
                    wildcards.model, template, distribution, "test"
                )
                for template in method.reads.templates
            },
        }
        for distribution in SCORED[key]
    }


def evaluation_inputs(wildcards):
    """An evaluation job's inputs: every test split it scores, the cache files the method reads
    of them, the model folder, the fitted state (trained methods)."""
    scored = scored_inputs(wildcards).values()
    inputs = {
        "splits": [given["split"] for given in scored],
        "model": model_dir(wildcards.model),
        "activations": [
            path for given in scored for path in given["activations"].values()
        ],
    }
    if interventions.registry()[wildcards.intervention].trained:
        inputs["state"] = state_path(
            wildcards.model, wildcards.intervention, wildcards.source
        )
    return inputs


def cache_arguments(wildcards, input):
    """TEMPLATE=PATH of each cache file a fit or evaluate job reads."""
    method = interventions.registry()[wildcards.intervention]
    return " ".join(
        f"{template}={path}"
        for template, path in zip(
            method.reads.templates, input.activations, strict=True
        )
    )


def examples_argument(split):
    """--max-examples for a job reading `split` splits (nothing: every example); the sample is
    drawn with the config's seed (fits and evaluations take it as --seed)."""
    count = CFG.max_examples[split]
    return f"--max-examples {count}" if count else ""


def model_how(wildcards):
    """The model's how-settings (batch size, GPUs): passed as resources, never rerunning a job."""
    return how(CFG.models[wildcards.model])


def model_settings_read(wildcards):
    """The model's dtype and max_length (where texts are cut) for methods that run it; nothing
    for methods that read the cache, so that a change of either does not rerun them."""
    method = interventions.registry()[wildcards.intervention]
    settings = CFG.models[wildcards.model]
    return (
        {"dtype": settings["dtype"], "max_length": settings["max_length"]}
        if method.reads.model
        else {}
    )


# Params that are functions of the wildcards alone: Snakemake records those and reruns a job
# when they change (a param computed from input or output is not tracked).
INTERVENTION_PARAMS = {
    "hyperparameters": lambda wildcards: json.dumps(
        CFG.hyperparameters[wildcards.model][wildcards.intervention]
    ),
    "settings": lambda wildcards: json.dumps(model_settings_read(wildcards)),
    "seed": CFG.seed,
}
INTERVENTION_ARGS = (
    "--model-dir {input.model} "
    "--hyperparameters '{params.hyperparameters}' --settings '{params.settings}' "
    "--seed {params.seed} {params.examples} --threads {threads} "
    "--batch-size {resources.batch_size} --gpus {resources.gpu}"
)


def intervention_code(command):
    """The generic job's files and the method's own module (with what it imports)."""

    def files(wildcards):
        method = interventions.registry()[wildcards.intervention]
        return code(command, method.__module__)

    return files


def runs_model(job, wildcards):
    """Whether the method's `job` ("fit" or "evaluate") loads the model."""
    return interventions.registry()[wildcards.intervention].reads.runs_model(job)


def intervention_gpus(job):
    """GPUs of the model for a `job` that runs it; none for one reading the cache only."""

    def gpus(wildcards):
        return model_how(wildcards)["gpus"] if runs_model(job, wildcards) else 0

    return gpus


def method_group(job):
    """A fit's or evaluation's group where jobs are submitted to a cluster (or a dry run of one,
    which lists them): jobs that read only the cache take seconds and travel in large groups,
    those that run the model take minutes to hours and travel in small ones (group-components,
    SLURM profile). A local run keeps each job on its own: Snakemake's local executor would
    start a group's jobs all at once, as it does pipes."""

    def group(wildcards):
        submitted = not workflow.local_exec or (
            workflow.dryrun and workflow.nodes is not None
        )
        if not submitted:
            return None
        return "model_methods" if runs_model(job, wildcards) else "cache_methods"

    return group


def built(path, ready=None):
    """`path`, an input of the job; while it is still to be built, the FileNotFoundError naming
    it by which Snakemake defers a resource until the job's inputs exist."""
    if not (Path(path).exists() if ready is None else ready):
        raise FileNotFoundError(2, "not built yet", path)
    return path


def model_manifest(folder):
    """The manifest of a materialised model (one written before manifests counted parameters
    is about to be rebuilt: its materialise job's code changed since)."""
    path = Path(folder, MANIFEST)
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    built(folder, "parameters" in manifest.get("architecture", {}))
    return manifest


@functools.cache
def texts_of(split, max_examples, content):
    return count_texts(split, max_examples, CFG.seed)


def split_texts(split, max_examples):
    """count_texts of a split, read once for each content (its mtime and size): Snakemake
    evaluates a ready job's resources again on every scheduling pass."""
    status = os.stat(built(split))
    return texts_of(split, max_examples, (status.st_mtime_ns, status.st_size))


def extraction_work(wildcards, input):
    """The texts of the split, once per template."""
    return footprint.Work(
        texts=split_texts(input.split, CFG.max_examples[wildcards.split])
        * len(TEMPLATES),
        batch=model_how(wildcards)["batch_size"],
        max_length=CFG.models[wildcards.model]["max_length"],
    )


def method_of(wildcards):
    """The job's method, its hyper-parameters, and the tokens of a text it runs."""
    method = interventions.registry()[wildcards.intervention]
    hyperparameters = CFG.hyperparameters[wildcards.model][wildcards.intervention]
    max_length = CFG.models[wildcards.model]["max_length"]
    return method, hyperparameters, method.text_length(hyperparameters, max_length)


def fit_work(wildcards, input):
    """What a fit trains on (nothing for a method training no weights); None for a fit that
    does not run the model."""
    method, hyperparameters, length = method_of(wildcards)
    if not method.reads.runs_model("fit"):
        return None
    texts, batch = method.fit_texts(hyperparameters)
    return footprint.Work(texts, batch, length, backward=texts > 0)


def evaluation_work(wildcards, input):
    """Every text of the test splits, in the model's batches; None for a cache-only method."""
    method, hyperparameters, length = method_of(wildcards)
    if not method.reads.model:
        return None
    count = CFG.max_examples["test"]
    texts = sum(split_texts(split, count) for split in input.splits)
    return footprint.Work(texts, model_how(wildcards)["batch_size"], length)


def job_requests(work_of):
    """mem_mb and runtime of a job (genies.models.footprint), multiplied by the attempt: from the
    model's size and the job's work, or from the size of the cache it reads (work None).
    """

    def model_job(wildcards, input):
        """footprint's arguments for a job that runs the model; None for one reading the cache."""
        work = work_of(wildcards, input)
        if work is None:
            return None
        dtype = CFG.models[wildcards.model]["dtype"]
        return model_manifest(input.model), work, dtype, model_how(wildcards)["gpus"]

    def mem_mb(wildcards, input, attempt):
        job = model_job(wildcards, input)
        if job is None:
            size = sum(Path(path).stat().st_size for path in input.activations)
            return footprint.cache_memory_mb(size) * attempt
        return footprint.memory_mb(*job) * attempt

    def runtime(wildcards, input, threads, attempt):
        job = model_job(wildcards, input)
        if job is None:
            return footprint.CACHE_RUNTIME_MIN * attempt
        return footprint.runtime_min(*job, threads) * attempt

    return {"mem_mb": mem_mb, "runtime": runtime}
