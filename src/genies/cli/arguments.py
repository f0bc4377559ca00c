"""What several commands' arguments share: value types, the raw data's folder, and the option
sets that the workflow passes alike to every command of a kind."""

import argparse
import json

from genies.models.catalog import HOW

RAW_DIR = "data/raw"


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


def bootstrap_options(sub) -> None:
    """The seeded bootstrap intervals' options, as every rule passes them from the config."""
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--resamples", type=int, default=2000)
    sub.add_argument("--level", type=float, default=0.95)


def how_arguments(sub) -> None:
    """How a model job computes (never what it writes): the workflow passes these as resources."""
    sub.add_argument(
        "--batch-size", type=positive_int, default=HOW["batch_size"], help="texts per batch"
    )
    sub.add_argument(
        "--gpus", type=count, default=HOW["gpus"], help="GPUs the model spreads over (0: the CPU)"
    )
