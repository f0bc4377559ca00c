"""Validation of the pipeline config: schema (with defaults), then names against the registries.

Everything fails here, before any job starts, with the config key, the bad value and the
allowed values in one line.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from genies.data.mixing import mixed_count
from genies.data.shifts import Shift, load_shifts
from genies.data.vendored import distribution_file, load_vendored_json, vendored_distributions
from genies.errors import GeniesError
from genies.models.catalog import CATALOG, resolve_model

SCHEMA_PATH = Path("workflow/schemas/config.schema.yaml")


@dataclass(frozen=True)
class PipelineConfig:
    raw_dir: str
    distributions: list[str]
    shifts: list[Shift]
    models: dict[str, dict]
    interventions: list[str]
    # model -> intervention -> resolved hyper-parameters (defaults, config, model overrides)
    hyperparameters: dict[str, dict[str, dict]]
    max_examples: dict[str, int | None]  # per split (train, test); None: every example
    activations: dict
    bootstrap: dict
    seed: int
    # fractions (ascending) and the interventions mixed; no fractions: no mixing runs
    mixing: dict
    # the paired contrasts (A, B) between interventions
    contrasts: list[tuple[str, str]]


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


def without_defaults(properties: dict) -> dict:
    return {
        name: {k: v for k, v in spec.items() if k != "default"} for name, spec in properties.items()
    }


def with_registry(schema: dict) -> dict:
    """The schema completed from the intervention registry: the allowed names (every registered
    method by default) and each method's hyper-parameters, with defaults at the top level and
    without them in a model's overrides (which may name only what they change)."""
    from genies import interventions

    methods = interventions.registry()
    properties = schema["properties"]
    properties["interventions"]["items"] = {"enum": list(methods)}
    properties["interventions"]["default"] = list(methods)

    def per_method(defaults: bool) -> dict:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                name: {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": (
                        method.hyperparameters
                        if defaults
                        else without_defaults(method.hyperparameters)
                    ),
                }
                | ({"default": {}} if defaults else {})
                for name, method in methods.items()
            },
        }

    properties["hyperparameters"] |= per_method(defaults=True)
    model_properties = properties["model_settings"]["additionalProperties"]["properties"]
    model_properties["hyperparameters"] |= per_method(defaults=False)
    return schema


def check_schema(config: dict, schema_path: str | os.PathLike) -> None:
    if not Path(schema_path).is_file():
        raise GeniesError(
            f"config schema {schema_path} not found in {Path.cwd()}: run from the repository "
            "root (paths in the config are relative to it)"
        )
    schema = with_registry(yaml.safe_load(Path(schema_path).read_text(encoding="utf-8")))
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


def check_model_settings(config: dict) -> None:
    """A settings entry must name a configured or catalogued model: a typo would be ignored."""
    known = set(config["models"]) | set(CATALOG)
    for name in config["model_settings"]:
        if name not in known:
            raise GeniesError(
                f"config: model_settings: {name!r} is neither in models "
                f"({', '.join(config['models'])}) nor in the catalogue ({', '.join(CATALOG)})"
            )


def resolve_hyperparameters(config: dict, models: dict[str, dict]) -> dict[str, dict[str, dict]]:
    return {
        model: {
            method: config["hyperparameters"][method]
            | settings.get("hyperparameters", {}).get(method, {})
            for method in config["interventions"]
        }
        for model, settings in models.items()
    }


def examples_per_split(max_examples) -> dict[str, int | None]:
    """The config's `max_examples` (a count, null, or {train, test}) as a count per split."""
    if isinstance(max_examples, dict):
        return {split: max_examples[split] for split in ("train", "test")}
    return {"train": max_examples, "test": max_examples}


def check_example_counts(max_examples, hyperparameters: dict) -> None:
    """`max_examples` must leave every configured method enough examples to fit on."""
    from genies import interventions

    counts = examples_per_split(max_examples)
    for split, count in counts.items():
        if count is None:
            continue
        key = f"max_examples.{split}" if isinstance(max_examples, dict) else "max_examples"
        for model, methods in hyperparameters.items():
            for name, values in methods.items():
                fewest = interventions.registry()[name].min_examples(values)
                if count < fewest:
                    raise GeniesError(
                        f"config: {key}: {count} is too few for {name} on {model} "
                        f"(it needs at least {fewest} examples per split with {values})"
                    )


def check_templates_cover(stored: dict, needed: dict) -> None:
    """A hand-written activations.templates must keep what the configured methods read."""
    for template, layers in needed.items():
        for kind, spec in layers.items():
            kept = stored.get(template, {}).get(kind, "none")
            if spec != "none" and merge_layers(kept, spec) != kept:
                raise GeniesError(
                    f"config: activations.templates.{template}.{kind}: keeps {kept!r}, but the "
                    f"configured interventions read {spec!r}"
                )


