"""The jobs that turn our evaluations into tables: which evaluation files a model's shift table
needs, the per-shift metrics of one model, and the GENIES table of every configured model. Every
path comes from genies.paths, which the rules use too."""

from functools import cache, partial
from pathlib import Path

import pandas as pd

from genies import interventions, paths
from genies.data.mixing import mixed_source
from genies.data.shifts import Shift, load_shifts
from genies.evaluation.contrasts import contrast_summary, shift_contrasts, write_contrasts
from genies.evaluation.genies_table import (
    genies_table,
    read_tidy,
    table_shifts,
    truncation_notes,
    write_genies_table,
)
from genies.evaluation.model_tables import (
    BASELINE,
    TIE_RULE,
    ModelEvaluations,
    model_shift_table,
    models_per_shift,
    write_upstream_tables,
)
from genies.files.parquet import write_frame
from genies.files.tables import write_csv
from genies.interventions.jobs import distribution_rows, evaluation_facts, read_evaluation

SHIFT_COLUMNS = [
    "model",
    "intervention",
    "source",
    "target",
    "target_reference",
    "label",
    "category",
    "genies_position",
    "generalization_accuracy",
    "accuracy_low",
    "accuracy_high",
    "source_ID_accuracy",
    "baseline_accuracy",
    "target_tuned_capability",
    "target_tuned_capability_intervention",
    "elicitation",
    "differential_elicitation",
    "target_tuned_capability_heldout",
    "target_tuned_capability_heldout_intervention",
    "elicitation_heldout",
    "differential_elicitation_heldout",
    "rms_calibration_error",
    "RMS_calibration_error",
    "brier_score",
    "n_pairs",
    "tied_pairs",
    "target_examples",
    "source_examples",
    "comparable",
]


def scored_source(intervention: str, source: str) -> str:
    """The source a method's evaluation is filed under: `UNTRAINED_SOURCE` for one that learns
    nothing (its scores are the same whatever the source)."""
    if not interventions.registry()[intervention].trained:
        return paths.UNTRAINED_SOURCE
    return source


def needed_scores(methods: list[str], shifts: list[Shift]) -> set[tuple[str, str, str]]:
    """(method, fitted on, scored on) of every evaluation a shift table reads: each method fitted
    on the source and scored on the target and the source, fitted and scored on the reference
    (for the target-tuned capability), and the zero-shot baseline on the target."""
    needed = set()
    for shift in shifts:
        needed.add((BASELINE, shift.source, shift.target))
        for method in methods:
            needed |= {
                (method, shift.source, shift.target),
                (method, shift.source, shift.source),
                (method, shift.target_reference, shift.target_reference),
            }
    return needed


def scored_distributions(methods: list[str], shifts: list[Shift]) -> dict[tuple, list[str]]:
    """(method, source as filed) -> the distributions its one evaluation job scores."""
    scored: dict[tuple, set[str]] = {}
    for method, source, distribution in needed_scores(methods, shifts):
        scored.setdefault((method, scored_source(method, source)), set()).add(distribution)
    return {key: sorted(distributions) for key, distributions in sorted(scored.items())}


def mixed_scored(mixing: dict, shifts: list[Shift]) -> dict[tuple, list[str]]:
    """(method, mixed fit as filed) -> [its target]: a mixed fit is scored on its target alone."""
    return {
        (method, mixed_source(shift.source, shift.target, fraction)): [shift.target]
        for shift in shifts
        for method in mixing["interventions"]
        for fraction in mixing["fractions"]
    }


def needed_evaluations(model: str, methods: list[str], shifts: list[Shift]) -> list[str]:
    """Every evaluation file a model's shift table reads (see `needed_scores`)."""
    return [
        paths.evaluation_path(model, method, source)
        for method, source in scored_distributions(methods, shifts)
    ]


def needed_states(model: str, methods: list[str], shifts: list[Shift]) -> list[str]:
    """The fitted states behind those evaluations."""
    registry = interventions.registry()
    return sorted(
        {
            paths.state_path(model, method, source)
            for method, source, _ in needed_scores(methods, shifts)
            if registry[method].trained
        }
    )


