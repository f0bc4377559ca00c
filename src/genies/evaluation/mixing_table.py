"""`results/mixing.csv`: each mixed fit's accuracy on its target (genies.data.mixing) beside the
plain shift's (fraction 0) and the target-tuned capability (the ceiling), with intervals over the
target's examples, per model, intervention, shift and fraction.

`results/mixing_means.csv`: per model, intervention and fraction, the mean over the shifts of the
target accuracy and of its gain over the plain shift (paired: each shift against itself), with
intervals resampling sources (shifts sharing a source share its fits), as the GENIES table's. A
shift's test split is small on a CPU run, so its own interval spans most of [0, 1]; the mean over
15 shifts is what resolves a fraction's effect.
"""

from functools import partial

import pandas as pd

from genies import paths
from genies.data.mixing import mixed_source
from genies.data.shifts import load_shifts
from genies.evaluation import metrics
from genies.evaluation.model_jobs import evaluation_reader
from genies.evaluation.model_tables import TIE_RULE, accuracy
from genies.evaluation.summary import interval_text, mean_with_interval
from genies.files.parquet import read_parquet
from genies.files.tables import markdown_table, write_csv, write_markdown
from genies.interventions.jobs import read_state_info

COLUMNS = [
    "model",
    "intervention",
    "source",
    "target",
    "fraction",
    "mixed_examples",
    "generalization_accuracy",
    "accuracy_low",
    "accuracy_high",
    "target_tuned_capability",
    "target_examples",
]
MEANS_COLUMNS = [
    "model",
    "intervention",
    "fraction",
    "shifts",
    "generalization_accuracy",
    "generalization_accuracy_low",
    "generalization_accuracy_high",
    "accuracy_gain",
    "accuracy_gain_low",
    "accuracy_gain_high",
    "target_examples",
]


def mixed_examples(model: str, method: str, source: str) -> int:
    """How many target examples the mixed fit `source` trained on, as its state records."""
    info = read_state_info(paths.state_path(model, method, source))
    return len(info["mixed"]["example_ids"])


def mixing_rows(model: str, tidy: pd.DataFrame, mixing: dict, shifts, bootstrap: dict) -> list:
    evaluations = partial(evaluation_reader(), model)
    plain = tidy.set_index(["intervention", "source", "target"])
    rows = []
    for shift in shifts:
        for method in mixing["interventions"]:
            unmixed = plain.loc[(method, shift.source, shift.target)]
            key = {"model": model, "intervention": method, "source": shift.source}
            key |= {"target": shift.target}
            ceiling = {"target_tuned_capability": unmixed.target_tuned_capability}
            rows.append(
                key
                | {"fraction": 0.0, "mixed_examples": 0}
                | unmixed[["generalization_accuracy", "accuracy_low", "accuracy_high"]].to_dict()
                | ceiling
                | {"target_examples": unmixed.target_examples}
            )
            for fraction in mixing["fractions"]:
                mixed = mixed_source(shift.source, shift.target, fraction)
                scored = evaluations(method, mixed, shift.target)
                low, high = metrics.accuracy_ci(
                    scored.probability.to_numpy(),
                    groups=scored.example_id.to_numpy(),
                    ties=TIE_RULE,
                    seed=bootstrap["seed"],
                    n_resamples=bootstrap["resamples"],
                    level=bootstrap["level"],
                )
                rows.append(
                    key
                    | {"fraction": fraction, "mixed_examples": mixed_examples(model, method, mixed)}
                    | {"generalization_accuracy": accuracy(scored)}
                    | {"accuracy_low": low, "accuracy_high": high}
                    | ceiling
                    | {"target_examples": scored.example_id.nunique()}
                )
    return rows


def mixing_means(table: pd.DataFrame, bootstrap: dict) -> pd.DataFrame:
    """Per (model, intervention, fraction) of a mixing table, the mean target accuracy over its
    shifts and the mean gain over each shift's plain accuracy, intervals resampling sources."""
    keys = ["model", "intervention", "source", "target"]
    plain = table[table.fraction == 0].set_index(keys).generalization_accuracy
    table = table.assign(
        accuracy_gain=table.generalization_accuracy
        - plain.reindex(pd.MultiIndex.from_frame(table[keys])).to_numpy()
    )
    rows = []
    for (model, intervention, fraction), group in table.groupby(
        ["model", "intervention", "fraction"], sort=False
    ):
        row = {"model": model, "intervention": intervention, "fraction": fraction}
        row |= {"shifts": len(group)}
        for metric in ("generalization_accuracy", "accuracy_gain"):
            row |= mean_with_interval(group[metric], group.source, metric, **bootstrap)
        rows.append(row | {"target_examples": int(group.target_examples.sum())})
    return pd.DataFrame(rows, columns=MEANS_COLUMNS)


def means_markdown(means: pd.DataFrame) -> str:
    shown = means[["model", "intervention", "fraction", "shifts", "target_examples"]].copy()
    for metric in ("generalization_accuracy", "accuracy_gain"):
        shown[metric] = [interval_text(row, metric) for _, row in means.iterrows()]
    return markdown_table(shown)


def mixing_table_job(models, mixing: dict, shift_names, raw_dir, bootstrap: dict) -> pd.DataFrame:
    registry = load_shifts(raw_dir)
    shifts = [registry.lookup(name) for name in shift_names]
    rows = []
    for model in models:
        tidy = read_parquet(paths.shift_metrics_path(model), None, "shift table")
        rows += mixing_rows(model, tidy, mixing, shifts, bootstrap)
    table = pd.DataFrame(rows, columns=COLUMNS)
    means = mixing_means(table, bootstrap)
    level = f"{bootstrap['level']:.0%}"
    body = (
        "Mean over the shifts of the target accuracy after mixing a fraction of the target's "
        "training examples into the source's (0: the plain shift), and of its gain over the plain "
        f"shift, with {level} bootstrap intervals resampling sources:\n\n"
        + means_markdown(means)
        + f"\n\nPer shift, with {level} bootstrap intervals over the target's examples; the "
        "target-tuned capability is the ceiling:\n\n" + markdown_table(table)
    )
    write_csv(table, f"{paths.MIXING_TABLE}.csv")
    write_csv(means, f"{paths.MIXING_MEANS}.csv")
    write_markdown(f"{paths.MIXING_TABLE}.md", "Data mixing", body)
    return table
