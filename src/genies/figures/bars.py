"""Mean differential elicitation per intervention, one mark per model: over the GENIES shifts with
bootstrap intervals (`genies_de`), and over the extreme and the probing shifts apart."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.figures.common import (
    BASELINE,
    GENIES_LABELS,
    genies_rows,
    intervention_label,
    interventions_of,
    models_of,
    not_comparable,
)
from genies.figures.layout import (
    GROUP_WIDTH,
    model_legend,
    offset,
    shade_not_comparable,
    slots_width,
)


def genies_de_figure(
    summary: pd.DataFrame, colours: dict[str, str], level: float, shifts: str = "GENIES shifts"
) -> Figure:
    """The summary's mean DE with its `level` interval; `shifts` names what the means are over."""
    models, interventions = models_of(summary), interventions_of(summary)
    incomparable = not_comparable(summary)
    fig = Figure(figsize=(slots_width(len(interventions)), 5.5), layout="constrained")
    ax = fig.subplots()
    for m, model in enumerate(models):
        rows = summary[summary.model == model].set_index("intervention")
        present = [i for i in interventions if i in rows.index]
        x = np.array([interventions.index(i) for i in present]) + offset(m, len(models))
        mean = rows.loc[present, "differential_elicitation"].to_numpy()
        low = rows.loc[present, "differential_elicitation_low"].to_numpy()
        high = rows.loc[present, "differential_elicitation_high"].to_numpy()
        ax.errorbar(
            x,
            mean,
            yerr=[mean - low, high - mean],
            fmt="o",
            color=colours[model],
            capsize=3,
            label=model,
        )
    shade_not_comparable(ax, interventions, incomparable)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(
        range(len(interventions)), [intervention_label(i, incomparable) for i in interventions]
    )
    ax.set_xlim(-0.6, len(interventions) - 0.4)
    ax.set_xlabel(f"intervention ({BASELINE} has DE = 0 by definition)")
    ax.set_ylabel("differential elicitation (DE)\n(accuracy − zero-shot accuracy) / TTC")
    ax.grid(axis="y", alpha=0.3)
    model_legend(fig)
    fig.suptitle(
        f"Mean differential elicitation over the {shifts}\n"
        f"with {level:.0%} bootstrap intervals over shifts"
    )
    return fig


def de_by_genies_label(tidy: pd.DataFrame) -> pd.DataFrame:
    """Mean DE over the GENIES shifts of each label: one row per (model, intervention, label)."""
    rows = []
    for model in models_of(tidy):
        for intervention in interventions_of(tidy[tidy.model == model]):
            genies = genies_rows(tidy, model, intervention)
            means = metrics.mean_by(genies, "genies_label", ["differential_elicitation"])
            counts = genies.genies_label.value_counts()
            rows += [
                {
                    "model": model,
                    "intervention": intervention,
                    "genies_label": label,
                    "differential_elicitation": means.differential_elicitation[label],
                    "shifts": int(counts[label]),
                }
                for label in means.index
            ]
    return pd.DataFrame(
        rows,
        columns=["model", "intervention", "genies_label", "differential_elicitation", "shifts"],
    )


def extreme_vs_probing_figure(tidy: pd.DataFrame, colours: dict[str, str]) -> Figure:
    means = de_by_genies_label(tidy)
    labels = [label for label in GENIES_LABELS if label in set(means.genies_label)]
    if not labels:
        raise GeniesError("shift metrics table has no GENIES shift (genies_position > 0)")
    # zero_shot's DE is 0 by definition: an empty group of bars would only look like missing data.
    means = means[means.intervention != BASELINE]
    if means.empty:
        raise GeniesError(f"shift metrics table has no intervention besides {BASELINE}")
    models, interventions = models_of(means), interventions_of(means)
    incomparable = not_comparable(tidy)
    fig = Figure(
        figsize=(slots_width(len(interventions)), 3.2 * len(labels) + 0.8), layout="constrained"
    )
    axes = fig.subplots(len(labels), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, label in zip(axes, labels, strict=True):
        mine = means[means.genies_label == label]
        for m, model in enumerate(models):
            rows = mine[mine.model == model]
            x = [interventions.index(i) + offset(m, len(models)) for i in rows.intervention]
            ax.bar(
                x,
                rows.differential_elicitation,
                GROUP_WIDTH / len(models),
                color=colours[model],
                label=model,
            )
        shade_not_comparable(ax, interventions, incomparable)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{label} shifts ({int(mine.shifts.max())} GENIES shifts)", fontsize=10)
        ax.set_ylabel("mean DE")
    model_legend(fig)
    axes[-1].set_xticks(
        range(len(interventions)), [intervention_label(i, incomparable) for i in interventions]
    )
    axes[-1].set_xlabel("intervention (DE = (accuracy − zero-shot accuracy) / TTC)")
    fig.suptitle("Mean differential elicitation\nover the extreme and the probing GENIES shifts")
    return fig
