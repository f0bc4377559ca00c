"""The data commands: vendor the upstream data or a distribution or shift of one's own, check it,
list the shifts, and write each split as Parquet and the data audit."""

import sys

from genies.cli.arguments import RAW_DIR
from genies.cli.groups import CommandGroup

HEADING = "data: the vendored preference data and its shifts"


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


def add_commands(group: CommandGroup) -> None:
    sub = group.command(
        "vendor", cmd_vendor, "copy the upstream data and shift files into data/raw"
    )
    sub.add_argument("upstream", help="the genies-upstream folder")
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = group.command(
        "add-distribution", cmd_add_distribution, "vendor a distribution of your own"
    )
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

    sub = group.command("add-shift", cmd_add_shift, "register a source -> target shift of your own")
    sub.add_argument("source")
    sub.add_argument("target")
    sub.add_argument("--label", required=True, help="extreme or probing")
    sub.add_argument("--category", required=True, help="its category file, e.g. skill")
    sub.add_argument("--target-reference", default=None, help="default: the target")
    sub.add_argument("--genies", action="store_true", help="also add it to the GENIES set")
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = group.command(
        "validate", cmd_validate, "check every record of a folder in the upstream layout"
    )
    sub.add_argument("path", help="a distribution folder, or a folder of them")

    sub = group.command("shifts", cmd_shifts, "list the distribution shifts of a named set")
    sub.add_argument("--set", default="genies", help="genies, all, or a category name")
    sub.add_argument("--format", choices=("table", "csv"), default="table")
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = group.command("split", cmd_split, "validate one vendored split and write it as Parquet")
    sub.add_argument("distribution")
    sub.add_argument("split", help="train or test")
    sub.add_argument("--out", required=True)
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = group.command("audit", cmd_audit, "write the data audit of the given distributions")
    sub.add_argument("distributions", nargs="+")
    sub.add_argument("--splits-dir", default="data/splits")
    sub.add_argument("--csv", required=True)
    sub.add_argument("--md", required=True)
    sub.add_argument("--raw-dir", default=RAW_DIR)
