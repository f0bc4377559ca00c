"""The workspace commands: check the config, and keep dvc.lock, the DVC remote and the artifacts
of this checkout in step."""

import sys

from genies.cli.groups import CommandGroup
from genies.errors import GeniesError

HEADING = "workspace: the config, dvc.lock and the artifacts of this checkout"


def brief(items: list[str], shown: int = 3) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


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


def add_commands(group: CommandGroup) -> None:
    sub = group.command(
        "check-config", cmd_check_config, "validate a config file against the schema"
    )
    sub.add_argument("config")
    sub.add_argument("--schema", default="workflow/schemas/config.schema.yaml")

    group.command(
        "pull", cmd_pull, "dvc pull what dvc.lock records for this checkout, mark it current"
    )
    group.command("dvc-status", cmd_dvc_status, "check that dvc.lock records this checkout")
    sub = group.command("verify", cmd_verify, "check every artifact jobs read, as they read it")
    sub.add_argument("--root", default=".", help="the workflow's folder")
