"""The intervention commands: fit a method on a training split, and score test splits with it.
Every method runs through these two; the method's own module is loaded by name."""

import sys

from genies import job_clock
from genies.cli.arguments import how_arguments, json_object, positive_int
from genies.cli.groups import CommandGroup
from genies.errors import GeniesError

HEADING = "interventions: the methods' jobs"


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


def add_commands(group: CommandGroup) -> None:
    for name, func, help in (
        ("fit", cmd_fit, "fit an intervention on one pair per example of a training split"),
        ("evaluate", cmd_evaluate, "score every pair of some test splits with an intervention"),
    ):
        sub = group.command(name, func, help)
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
