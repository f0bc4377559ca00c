"""The GENIES table of our models: one row per (model, intervention), means over the GENIES
shifts of the run (all its shifts if it has none of the benchmark's) with bootstrap intervals
that resample sources (genies.evaluation.summary), and how many examples stood behind each number.

Beside the CSV and Markdown, a JSON holds the same numbers and what reproduces them: the validated
config, the seed, each model's weights hash and settings, and the package versions.
"""

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from genies.evaluation.summary import interval_text, shift_means
from genies.files.atomic import write_text_atomic
from genies.files.parquet import read_parquet
from genies.files.tables import markdown_table, write_csv, write_markdown

# the paper's El and DE, and beside them the ones against the held-out target-tuned capability
# (genies.evaluation.model_tables)
INTERVAL_METRICS = (
    "differential_elicitation",
    "differential_elicitation_heldout",
    "elicitation",
    "elicitation_heldout",
    "generalization_accuracy",
    "source_id_accuracy",
)
MEAN_METRICS = {
    "zero_shot_accuracy": "baseline_accuracy",
    "target_tuned_capability": "target_tuned_capability",
    "target_tuned_capability_heldout": "target_tuned_capability_heldout",
    "brier_score": "brier_score",
}
# Means over the shifts with continuous probabilities only (as shift_means computes them): the
# calibration of 0/1 decisions is meaningless.
CALIBRATION_METRICS = {
    "calibration_error": "rms_calibration_error",
    "legacy_calibration_error": "RMS_calibration_error",
}
PACKAGES = ("genies", "torch", "transformers", "numpy", "scikit-learn", "pandas", "snakemake")


def read_tidy(tidy_paths: list[str]) -> pd.DataFrame:
    """The per-shift tables of several models as one."""
    tables = [read_parquet(path, None, "shift table") for path in tidy_paths]
    return pd.concat(tables, ignore_index=True)


def table_shifts(tidy: pd.DataFrame) -> pd.DataFrame:
    """The GENIES rows of the run, or every row if the run has no GENIES shift."""
    genies = tidy[tidy.genies_position > 0]
    return genies if len(genies) else tidy


def examples_label(max_examples):
    """The config's `max_examples` as the table says it: a count, "all", or "train N, test M"."""
    if isinstance(max_examples, dict):
        train, test = (examples_label(max_examples[split]) for split in ("train", "test"))
        return train if train == test else f"train {train}, test {test}"
    return "all" if max_examples is None else max_examples


def genies_table(
    tidy: pd.DataFrame, examples_per_split, seed: int, resamples: int, level: float
) -> pd.DataFrame:
    # source_id_accuracy: whether a method learns its source at all (fine-tuning that does not
    # train stays at 0.5)
    rows = table_shifts(tidy).rename(columns={"source_ID_accuracy": "source_id_accuracy"})
    means = shift_means(rows, seed, resamples, level, metrics=INTERVAL_METRICS)
    grouped = rows.groupby(["model", "intervention"], sort=False)
    table = means[["model", "intervention", "comparable", "shifts"]].copy()
    for metric in INTERVAL_METRICS:
        table[[metric, f"{metric}_low", f"{metric}_high"]] = means[
            [metric, f"{metric}_low", f"{metric}_high"]
        ]
    for name, column in MEAN_METRICS.items():
        table[name] = grouped[column].mean().to_numpy()
    for name, column in CALIBRATION_METRICS.items():
        table[name] = means[column]
    table["calibration_shifts"] = means["calibration_shifts"]
    # the table's power: half the width of each interval over shifts, and the mean half-width of
    # the per-shift accuracy interval over the target's examples
    for metric in INTERVAL_METRICS:
        table[f"{metric}_half_width"] = (table[f"{metric}_high"] - table[f"{metric}_low"]) / 2
    within = (rows.accuracy_high - rows.accuracy_low) / 2
    table["shift_accuracy_half_width"] = (
        within.groupby([rows.model, rows.intervention], sort=False).mean().to_numpy()
    )
    table["examples_per_split"] = examples_label(examples_per_split)
    # what stood behind the numbers: examples scored per target and source, pairs in all
    table["target_examples"] = grouped.target_examples.mean().to_numpy()
    table["source_examples"] = grouped.source_examples.mean().to_numpy()
    table["target_pairs"] = means["pairs"]
    table["tied_pairs"] = means["tied_pairs"]
    return table


