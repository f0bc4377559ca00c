"""Several models side by side, shift by shift: one panel per intervention, each shift's
generalisation accuracy per model in the model's colour, with its bootstrap interval over the
target's examples.

Accuracy rather than differential elicitation: DE divides by each model's own zero-shot accuracy
and target-tuned capability, so a gap in DE between two models mixes the method's effect with the
two models' baselines; accuracy is scored on the same target pairs for every model (the examples
are drawn by seed and id, not by model), so the bars of a shift compare like with like, and each
carries the interval the shift's accuracy has over those examples. (The DE per shift is in each
model's heatmap; `results/genies_models_per_shift.csv` holds the paired differences.)
"""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genies.errors import GeniesError
from genies.figures.common import (
    intervention_label,
    interventions_of,
    models_of,
    not_comparable,
    require_columns,
    shift_label,
    shifts_of,
)
from genies.figures.layout import GROUP_WIDTH, grid_shape, model_legend, offset, panel_grid

COLUMNS = ("generalization_accuracy", "accuracy_low", "accuracy_high")
MAX_COLUMNS = 2


def models_per_shift_figure(rows: pd.DataFrame, colours: dict[str, str], level: float) -> Figure:
    """Per intervention (panel), each shift's accuracy per model with its `level` interval; `rows`
    holds two models or more (one model has nothing to compare: refused)."""
    require_columns(rows, COLUMNS, "shift metrics table")
    models, interventions = models_of(rows), interventions_of(rows)
    if len(models) < 2:
        raise GeniesError(f"models per shift: needs two models or more, got {models}")
    shifts, incomparable = shifts_of(rows), not_comparable(rows)
    keys = list(zip(shifts.source, shifts.target, strict=True))
    rows_of_panels, columns = grid_shape(len(interventions), MAX_COLUMNS)
    panel_width = max(5.0, 1.0 + 0.4 * len(models) * len(keys))
    fig = Figure(
        figsize=(panel_width * columns + 2.0, 3.5 * rows_of_panels + 1.0), layout="constrained"
    )
    axes = panel_grid(fig, len(interventions), MAX_COLUMNS, sharey=True)
    width = GROUP_WIDTH / len(models)
    for ax, intervention in zip(axes, interventions, strict=True):
        mine = rows[rows.intervention == intervention].set_index(["model", "source", "target"])
        for m, model in enumerate(models):
            present = [k for k in keys if (model, *k) in mine.index]
            if not present:
                continue
            numbers = mine.loc[[(model, *k) for k in present], list(COLUMNS)]
            accuracy = numbers.generalization_accuracy.to_numpy()
            x = np.array([keys.index(k) for k in present]) + offset(m, len(models))
            ax.bar(x, accuracy, width, color=colours[model], label=model)
            ax.errorbar(
                x,
                accuracy,
                yerr=[accuracy - numbers.accuracy_low, numbers.accuracy_high - accuracy],
                fmt="none",
                ecolor="black",
                capsize=2,
                linewidth=0.8,
            )
        ax.axhline(0.5, color="black", linewidth=0.8, linestyle="--")
        ax.set_xticks(
            range(len(keys)), [shift_label(*k) for k in keys], rotation=30, ha="right", fontsize=7
        )
        ax.set_xlim(-0.6, len(keys) - 0.4)
        ax.set_ylim(0, 1)
        ax.set_title(intervention_label(intervention, incomparable, " "))
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[::MAX_COLUMNS]:
        ax.set_ylabel("generalisation accuracy")
    model_legend(fig)
    fig.suptitle(
        "Generalisation accuracy per shift, models side by side\n"
        f"({level:.0%} bootstrap intervals over the target's examples; dashed: chance)"
    )
    return fig
