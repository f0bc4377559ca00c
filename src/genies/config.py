"""Validation of the pipeline config: schema (with defaults), then names against the registries.

Everything fails here, before any job starts, with the config key, the bad value and the
allowed values in one line.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from genies.data.shifts import Shift, load_shifts
from genies.data.vendored import vendored_distributions
from genies.errors import GeniesError
from genies.models.catalog import resolve_model

SCHEMA_PATH = Path("workflow/schemas/config.schema.yaml")


@dataclass(frozen=True)
class PipelineConfig:
    raw_dir: str
    distributions: list[str]
    shifts: list[Shift]
    models: dict[str, dict]
    interventions: list[str]
    max_examples: int | None
    activations: dict
    bootstrap: dict
    seed: int


def with_defaults(validator_class):
    """A validator that also fills in each property's `default` (jsonschema's documented recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def key_path(error: jsonschema.ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def schema_error_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and error.path == error.relative_path:
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"{error.message}; allowed keys: {allowed}"
    return error.message


def check_schema(config: dict, schema_path: str | os.PathLike) -> None:
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    validator = with_defaults(jsonschema.Draft202012Validator)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise GeniesError(f"config: {key_path(error)}: {schema_error_message(error)}")


def resolve_distributions(value, known: list[str]) -> list[str]:
    if value == "all":
        return list(known)
    for name in value:
        if name not in known:
            raise GeniesError(
                f"config: distributions: unknown distribution {name!r}; known: {', '.join(known)}"
            )
    return list(value)


def resolve_shifts(value, raw_dir: str, known: list[str]) -> list[Shift]:
    registry = load_shifts(raw_dir)
    try:
        shifts = (
            registry.select(value)
            if isinstance(value, str)
            else [registry.lookup(name) for name in value]
        )
    except GeniesError as exc:
        raise GeniesError(f"config: shifts: {exc}") from None
    for shift in shifts:
        for name in (shift.source, shift.target, shift.target_reference):
            if name not in known:
                raise GeniesError(f"config: shifts: {shift.name} uses {name!r}, not in {raw_dir}")
    return shifts


def validate_config(config: dict, schema_path: str | os.PathLike = SCHEMA_PATH) -> PipelineConfig:
    """Check `config` (filled in place with the schema defaults) and resolve every name in it."""
    check_schema(config, schema_path)
    raw_dir = config["raw_dir"]
    known = vendored_distributions(raw_dir)
    return PipelineConfig(
        raw_dir=raw_dir,
        distributions=resolve_distributions(config["distributions"], known),
        shifts=resolve_shifts(config["shifts"], raw_dir, known),
        models={
            name: resolve_model(name, config["model_settings"].get(name, {}))
            for name in config["models"]
        },
        interventions=list(config["interventions"]),
        max_examples=config["max_examples"],
        activations=dict(config["activations"]),
        bootstrap=dict(config["bootstrap"]),
        seed=config["seed"],
    )


def load_config(path: str | os.PathLike, schema_path=SCHEMA_PATH) -> PipelineConfig:
    path = Path(path)
    if not path.is_file():
        raise GeniesError(f"{path}: config file not found")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise GeniesError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise GeniesError(f"{path}: expected a mapping of config keys")
    return validate_config(config, schema_path)