def truncation_notes(sidecars: list[str]) -> list[str]:
    """Per (model, template) of the activation cache: how many texts were longer than max_length
    and lost their start (the prompt goes first), from the cache files' sidecars."""
    counts: dict[tuple, list[int]] = {}
    for path in sidecars:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        key = (meta["model"], meta["template"], meta["max_length"])
        total = counts.setdefault(key, [0, 0])
        total[0] += meta["truncated_rows"]
        total[1] += meta["rows"]
    return [
        f"{model}, template {template}: {cut} of {rows} texts ({cut / rows:.1%}) longer than "
        f"max_length {max_length} tokens, cut from the left (the start of their prompt is lost)"
        for (model, template, max_length), (cut, rows) in sorted(counts.items())
        if cut
    ]


def table_markdown(table: pd.DataFrame, level: float, notes: list[str]) -> str:
    shown = table[["model", "intervention", "shifts"]].copy()
    shown["intervention"] = [
        name if comparable else f"{name} (not comparable)"
        for name, comparable in zip(table.intervention, table.comparable, strict=True)
    ]
    for metric in INTERVAL_METRICS:
        shown[metric] = [interval_text(row, metric) for _, row in table.iterrows()]
    shown["DE ±"] = table.differential_elicitation_half_width
    shown["shift accuracy ±"] = table.shift_accuracy_half_width
    for name in ("calibration_error", "target_examples", "target_pairs", "tied_pairs"):
        shown[name] = table[name]
    return (
        f"Means over the shifts with {level:.0%} bootstrap intervals that resample sources, each "
        "with all its shifts (shifts sharing a source share its fitted state, so they are not "
        "independent). "
        "Differential elicitation DE = (accuracy - zero-shot accuracy) / target-tuned "
        "capability (TTC: the best candidate's accuracy on the reference's test split, chosen on "
        "the labels it is scored on, as the paper's; `_heldout`: cross-fitted, the winner on one "
        "half of those examples scored on the other, so not biased upward by the choice); "
        "`DE ±` is half the width of its interval (differences between rows "
        "smaller than about it are not resolved), `shift accuracy ±` the mean half-width of a "
        "shift's accuracy interval over its target examples; "
        "`calibration_error` is the RMS calibration error (both orientations of "
        "every pair, 10 bins weighted by size, over the shifts with continuous probabilities); "
        "`target_examples` is the mean number of target test examples scored per shift and "
        "`target_pairs` the evaluation pairs behind a row. Ties (P = 0.5 exactly) count half "
        "a correct pair (`tied_pairs` of them; the recomputed published tables count them "
        "correct, upstream's rule, which scores a constant 0.5 as accuracy 1).\n\n"
        + markdown_table(shown)
        + ("\n\nNotes:\n\n" + "\n".join(f"- {note}" for note in notes) + "\n" if notes else "")
    )


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def table_json(table: pd.DataFrame, reproduce: dict, notes: list[str]) -> str:
    numbers: dict = {}
    for row in table.to_dict("records"):
        numbers.setdefault(row["model"], {})[row["intervention"]] = {
            key: None if pd.isna(value) else round(float(value), 6)
            for key, value in row.items()
            if key not in ("model", "intervention", "comparable", "examples_per_split")
        }
    document = {
        "table": numbers,
        "notes": notes,
        "reproduce": reproduce | {"packages": package_versions()},
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_genies_table(
    table: pd.DataFrame, level: float, prefix: str, reproduce: dict, notes: list[str]
) -> None:
    write_csv(table, f"{prefix}.csv")
    write_markdown(f"{prefix}.md", "GENIES table", table_markdown(table, level, notes))
    write_text_atomic(f"{prefix}.json", table_json(table, reproduce, notes))
