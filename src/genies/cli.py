"""The `genies` command line. Errors print one line naming the culprit and exit with status 1."""

import argparse
import errno
import json
import sys
import traceback

from genies import job_clock
from genies.errors import GeniesError
from genies.models.catalog import HOW

RAW_DIR = "data/raw"


def cmd_validate(args) -> None:
    from genies.data.validate import distribution_dirs, validate_distribution_dir

    for folder in distribution_dirs(args.path):
        counts = validate_distribution_dir(folder)
        print(f"ok {folder}: " + ", ".join(f"{n} {split}" for split, n in counts.items()))


def cmd_shifts(args) -> None:
    from genies.data.shifts import load_shifts

    shifts = load_shifts(args.raw_dir).select(args.set)
    columns = ("source", "target", "target_reference", "label", "category")
    if args.format == "csv":
        print(",".join(columns))
        for shift in shifts:
            print(",".join(getattr(shift, c) for c in columns))
        return
    for number, shift in enumerate(shifts, start=1):
        reference = (
            "" if shift.target_reference == shift.target else f" (ref {shift.target_reference})"
        )
        print(f"{number:>2}  {shift.name}{reference}  [{shift.label}/{shift.category}]")


def cmd_split(args) -> None:
    from genies.data.splits import build_split

    table = build_split(args.raw_dir, args.distribution, args.split, args.out)
    print(f"wrote {args.out}: {table.num_rows} examples", file=sys.stderr)


def cmd_audit(args) -> None:
    from genies.data.audit import audit, write_audit

    table = audit(args.raw_dir, args.splits_dir, args.distributions)
    write_audit(table, args.csv, args.md)
    print(f"wrote {args.csv} and {args.md}: {len(table)} distributions", file=sys.stderr)


def cmd_paper_index(args) -> None:
    from genies.paper.published import index_evaluations, write_index

    table = index_evaluations(args.raw_dir)
    write_index(table, args.out)
    print(f"wrote {args.out}: {table.num_rows} evaluation files", file=sys.stderr)


def cmd_paper_tables(args) -> None:
    from genies.data.shifts import load_shifts
    from genies.files.parquet import write_frame
    from genies.files.tables import write_csv
    from genies.paper.published import read_index
    from genies.paper.tables import recompute, ttc_traceability, write_tables

    index, registry = read_index(args.index), load_shifts(args.raw_dir)
    tidy, notes = recompute(
        index, registry, args.raw_dir, args.splits_dir, args.seed, args.resamples, args.level
    )
    write_tables(tidy, notes, registry, args.out_dir)
    write_frame(tidy, args.tidy)
    write_csv(notes, args.notes)
    write_csv(ttc_traceability(index, args.raw_dir), args.ttc)
    tables = tidy.groupby(["model", "intervention"]).ngroups
    print(f"wrote {args.out_dir}: {tables} tables", file=sys.stderr)


def cmd_paper_summary(args) -> None:

    from genies.evaluation.genies_table import read_tidy
    from genies.evaluation.summary import genies_summary, write_summary

    summary = genies_summary(read_tidy([args.tidy]), args.seed, args.resamples, args.level)
    write_summary(summary, args.level, args.csv, args.md, args.json)


def cmd_paper_contrasts(args) -> None:

    from genies.evaluation.contrasts import write_contrasts
    from genies.evaluation.genies_table import read_tidy
    from genies.figures.common import save_png
    from genies.figures.contrasts import contrast_forest
    from genies.paper.published import read_index
    from genies.paper.tables import Context, paper_contrasts

    ctx = Context(
        read_index(args.index), args.raw_dir, args.splits_dir, args.seed, args.resamples, args.level
    )
    shifts, summary, left_out = paper_contrasts(read_tidy([args.tidy]), ctx)
    bootstrap = {"seed": args.seed, "resamples": args.resamples, "level": args.level}
    figure = contrast_forest(summary)  # drawn before anything is written
    write_contrasts(summary, shifts, left_out, bootstrap, args.csv, args.md, args.shifts)
    save_png(figure, args.figure)


