"""The evaluation commands: from the configured models' evaluation files, their per-shift
metrics, the GENIES and data-mixing tables, the paired contrasts, the claims and the figures."""

import json
import sys

from genies import job_clock
from genies.cli.arguments import RAW_DIR, bootstrap_options, json_object
from genies.cli.groups import CommandGroup

HEADING = "evaluation: the configured models' results"


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


def add_commands(group: CommandGroup) -> None:
    sub = group.command("shift-metrics", cmd_shift_metrics, "per-shift tables of one model")
    sub.add_argument("model")
    sub.add_argument("--interventions", nargs="+", required=True)
    sub.add_argument("--shifts", nargs="+", required=True, help="source->target names")
    bootstrap_options(sub)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = group.command("mixing-table", cmd_mixing_table, "the data-mixing table of the models")
    sub.add_argument("--models", nargs="+", required=True)
    sub.add_argument(
        "--mixing", type=json_object, required=True, help="JSON: fractions and interventions"
    )
    sub.add_argument("--shifts", nargs="+", required=True, help="source->target names")
    bootstrap_options(sub)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = group.command(
        "genies-table", cmd_genies_table, "the GENIES table of the configured models"
    )
    sub.add_argument("--tidy", nargs="+", required=True, help="each model's shift metrics")
    sub.add_argument("--config", type=json_object, required=True, help="JSON: the validated config")
    sub.add_argument("--sidecars", nargs="*", default=[], help="the activation cache's sidecars")
    sub.add_argument(
        "--evaluations", nargs="*", default=[], help="the evaluation files (for their dtypes)"
    )

    sub = group.command(
        "genies-contrasts", cmd_genies_contrasts, "paired contrasts between the interventions"
    )
    sub.add_argument("--tidy", nargs="+", required=True, help="each model's shift metrics")
    sub.add_argument(
        "--contrasts", type=json.loads, required=True, help="JSON: the [A, B] pairs, A - B"
    )
    bootstrap_options(sub)

    sub = group.command("claims", cmd_claims, "the paper's claims re-tested on per-shift tables")
    sub.add_argument("--tidy", nargs="+", required=True, help="per-shift tables, models in order")
    sub.add_argument("--contrasts", required=True, help="the paired contrasts' summary CSV")
    sub.add_argument("--csv", required=True)
    sub.add_argument("--md", required=True)
    sub.add_argument("--title", required=True, help="the Markdown's heading")
    bootstrap_options(sub)

    sub = group.command(
        "genies-figures", cmd_genies_figures, "the figures of the configured models"
    )
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
