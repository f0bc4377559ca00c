"""GENIES means per model and intervention, with intervals bootstrapped over the 15 shifts.

Shifts that share a source share its fitted state (8 of the 15 GENIES shifts start from
alpaca_mmlu), so their numbers are not independent: the bootstrap resamples sources, each with all
its shifts (a cluster bootstrap), not single shifts, which would understate the interval.

Calibration means use only the shifts whose target file has continuous probabilities: a file of
0/1 probabilities has a meaningless calibration error (their count is reported).
"""

import json
import os

import pandas as pd

from genies.evaluation.metrics import shift_mean_with_ci
from genies.files.atomic import write_text_atomic
from genies.files.tables import markdown_table, write_csv, write_markdown

ACCURACY_METRICS = ("differential_elicitation", "elicitation", "generalization_accuracy")
CALIBRATION_METRICS = ("RMS_calibration_error", "rms_calibration_error")


def mean_with_interval(
    values: pd.Series, sources: pd.Series, name: str, seed: int, resamples: int, level: float
):
    """The mean of one metric over shifts, its interval resampling the shifts' `sources`."""
    kept = values.notna()
    if not kept.any():
        return {name: float("nan"), f"{name}_low": float("nan"), f"{name}_high": float("nan")}
    mean, low, high = shift_mean_with_ci(
        values[kept].to_numpy(), seed, resamples, level, groups=sources[kept].to_numpy()
    )
    return {name: mean, f"{name}_low": low, f"{name}_high": high}


def genies_summary(tidy: pd.DataFrame, seed: int, resamples: int, level: float) -> pd.DataFrame:
    """Means over the GENIES shifts of a tidy per-shift table."""
    return shift_means(tidy[tidy.genies_position > 0], seed, resamples, level)


def shift_means(
    shifts: pd.DataFrame, seed: int, resamples: int, level: float, metrics=ACCURACY_METRICS
) -> pd.DataFrame:
    """Per model and intervention, the mean of each of `metrics` (and of the calibration errors,
    over the shifts with continuous probabilities) over the rows (shifts) given."""
    rows = []
    for (model, intervention), group in shifts.groupby(["model", "intervention"], sort=False):
        continuous = group[~group.discretised]
        row = {
            "model": model,
            "intervention": intervention,
            "shifts": len(group),
            "comparable": bool(group.comparable.all()),
            "calibration_shifts": int(continuous.RMS_calibration_error.notna().sum()),
            "tied_pairs": int(group.tied_pairs.sum()),
            "pairs": int(group.n_pairs.sum()),
        }
        for metric in metrics:
            row |= mean_with_interval(group[metric], group.source, metric, seed, resamples, level)
        for metric in CALIBRATION_METRICS:
            row |= mean_with_interval(
                continuous[metric], continuous.source, metric, seed, resamples, level
            )
        rows.append(row)
    return pd.DataFrame(rows)


def interval_text(row, name: str) -> str:
    if pd.isna(row[name]):
        return ""
    return f"{row[name]:.3f} [{row[f'{name}_low']:.3f}, {row[f'{name}_high']:.3f}]"


def summary_markdown(summary: pd.DataFrame, level: float) -> str:
    metrics = ACCURACY_METRICS + CALIBRATION_METRICS
    table = summary[["model", "intervention", "shifts", "calibration_shifts"]].copy()
    table["tied pairs"] = [f"{row.tied_pairs} of {row.pairs}" for row in summary.itertuples()]
    for metric in metrics:
        table[metric] = [interval_text(row, metric) for _, row in summary.iterrows()]
    table["intervention"] = [
        name if comparable else f"{name} (not comparable)"
        for name, comparable in zip(summary.intervention, summary.comparable, strict=True)
    ]
    return (
        f"Means over the 15 GENIES shifts with {level:.0%} bootstrap intervals that resample "
        "sources, each with all its shifts (8 of the 15 share alpaca_mmlu and its fitted state). "
        "Calibration errors average only the shifts whose probabilities are continuous "
        "(`calibration_shifts`); `RMS_calibration_error` is upstream's legacy (buggy) formula, "
        "`rms_calibration_error` the corrected one. Ties (P = 0.5 exactly) count as correct, "
        "upstream's rule, so that every published number recomputes exactly (our own GENIES "
        "table counts them half); `tied pairs` says how many of a row's target pairs that "
        "decides.\n\n" + markdown_table(table)
    )


def summary_json(summary: pd.DataFrame) -> str:
    """Nested model -> intervention -> metric means, for `dvc metrics`."""
    nested: dict = {}
    for row in summary.itertuples(index=False):
        nested.setdefault(row.model, {})[row.intervention] = {
            metric: None if pd.isna(value) else round(float(value), 6)
            for metric in ACCURACY_METRICS + CALIBRATION_METRICS
            for value in [getattr(row, metric)]
        }
    return json.dumps(nested, indent=2) + "\n"


def write_summary(summary: pd.DataFrame, level: float, csv, md, json_path: str | os.PathLike):
    write_csv(summary, csv)
    write_markdown(
        md, "GENIES summary of the published evaluations", summary_markdown(summary, level)
    )
    write_text_atomic(json_path, summary_json(summary))