def cmd_paper_figures(args) -> None:
    import pandas as pd

    from genies.evaluation.genies_table import read_tidy
    from genies.figures import correlation_table, make_paper_figures, write_correlations
    from genies.paper.published import read_index

    tidy, summary = read_tidy([args.tidy]), pd.read_csv(args.summary)
    written = make_paper_figures(tidy, summary, read_index(args.index), args.out_dir, args.level)
    write_correlations(correlation_table(tidy), args.correlations)
    print(f"wrote {len(written)} figures into {args.out_dir}", file=sys.stderr)


def cmd_paper_mixing(args) -> None:
    from genies.figures.common import save_png
    from genies.figures.mixing import mixing_figure
    from genies.paper.mixing import mixing_table, write_mixing_table
    from genies.paper.published import read_index

    table = mixing_table(
        read_index(args.index), args.raw_dir, args.splits_dir, args.seed, args.resamples, args.level
    )
    # drawn before anything is written
    figure = mixing_figure(table, args.level, "Published data-mixing runs")
    write_mixing_table(table, args.csv, args.md)
    save_png(figure, args.figure)
    print(f"wrote {args.csv}, {args.md} and {args.figure}: {len(table)} points", file=sys.stderr)


def cmd_materialise(args) -> None:
    from genies.models.loading import materialise_model

    settings = required_keys("--settings", args.settings, ["loader", "dtype"])
    manifest = materialise_model(args.name, settings, args.out)
    print(f"wrote {args.out}: weights sha256 {manifest['weights_sha256'][:12]}", file=sys.stderr)


def cmd_extract(args) -> None:
    import torch

    from genies.models.activations import (
        ExtractionSpec,
        extract_split_templates,
        resolve_layers,
    )
    from genies.models.devices import claim_devices, compute_dtype
    from genies.models.loading import context_length, load_model

    job_clock.ready()
    torch.set_num_threads(args.threads)
    keys = ["templates", "storage_dtype", "padding_side", "dtype", "max_length"]
    request = required_keys("--spec", args.spec, keys) | {"batch_size": args.batch_size}
    if len(args.out) != len(request["templates"]):
        raise GeniesError(f"{len(request['templates'])} templates but {len(args.out)} --out files")
    with claim_devices(args.gpus) as devices:
        # one model load for all templates of the split
        dtype = compute_dtype(request["dtype"], devices[0])
        loaded = load_model(args.model_dir, devices, dtype)
        context_length(loaded, request["max_length"])
        layers = loaded.model.config.num_hidden_layers
        specs = [
            ExtractionSpec(
                template=template,
                residual_layers=resolve_layers(stored["residual"], layers + 1, "residual"),
                head_layers=resolve_layers(stored["heads"], layers, "head"),
                storage_dtype=request["storage_dtype"],
                batch_size=request["batch_size"],
                max_length=request["max_length"],
                padding_side=request["padding_side"],
            )
            for template, stored in request["templates"].items()
        ]
        written = extract_split_templates(
            loaded, args.split, specs, args.out, args.max_examples, args.seed
        )
        for (metadata, run), out in zip(written, args.out, strict=True):
            print(
                f"wrote {out}: {metadata['rows']} rows, {metadata['tokens']} tokens in "
                f"{run['seconds']:.1f} s on {run['device']}, "
                f"padding {run['padding_fraction']:.1%}, {metadata['truncated_rows']} "
                f"texts cut to max_length {metadata['max_length']} (their start lost)",
                file=sys.stderr,
            )
            print(f"run record: {json.dumps(run, sort_keys=True)}", file=sys.stderr)


def activation_paths(pairs: list[str]) -> dict[str, str]:
    """TEMPLATE=PATH arguments as a mapping."""
    paths = {}
    for pair in pairs:
        template, sep, path = pair.partition("=")
        if not sep or not template or not path:
            raise GeniesError(f"--activations: expected TEMPLATE=PATH, got {pair!r}")
        paths[template] = path
    return paths


