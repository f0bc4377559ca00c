"""The paper commands: the published evaluation files indexed, their metric tables recomputed,
summarised, contrasted and drawn, and the data-mixing runs tabulated."""

import sys

from genies.cli.arguments import RAW_DIR, bootstrap_options
from genies.cli.groups import CommandGroup

HEADING = "paper: the published evaluations re-analysed"


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


def add_commands(group: CommandGroup) -> None:
    sub = group.command("paper-index", cmd_paper_index, "index the published evaluation files")
    sub.add_argument("--out", required=True)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = group.command("paper-tables", cmd_paper_tables, "recompute the published metric tables")
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

    sub = group.command("paper-summary", cmd_paper_summary, "GENIES means with bootstrap intervals")
    sub.add_argument("--tidy", required=True)
    sub.add_argument("--csv", required=True)
    sub.add_argument("--md", required=True)
    sub.add_argument("--json", required=True, help="nested means, for dvc metrics")
    bootstrap_options(sub)

    sub = group.command(
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

    sub = group.command("paper-figures", cmd_paper_figures, "draw the paper's figures")
    sub.add_argument("--tidy", required=True)
    sub.add_argument("--summary", required=True)
    sub.add_argument("--index", required=True)
    sub.add_argument("--out-dir", required=True)
    sub.add_argument("--correlations", required=True, help="CSV of every Pearson r shown")
    sub.add_argument("--level", type=float, default=0.95, help="the summary's interval level")

    sub = group.command("paper-mixing", cmd_paper_mixing, "tabulate and draw the data-mixing runs")
    sub.add_argument("--index", required=True, help="the Parquet index of paper-index")
    sub.add_argument("--csv", required=True)
    sub.add_argument("--md", required=True)
    sub.add_argument("--figure", required=True, help="PNG: accuracy against the mixed fraction")
    sub.add_argument("--splits-dir", default="data/splits")
    bootstrap_options(sub)
    sub.add_argument("--raw-dir", default=RAW_DIR)
