"""The `genies` command line. Errors print one line naming the culprit and exit with status 1."""

import argparse
import sys

from genies.errors import GeniesError

RAW_DIR = "data/raw"


def cmd_validate(args) -> None:
    from genies.validate import distribution_dirs, validate_distribution_dir

    for folder in distribution_dirs(args.path):
        counts = validate_distribution_dir(folder)
        print(f"ok {folder}: " + ", ".join(f"{n} {split}" for split, n in counts.items()))


def cmd_shifts(args) -> None:
    from genies.shifts import load_shifts

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
    from genies.splits import build_split

    table = build_split(args.raw_dir, args.distribution, args.split, args.out)
    print(f"wrote {args.out}: {table.num_rows} examples", file=sys.stderr)


def cmd_audit(args) -> None:
    from genies.audit import audit, write_audit

    table = audit(args.raw_dir, args.splits_dir, args.distributions)
    write_audit(table, args.csv, args.md)
    print(f"wrote {args.csv} and {args.md}: {len(table)} distributions", file=sys.stderr)


def cmd_vendor(args) -> None:
    from genies.vendored import vendor_upstream

    manifest = vendor_upstream(args.upstream, args.raw_dir)
    print(f"vendored {len(manifest)} files into {args.raw_dir}")


def cmd_check_config(args) -> None:
    from genies.config import load_config

    config = load_config(args.config, args.schema)
    print(
        f"ok {args.config}: {len(config.distributions)} distributions, "
        f"{len(config.shifts)} shifts, "
        f"models {', '.join(config.models)}, {len(config.interventions)} interventions"
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="genies", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    def command(name, func, help):
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(func=func)
        return sub

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

    sub = command("vendor", cmd_vendor, "copy the upstream data and shift files into data/raw")
    sub.add_argument("upstream", help="the genies-upstream folder")
    sub.add_argument("--raw-dir", default=RAW_DIR)

    sub = command("check-config", cmd_check_config, "validate a config file against the schema")
    sub.add_argument("config")
    sub.add_argument("--schema", default="workflow/schemas/config.schema.yaml")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except GeniesError as exc:
        print(f"genies: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