def scored_inputs(inputs: dict) -> dict[str, tuple[str, dict[str, str]]]:
    """--inputs as evaluate takes them: distribution -> (test split, cache files by template)."""
    scored = {}
    for distribution, given in inputs.items():
        if not isinstance(given, dict) or not isinstance(given.get("split"), str):
            raise GeniesError(f"--inputs: {distribution!r} needs a split path")
        scored[distribution] = (given["split"], dict(given.get("activations", {})))
    if not scored:
        raise GeniesError("--inputs: no distribution to score")
    return scored


def mix_argument(mix: dict | None) -> dict | None:
    """--mix as fit takes it: the split mixed in, its cache files, the fraction drawn."""
    if mix is None:
        return None
    fraction = mix.get("fraction")
    if not isinstance(mix.get("split"), str) or not isinstance(fraction, float):
        raise GeniesError(f"--mix: expected a split path and a fraction, got {mix}")
    return {"split": mix["split"], "activations": dict(mix.get("activations", {}))} | {
        "fraction": fraction
    }


def intervention_job_args(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    return {
        "name": args.intervention,
        "hyperparameters": args.hyperparameters,
        "seed": args.seed,
        "model_dir": args.model_dir,
        # what to compute (dtype) from the params, how (batch size, GPUs) from the resources
        "settings": args.settings | {"batch_size": args.batch_size, "gpus": args.gpus},
        "out": args.out,
        "max_examples": args.max_examples,
    }


def interventions_ready(name: str, job: str) -> None:
    """Every method's module imported, and the model loader where the method's `job` runs the
    model: the rest of the job is its work."""
    from genies import interventions

    if interventions.get(name).reads.runs_model(job):
        import genies.models.loading  # noqa: F401 (transformers)
    job_clock.ready()


def cmd_fit(args) -> None:
    from genies.interventions.jobs import fit

    interventions_ready(args.intervention, "fit")
    split = {"split_path": args.split, "activation_paths": activation_paths(args.activations)}
    info = fit(**intervention_job_args(args), **split, mix=mix_argument(args.mix))
    print(f"wrote {args.out}: {args.intervention} fitted on {info['pairs']} pairs", file=sys.stderr)


def cmd_evaluate(args) -> None:
    from genies.interventions.jobs import evaluate

    interventions_ready(args.intervention, "evaluate")
    inputs = scored_inputs(args.inputs)
    table = evaluate(state_path=args.state, inputs=inputs, **intervention_job_args(args))
    print(
        f"wrote {args.out}: {len(table)} pairs of {len(inputs)} distributions scored",
        file=sys.stderr,
    )


def cmd_shift_metrics(args) -> None:
    from genies.evaluation.model_jobs import shift_metrics_job

    job_clock.ready()
    bootstrap = {"seed": args.seed, "resamples": args.resamples, "level": args.level}
    tidy = shift_metrics_job(args.model, args.interventions, args.shifts, args.raw_dir, bootstrap)
    print(f"wrote the shift metrics of {args.model}: {len(tidy)} rows", file=sys.stderr)


def cmd_mixing_table(args) -> None:
    from genies.evaluation.mixing_table import mixing_table_job

    job_clock.ready()
    bootstrap = {"seed": args.seed, "resamples": args.resamples, "level": args.level}
    table = mixing_table_job(args.models, args.mixing, args.shifts, args.raw_dir, bootstrap)
    print(f"wrote the mixing table: {len(table)} rows", file=sys.stderr)


def cmd_genies_table(args) -> None:
    from genies.evaluation.model_jobs import genies_table_job

    job_clock.ready()
    table = genies_table_job(args.tidy, args.config, args.sidecars, args.evaluations)
    print(f"wrote the GENIES table: {len(table)} rows", file=sys.stderr)


def cmd_genies_contrasts(args) -> None:
    from genies.evaluation.model_jobs import contrasts_job

    job_clock.ready()
    bootstrap = {"seed": args.seed, "resamples": args.resamples, "level": args.level}
    contrasts_job(args.tidy, args.contrasts, bootstrap)


def cmd_claims(args) -> None:
    from genies.evaluation.claims import claims_job

    bootstrap = {"seed": args.seed, "resamples": args.resamples, "level": args.level}
    claims_job(args.tidy, args.contrasts, bootstrap, args.csv, args.md, args.title)


def cmd_genies_figures(args) -> None:
    from genies.evaluation.figures_job import genies_figures_job

    job_clock.ready()
    written = genies_figures_job(
        args.tidy,
        args.states,
        args.out_dir,
        args.seed,
        args.resamples,
        args.level,
        args.mixing,
        args.contrasts,
    )
    print(f"wrote {len(written)} figures into {args.out_dir}", file=sys.stderr)


def cmd_vendor(args) -> None:
    from genies.data.vendored import vendor_upstream

    manifest = vendor_upstream(args.upstream, args.raw_dir)
    print(f"vendored {len(manifest)} files into {args.raw_dir}")


def cmd_add_distribution(args) -> None:
    from genies.data.preference_import import Columns
    from genies.data.user_data import add_distribution

    columns = Columns(
        prompt=args.prompt_column,
        chosen=args.chosen_column,
        rejected=args.rejected_column,
        responses=args.responses_column,
        scores=args.scores_column,
        ranks=args.ranks_column,
    )
    name = add_distribution(
        args.path, args.raw_dir, args.name, columns, args.test_fraction, args.seed
    )
    print(f"added distribution {name} to {args.raw_dir}")


def cmd_add_shift(args) -> None:
    from genies.data.user_data import add_shift

    add_shift(
        args.raw_dir,
        args.source,
        args.target,
        args.label,
        args.category,
        args.target_reference,
        args.genies,
    )
    print(f"added shift {args.source}->{args.target} ({args.label}/{args.category})")


def cmd_check_config(args) -> None:
    from genies.config import load_config

    config = load_config(args.config, args.schema)
    print(
        f"ok {args.config}: {len(config.distributions)} distributions, "
        f"{len(config.shifts)} shifts, "
        f"models {', '.join(config.models)}, {len(config.interventions)} interventions"
    )


def cmd_pull(args) -> None:
    from genies.dvc_stages import NOT_RUN, dtype_notes, pull

    pulled, skipped = pull()
    print(f"pulled and marked current: {', '.join(pulled) or 'nothing'}")
    for stage, why in skipped.items():
        reason = NOT_RUN if why == [NOT_RUN] else f"recorded for other inputs: {brief(why)}"
        print(f"not pulled: {stage} ({reason})")
    for note in dtype_notes() if pulled else []:
        print(note)


def brief(items: list[str], shown: int = 3) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def cmd_verify(args) -> None:
    from genies.verify import verify

    checked, damaged = verify(args.root)
    for line in damaged:
        print(line, file=sys.stderr)
    if damaged:
        raise GeniesError(
            f"{len(damaged)} of {checked} artifacts damaged: delete each and run the target again"
        )
    print(f"ok: {checked} artifacts verified")


def cmd_dvc_status(args) -> None:
    from genies.dvc_stages import NOT_RUN, STAGES, stale_records

    stale = stale_records()
    not_run = [stage for stage, why in stale.items() if why == [NOT_RUN]]
    if changed := {stage: why for stage, why in stale.items() if stage not in not_run}:
        stages = "; ".join(f"{stage}: {brief(why)}" for stage, why in changed.items())
        raise GeniesError(
            f"dvc.lock records other inputs than this checkout ({stages}): `make run` records "
            "this checkout's, and a lab sharing its artifacts commits dvc.lock and `make push`es"
        )
    current = [stage.name for stage in STAGES if stage.name not in not_run]
    never = f" ({NOT_RUN}: {', '.join(not_run)})" if not_run else ""
    print(f"ok dvc.lock: {', '.join(current)} record this checkout's code, data and config{never}")


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0, 1, 2, ...)")
    return int(text)


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text[:60]!r}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text[:60]!r}")
    return value