def merge_layers(a, b):
    """The union of two layer specs ("all", "none" or lists of indices)."""
    if "all" in (a, b):
        return "all"
    if a == "none":
        return b
    if b == "none":
        return a
    return sorted(set(a) | set(b))


def templates_read(names: list[str] | None = None) -> dict[str, dict]:
    """The union of what the interventions `names` (default: every registered one) read."""
    from genies import interventions

    methods = interventions.registry()
    stored: dict[str, dict] = {}
    for name in methods if names is None else names:
        for template, layers in methods[name].reads.templates.items():
            kept = stored.setdefault(template, {"residual": "none", "heads": "none"})
            for kind in kept:
                kept[kind] = merge_layers(kept[kind], layers.get(kind, "none"))
    return stored


def validate_config(config: dict, schema_path: str | os.PathLike = SCHEMA_PATH) -> PipelineConfig:
    """Check `config` (filled in place with the schema defaults) and resolve every name in it."""
    check_schema(config, schema_path)
    check_model_settings(config)
    if "zero_shot" not in config["interventions"]:
        raise GeniesError("config: interventions: zero_shot is required (every shift's baseline)")
    raw_dir = config["raw_dir"]
    known = vendored_distributions(raw_dir)
    models = {
        name: resolve_model(name, config["model_settings"].get(name, {}))
        for name in config["models"]
    }
    hyperparameters = resolve_hyperparameters(config, models)
    check_example_counts(config["max_examples"], hyperparameters)
    activations = dict(config["activations"])
    needed = templates_read(config["interventions"])
    # Every registered method's templates where any configured one reads the cache: adding a
    # method to a built workspace then leaves the extraction (and all that reads it) as it was.
    activations.setdefault("templates", templates_read() if needed else {})
    check_templates_cover(activations["templates"], needed)
    shifts = resolve_shifts(config["shifts"], raw_dir, known)
    return PipelineConfig(
        raw_dir=raw_dir,
        distributions=resolve_distributions(config["distributions"], known),
        shifts=shifts,
        models=models,
        interventions=list(config["interventions"]),
        hyperparameters=hyperparameters,
        max_examples=examples_per_split(config["max_examples"]),
        activations=activations,
        bootstrap=dict(config["bootstrap"]),
        seed=config["seed"],
        mixing=resolve_mixing(config, raw_dir, shifts),
        contrasts=resolve_contrasts(config),
    )


def resolve_contrasts(config: dict) -> list[tuple[str, str]]:
    """The configured contrasts, each of two distinct configured interventions, or the default
    set (genies.evaluation.contrasts.default_contrasts)."""
    from genies import interventions
    from genies.evaluation.contrasts import default_contrasts

    configured = config["interventions"]
    if "contrasts" not in config:
        trained = [name for name in configured if interventions.registry()[name].trained]
        return default_contrasts(configured, trained)
    for first, second in config["contrasts"]:
        for name in (first, second):
            if name not in configured:
                raise GeniesError(
                    f"config: contrasts: [{first}, {second}]: {name!r} is not among the "
                    f"configured interventions ({', '.join(configured)})"
                )
        if first == second:
            raise GeniesError(
                f"config: contrasts: [{first}, {second}] compares a method with itself"
            )
    return [(first, second) for first, second in config["contrasts"]]


def resolve_mixing(config: dict, raw_dir: str, shifts: list[Shift]) -> dict:
    """The fractions and the interventions mixed, refused where a fraction draws no example of a
    target or an intervention learns nothing from its training data."""
    from genies import interventions

    fractions = sorted(config["mixing"]["fractions"])
    configured = config["interventions"]
    trained = [name for name in configured if interventions.registry()[name].trained]
    chosen = config["mixing"].get("interventions", trained)
    for name in chosen:
        if name not in configured:
            raise GeniesError(
                f"config: mixing: interventions: {name!r} is not among the configured "
                f"interventions ({', '.join(configured)})"
            )
        if name not in trained:
            raise GeniesError(
                f"config: mixing: interventions: {name!r} learns nothing from its training data, "
                "so mixing cannot change it; mixed can be: " + ", ".join(trained)
            )
    cap = examples_per_split(config["max_examples"])["train"]
    for target in sorted({shift.target for shift in shifts}) if fractions else []:
        available = len(load_vendored_json(raw_dir, distribution_file(target, "train")))
        examples = min(available, cap or available)
        if mixed_count(fractions[0], examples) == 0:
            raise GeniesError(
                f"config: mixing: fractions: {fractions[0]} of {target}'s {examples} training "
                "examples draws none; use a larger fraction (or more max_examples)"
            )
    return {"fractions": fractions, "interventions": list(chosen)}


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
