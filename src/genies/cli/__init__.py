"""The `genies` command line: the workflow's jobs and the commands around them,
in groups. Errors print one line naming the culprit and exit with status 1."""

import argparse
import sys
import traceback

from genies import job_clock
from genies.cli import data, evaluation, interventions, models, paper, workspace
from genies.cli.groups import CommandGroup
from genies.cli.os_errors import os_error_line
from genies.errors import GeniesError

# each group module: its HEADING, add_commands(group), and its commands' functions `cmd_<name>`
# (where genies.code_inputs finds them)
GROUPS = (data, models, interventions, evaluation, paper, workspace)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="genies", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(
        dest="command",
        metavar="command",
        required=True,
        help="one of those below; `genies command -h` gives its arguments",
    )
    listings = []
    for module in GROUPS:
        group = CommandGroup(commands, module.HEADING)
        module.add_commands(group)
        listings.append(group.listing())
    top.epilog = "\n\n".join(listings)
    return top


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
