"""The model commands: write a model's folder, and cache a split's activations."""

import json
import sys

from genies import job_clock
from genies.cli.arguments import how_arguments, json_object, positive_int
from genies.cli.groups import CommandGroup
from genies.errors import GeniesError

HEADING = "models: the models and their activation cache"


def required_keys(what: str, value: dict, keys: list[str]) -> dict:
    missing = [key for key in keys if key not in value]
    if missing:
        raise GeniesError(f"{what} lacks {', '.join(missing)}")
    return value


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


def add_commands(group: CommandGroup) -> None:
    sub = group.command("materialise", cmd_materialise, "write a model's folder under models/")
    sub.add_argument("name")
    sub.add_argument(
        "--settings", type=json_object, required=True, help="JSON: the model's resolved settings"
    )
    sub.add_argument("--out", required=True)

    sub = group.command("extract", cmd_extract, "cache the last-token activations of one split")
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