def required_keys(what: str, value: dict, keys: list[str]) -> dict:
    missing = [key for key in keys if key not in value]
    if missing:
        raise GeniesError(f"{what} lacks {', '.join(missing)}")
    return value


def how_arguments(sub) -> None:
    """How a model job computes (never what it writes): the workflow passes these as resources."""
    sub.add_argument(
        "--batch-size", type=positive_int, default=HOW["batch_size"], help="texts per batch"
    )
    sub.add_argument(
        "--gpus", type=count, default=HOW["gpus"], help="GPUs the model spreads over (0: the CPU)"
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="genies", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    def command(name, func, help):
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    def bootstrap_options(sub):
        """The seeded bootstrap intervals' options, as every rule passes them from the config."""
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--resamples", type=int, default=2000)
        sub.add_argument("--level", type=float, default=0.95)

    sub = command("validate", cmd_validate, "check every record of a folder in the upstream layout")
    sub.add_argument("path", help="a distribution folder, or a folder of them")

    sub = command("shifts", cmd_shifts, "list the distribution shifts of a named set")
    sub.add_argument("--set", default="genies", help="genies, all, or a category name")
    sub.add_argument("--format", choices=("table", "csv"), default="table")
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("split", cmd_split, "validate one vendored split and write it as Parquet")
    sub.add_argument("distribution")
    sub.add_argument("split", help="train or test")
    sub.add_argument("--out", required=True)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("audit", cmd_audit, "write the data audit of the given distributions")
    sub.add_argument("distributions", nargs="+")
    sub.add_argument("--splits-dir", default="data/splits")
    sub.add_argument("--csv", required=True)
    sub.add_argument("--md", required=True)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("paper-index", cmd_paper_index, "index the published evaluation files")
    sub.add_argument("--out", required=True)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("paper-tables", cmd_paper_tables, "recompute the published metric tables")
    sub.add_argument("--index", required=True, help="the Parquet index of paper-index")
    sub.add_argument("--out-dir", required=True, help="<model>/<intervention>/{GENIES,all}.csv")
    sub.add_argument(
        "--tidy", required=True, help="Parquet: one row per model x intervention x shift"
    )
    sub.add_argument("--notes", required=True, help="CSV of caveats per number")
    sub.add_argument("--ttc", required=True, help="CSV: which published TTC values are traceable")
    sub.add_argument("--splits-dir", default="data/splits")
    bootstrap_options(sub)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("paper-summary", cmd_paper_summary, "GENIES means with bootstrap intervals")
    sub.add_argument("--tidy", required=True)
    sub.add_argument("--csv", required=True)
    sub.add_argument("--md", required=True)
    sub.add_argument("--json", required=True, help="nested means, for dvc metrics")
    bootstrap_options(sub)

    sub = command(
        "paper-contrasts", cmd_paper_contrasts, "paired contrasts of the published evaluations"
    )
    sub.add_argument("--index", required=True)
    sub.add_argument("--raw-dir", required=True)
    sub.add_argument("--splits-dir", required=True, help="the targets' test splits")
    sub.add_argument("--tidy", required=True, help="paper-tables' per-shift table")
    sub.add_argument("--csv", required=True, help="one row per model and contrast")
    sub.add_argument("--md", required=True)
    sub.add_argument("--shifts", required=True, help="CSV: one row per contrast and shift")
    sub.add_argument("--figure", required=True, help="PNG: the forest plot")
    bootstrap_options(sub)

    sub = command("paper-figures", cmd_paper_figures, "draw the paper's figures")
    sub.add_argument("--tidy", required=True)
    sub.add_argument("--summary", required=True)
    sub.add_argument("--index", required=True)
    sub.add_argument("--out-dir", required=True)
    sub.add_argument("--correlations", required=True, help="CSV of every Pearson r shown")
    sub.add_argument("--level", type=float, default=0.95, help="the summary's interval level")

    sub = command("paper-mixing", cmd_paper_mixing, "tabulate and draw the data-mixing runs")
    sub.add_argument("--index", required=True, help="the Parquet index of paper-index")
    sub.add_argument("--csv", required=True)
    sub.add_argument("--md", required=True)
    sub.add_argument("--figure", required=True, help="PNG: accuracy against the mixed fraction")
    sub.add_argument("--splits-dir", default="data/splits")
    bootstrap_options(sub)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("materialise", cmd_materialise, "write a model's folder under models/")
    sub.add_argument("name")
    sub.add_argument(
        "--settings", type=json_object, required=True, help="JSON: the model's resolved settings"
    )
    sub.add_argument("--out", required=True)

    sub = command("extract", cmd_extract, "cache the last-token activations of one split")
    sub.add_argument("--model-dir", required=True)
    sub.add_argument("--split", required=True, help="a split Parquet file")
    sub.add_argument(
        "--spec",
        type=json_object,
        required=True,
        help="JSON: dtypes, lengths, and per template what to keep",
    )
    sub.add_argument(
        "--out", required=True, nargs="+", help="one .safetensors file per template, in order"
    )
    sub.add_argument("--max-examples", type=positive_int, default=None)
    sub.add_argument("--seed", type=int, default=0, help="draws the --max-examples sample")
    sub.add_argument("--threads", type=positive_int, default=1)
    how_arguments(sub)

    for name, func, help in (
        ("fit", cmd_fit, "fit an intervention on one pair per example of a training split"),
        ("evaluate", cmd_evaluate, "score every pair of some test splits with an intervention"),
    ):
        sub = command(name, func, help)
        sub.add_argument("intervention")
        sub.add_argument("--model-dir", required=True)
        if name == "fit":
            sub.add_argument("--split", required=True, help="a split Parquet file")
            sub.add_argument(
                "--activations", nargs="*", default=[], help="TEMPLATE=PATH of each cache file"
            )
            sub.add_argument(
                "--mix",
                type=json_object,
                default=None,
                help='JSON: {"split": PATH, "activations": {TEMPLATE: PATH}, "fraction": F}: '
                "a fraction of that split's examples mixed into the training pairs",
            )
        else:
            sub.add_argument(
                "--inputs",
                type=json_object,
                required=True,
                help='JSON: {distribution: {"split": PATH, "activations": {TEMPLATE: PATH}}}',
            )
        sub.add_argument(
            "--hyperparameters", type=json_object, default={}, help="JSON: resolved values"
        )
        sub.add_argument(
            "--settings", type=json_object, required=True, help="JSON: what the model computes in"
        )
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--max-examples", type=positive_int, default=None)
        sub.add_argument("--threads", type=positive_int, default=1)
        how_arguments(sub)
        sub.add_argument("--out", required=True)
    sub.add_argument("--state", default=None, help="the fitted state (trained methods only)")

    sub = command("shift-metrics", cmd_shift_metrics, "per-shift tables of one model")
    sub.add_argument("model")
    sub.add_argument("--interventions", nargs="+", required=True)
    sub.add_argument("--shifts", nargs="+", required=True, help="source->target names")
    bootstrap_options(sub)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("mixing-table", cmd_mixing_table, "the data-mixing table of the models")
    sub.add_argument("--models", nargs="+", required=True)
    sub.add_argument(
        "--mixing", type=json_object, required=True, help="JSON: fractions and interventions"
    )
    sub.add_argument("--shifts", nargs="+", required=True, help="source->target names")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--resamples", type=int, default=2000)
    sub.add_argument("--level", type=float, default=0.95)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("genies-table", cmd_genies_table, "the GENIES table of the configured models")
    sub.add_argument("--tidy", nargs="+", required=True, help="each model's shift metrics")
    sub.add_argument("--config", type=json_object, required=True, help="JSON: the validated config")
    sub.add_argument("--sidecars", nargs="*", default=[], help="the activation cache's sidecars")
    sub.add_argument(
        "--evaluations", nargs="*", default=[], help="the evaluation files (for their dtypes)"
    )

    sub = command(
        "genies-contrasts", cmd_genies_contrasts, "paired contrasts between the interventions"
    )
    sub.add_argument("--tidy", nargs="+", required=True, help="each model's shift metrics")
    sub.add_argument(
        "--contrasts", type=json.loads, required=True, help="JSON: the [A, B] pairs, A - B"
    )
    bootstrap_options(sub)

    sub = command("claims", cmd_claims, "the paper's claims re-tested on per-shift tables")
    sub.add_argument("--tidy", nargs="+", required=True, help="per-shift tables, models in order")
    sub.add_argument("--contrasts", required=True, help="the paired contrasts' summary CSV")
    sub.add_argument("--csv", required=True)
    sub.add_argument("--md", required=True)
    sub.add_argument("--title", required=True, help="the Markdown's heading")
    bootstrap_options(sub)

    sub = command("genies-figures", cmd_genies_figures, "the figures of the configured models")
    sub.add_argument("--tidy", nargs="+", required=True, help="each model's shift metrics")
    sub.add_argument("--contrasts", required=True, help="genies-contrasts' summary CSV")
    sub.add_argument("--states", nargs="*", default=[], help="the fitted states (their losses)")
    sub.add_argument(
        "--mixing",
        nargs=2,
        default=(),
        metavar=("TABLE", "MEANS"),
        help="the mixing table and its means, if mixing runs exist",
    )
    sub.add_argument("--out-dir", required=True)
    bootstrap_options(sub)

    sub = command("vendor", cmd_vendor, "copy the upstream data and shift files into data/raw")
    sub.add_argument("upstream", help="the genies-upstream folder")
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("add-distribution", cmd_add_distribution, "vendor a distribution of your own")
    sub.add_argument(
        "path",
        help="a folder in the upstream layout (train.json, test.json); a folder with train.* and "
        "test.* (JSON Lines, JSON, CSV, Parquet) or saved by save_to_disk; or one such file",
    )
    sub.add_argument("--name", default=None, help="its name (default: the folder's or file's)")
    sub.add_argument("--test-fraction", type=float, default=None, help="for one split only")
    sub.add_argument("--seed", type=int, default=0, help="draws the test split")
    for column in ("prompt", "chosen", "rejected", "responses", "scores", "ranks"):
        sub.add_argument(f"--{column}-column", default=None, help="default: detected")
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("add-shift", cmd_add_shift, "register a source -> target shift of your own")
    sub.add_argument("source")
    sub.add_argument("target")
    sub.add_argument("--label", required=True, help="extreme or probing")
    sub.add_argument("--category", required=True, help="its category file, e.g. skill")
    sub.add_argument("--target-reference", default=None, help="default: the target")
    sub.add_argument("--genies", action="store_true", help="also add it to the GENIES set")
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("check-config", cmd_check_config, "validate a config file against the schema")
    sub.add_argument("config")
    sub.add_argument("--schema", default="workflow/schemas/config.schema.yaml")

    command("pull", cmd_pull, "dvc pull what dvc.lock records for this checkout, mark it current")
    command("dvc-status", cmd_dvc_status, "check that dvc.lock records this checkout")
    sub = command("verify", cmd_verify, "check every artifact jobs read, as they read it")
    sub.add_argument("--root", default=".", help="the workflow's folder")
    return top


OS_ERROR_FIXES = {
    # the errno does not say whether a read or a write was refused
    errno.EACCES: "give this user access to it (read for an input, write for an output)",
    errno.EPERM: "give this user access to it (read for an input, write for an output)",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "free some disk space, then run the target again",
    errno.EDQUOT: "free some of your disk quota, then run the target again",
}


def os_error_line(exc: OSError) -> str:
    """One line: the file, what the system said, and the fix where there is an obvious one."""
    named = exc.filename2 or exc.filename  # a rename's target, not its temporary source
    where = f"{named}: " if named else ""
    fix = OS_ERROR_FIXES.get(exc.errno)
    return f"{where}{exc.strerror or exc}" + (f"; {fix}" if fix else "")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    job_clock.ready()  # a command that imports more says so again
    try:
        args.func(args)
    except GeniesError as exc:
        print(f"genies: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # I/O, permissions, a full disk: the traceback for a job's log only
        if not sys.stderr.isatty():
            traceback.print_exc()
        print(f"genies: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    if not sys.stderr.isatty():  # a job's log, not a console
        print(job_clock.summary(args.command), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
