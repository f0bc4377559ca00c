"""Mean differential elicitation per intervention, one mark per model: over the GENIES shifts with
bootstrap intervals (`genies_de`), and per shift label: extreme and probing apart."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.figures.common import (
    BASELINE,
    GENIES_LABELS,
    genies_only,
    genies_shifts,
    intervention_label,
    interventions_of,
    models_of,
    not_comparable,
    ordered,
    rows_of,
    shifts_of,
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
        f"with {level:.0%} bootstrap intervals resampling sources (each with all its shifts)"
    )
    return fig


def de_by_label(tidy: pd.DataFrame, over_all: bool = False) -> pd.DataFrame:
    """Mean DE per shift label: over the GENIES shifts by their `genies_label`, or (`over_all`)
    over every distinct shift of the runs by its registry `label`. One row per (model,
    intervention, label), with the number of shifts behind the mean."""
    column = "label" if over_all else "genies_label"
    rows = []
    for model in models_of(tidy):
        for intervention in interventions_of(tidy[tidy.model == model]):
            shifts = rows_of(tidy, model, intervention)
            if not over_all:
                shifts = genies_only(shifts)
            means = metrics.mean_by(shifts, column, ["differential_elicitation"])
            counts = shifts[column].value_counts()
            rows += [
                {
                    "model": model,
                    "intervention": intervention,
                    "label": label,
                    "differential_elicitation": means.differential_elicitation[label],
                    "shifts": int(counts[label]),
                }
                for label in means.index
            ]
    return pd.DataFrame(
        rows, columns=["model", "intervention", "label", "differential_elicitation", "shifts"]
    )


def extreme_vs_probing_figure(
    tidy: pd.DataFrame, colours: dict[str, str], over_all: bool = False
) -> Figure:
    """Mean DE per intervention, a panel per shift label: the GENIES shifts, or (`over_all`)
    every shift of the runs, the paper's 56 say, whose bars stay as legible as the GENIES 15."""
    means = de_by_label(tidy, over_all)
    labels = ordered(means.label, GENIES_LABELS)
    if not labels:
        raise GeniesError("shift metrics table has no GENIES shift (genies_position > 0)")
    # zero_shot's DE is 0 by definition: an empty group of bars would only look like missing data.
    means = means[means.intervention != BASELINE]
    if means.empty:
        raise GeniesError(f"shift metrics table has no intervention besides {BASELINE}")
    models, interventions = models_of(means), interventions_of(means)
    incomparable = not_comparable(tidy)
    shifts = len(shifts_of(tidy)) if over_all else len(genies_shifts(tidy))
    fig = Figure(
        figsize=(slots_width(len(interventions)), 3.2 * len(labels) + 0.8), layout="constrained"
    )
    axes = fig.subplots(len(labels), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, label in zip(axes, labels, strict=True):
        mine = means[means.label == label]
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
        counted = f"{int(mine.shifts.max())} of the {shifts} shifts"
        ax.set_title(f"{label} shifts ({counted})", fontsize=10)
        ax.set_ylabel("mean DE")
    model_legend(fig)
    axes[-1].set_xticks(
        range(len(interventions)), [intervention_label(i, incomparable) for i in interventions]
    )
    axes[-1].set_xlabel("intervention (DE = (accuracy − zero-shot accuracy) / TTC)")
    over = f"all {shifts} distinct shifts" if over_all else f"the {shifts} GENIES shifts"
    fig.suptitle(f"Mean differential elicitation per shift label\nover {over}")
    return fig