def evaluation_reader() -> ModelEvaluations:
    """(model, method, source, distribution) -> that evaluation's rows, each file read once."""

    @cache
    def evaluation_file(path: str) -> pd.DataFrame:
        return read_evaluation(path)

    def evaluations(model: str, method: str, source: str, distribution: str) -> pd.DataFrame:
        path = paths.evaluation_path(model, method, scored_source(method, source))
        return distribution_rows(evaluation_file(path), distribution, path)

    return evaluations


def shift_metrics_job(model, methods, shift_names, raw_dir, bootstrap: dict) -> pd.DataFrame:
    registry = load_shifts(raw_dir)
    shifts = [registry.lookup(name) for name in shift_names]
    evaluations = partial(evaluation_reader(), model)
    classes = {m: interventions.registry()[m] for m in methods}
    comparable = {m: not cls.not_comparable for m, cls in classes.items()}
    candidates = [m for m, cls in classes.items() if cls.target_tuned_candidate]
    tidy = model_shift_table(
        model, methods, shifts, registry, evaluations, comparable, candidates, bootstrap
    )
    write_frame(tidy, paths.shift_metrics_path(model))
    write_upstream_tables(tidy, shifts, registry, paths.generalization_table_path)
    return tidy


def contrasts_job(tidy_paths: list[str], contrasts: list, bootstrap: dict) -> pd.DataFrame:
    """The paired contrasts of every configured model (genies.evaluation.contrasts): per shift
    over every configured shift, summarised over the table's shifts."""
    tidy = read_tidy(tidy_paths)
    pairs = [tuple(pair) for pair in contrasts]

    def where(model, first, second, source, target):
        files = (paths.evaluation_path(model, m, scored_source(m, source)) for m in (first, second))
        return f"{target} in {' and '.join(files)}"

    shifts = shift_contrasts(tidy, evaluation_reader(), pairs, TIE_RULE, bootstrap, where)
    summary = contrast_summary(table_shifts(shifts), bootstrap)
    csv, md = (f"{paths.GENIES_CONTRASTS}.{suffix}" for suffix in ("csv", "md"))
    write_contrasts(summary, shifts, {}, bootstrap, csv, md, paths.GENIES_CONTRAST_SHIFTS)
    return summary


def computed_in(evaluations: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per model, the compute dtypes and device types its evaluation files record."""
    found: dict[str, dict[str, set]] = {}
    for path in evaluations:
        facts = evaluation_facts(path)
        kinds = found.setdefault(facts["model"], {"compute_dtypes": set(), "device_types": set()})
        if facts.get("compute_dtype"):  # a method that computes nothing records none
            kinds["compute_dtypes"].add(facts["compute_dtype"])
            kinds["device_types"].add(facts["device_type"])
    return {model: {k: sorted(v) for k, v in kinds.items()} for model, kinds in found.items()}


def genies_table_job(
    tidy_paths: list[str], config: dict, sidecars: list[str], evaluations: list[str]
) -> pd.DataFrame:
    from genies.models.manifest import read_manifest

    tidy = read_tidy(tidy_paths)
    seed, level = config["seed"], config["bootstrap"]["level"]
    resamples = config["bootstrap"]["resamples"]
    table = genies_table(tidy, config["max_examples"], seed, resamples, level)
    bootstrap = {"seed": seed, "resamples": resamples, "level": level}
    compared = models_per_shift(table_shifts(tidy), evaluation_reader(), bootstrap)
    models, computed = {}, computed_in(evaluations)
    for model in config["models"]:
        manifest = read_manifest(Path(paths.model_dir(model)))
        models[model] = {"weights_sha256": manifest["weights_sha256"], "source": manifest["source"]}
        models[model] |= computed.get(model, {"compute_dtypes": [], "device_types": []})
    reproduce = {"config": config, "seed": seed, "models": models}
    write_genies_table(table, level, paths.GENIES_TABLE, reproduce, truncation_notes(sidecars))
    write_csv(tidy[SHIFT_COLUMNS], paths.GENIES_SHIFTS)
    write_csv(compared, paths.MODELS_PER_SHIFT)
    return table
