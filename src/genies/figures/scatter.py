"""Per-shift accuracy against another accuracy, one panel per intervention, Pearson r printed:
against zero-shot accuracy (any model), and a smaller paper model's against llama-30b's.

Pearson r is undefined (NaN) for fewer than 2 points or a constant variable.
"""

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.figures.common import (
    BASELINE,
    intervention_label,
    interventions_of,
    models_of,
    not_comparable,
    ordered,
    rows_of,
)
from genies.figures.layout import grid_shape, panel_grid
from genies.paper.tables import PAPER_INTERVENTIONS

REFERENCE_MODEL = "llama-30b"
ZERO_SHOT_COLUMNS = 4  # panels per row of accuracy_vs_zero_shot


class Scatter(NamedTuple):
    """Paired per-shift values of one panel and their Pearson r."""

    x: np.ndarray
    y: np.ndarray
    r: float

    @property
    def n(self) -> int:
        return int(self.x.size)


def scatter(x, y) -> Scatter:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return Scatter(x, y, metrics.pearson(x, y))


def zero_shot_scatter(tidy: pd.DataFrame, model: str, intervention: str) -> Scatter:
    """x: zero-shot accuracy on the target, y: the intervention's, over the distinct shifts."""
    rows = rows_of(tidy, model, intervention)
    return scatter(rows.baseline_accuracy, rows.generalization_accuracy)


def scaling_scatter(tidy: pd.DataFrame, model: str, intervention: str) -> Scatter:
    """x: llama-30b's accuracy, y: `model`'s, over the shifts both were evaluated on."""
    columns = ["source", "target", "generalization_accuracy"]
    pairs = rows_of(tidy, REFERENCE_MODEL, intervention)[columns].merge(
        rows_of(tidy, model, intervention)[columns],
        on=metrics.SHIFT_KEY,
        suffixes=("_reference", "_model"),
    )
    return scatter(pairs.generalization_accuracy_reference, pairs.generalization_accuracy_model)


def zero_shot_panels(tidy: pd.DataFrame, model: str) -> list[str]:
    mine = tidy[tidy.model == model]
    return [i for i in interventions_of(mine) if i != BASELINE]


def scaling_panels(tidy: pd.DataFrame) -> list[tuple[str, str]]:
    """(smaller model, intervention) pairs evaluated for both it and llama-30b."""
    reference = set(tidy.intervention[tidy.model == REFERENCE_MODEL])
    if not reference:
        raise GeniesError(f"shift metrics table has no {REFERENCE_MODEL} rows: no scaling figure")
    return [
        (model, intervention)
        for model in models_of(tidy)
        if model != REFERENCE_MODEL
        for intervention in interventions_of(tidy[tidy.model == model])
        if intervention in reference
    ]


def r_text(s: Scatter) -> str:
    r = "undefined" if math.isnan(s.r) else f"{s.r:.2f}"
    return f"r = {r}\nn = {s.n}"


def draw_scatter(ax, s: Scatter, colour: str, text_corner: str) -> None:
    """Accuracy against accuracy on [0, 1], with the y = x line and r printed in a corner."""
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax.scatter(s.x, s.y, s=14, color=colour, alpha=0.75, edgecolors="none")
    # A small margin so that points at exactly 0 or 1 are drawn whole.
    ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), aspect="equal")
    ax.grid(alpha=0.3)
    x, ha = (0.04, "left") if text_corner == "upper left" else (0.96, "right")
    y, va = (0.96, "top") if text_corner == "upper left" else (0.04, "bottom")
    ax.text(
        x,
        y,
        r_text(s),
        transform=ax.transAxes,
        ha=ha,
        va=va,
        fontsize=9,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )


def accuracy_vs_zero_shot_figure(rows: pd.DataFrame, model: str, colour: str) -> Figure:
    """One panel per intervention of `model` besides zero-shot, over the shifts of `rows`."""
    interventions = zero_shot_panels(rows, model)
    if not interventions:
        raise GeniesError(f"{model}: no intervention besides {BASELINE} to compare with it")
    incomparable = not_comparable(rows)
    grid_rows, columns = grid_shape(len(interventions), ZERO_SHOT_COLUMNS)
    fig = Figure(
        figsize=(max(5.6, 3.2 * columns + 0.6), 3.3 * grid_rows + 1.2), layout="constrained"
    )
    axes = panel_grid(fig, len(interventions), ZERO_SHOT_COLUMNS, sharex=True, sharey=True)
    for ax, intervention in zip(axes, interventions, strict=True):
        s = zero_shot_scatter(rows, model, intervention)
        # An intervention that helps lies above y = x: the lower right is the emptier corner.
        draw_scatter(ax, s, colour, text_corner="lower right")
        ax.set_title(intervention_label(intervention, incomparable, " "), fontsize=10)
    fig.supxlabel("zero-shot accuracy on the target (pairwise, 0–1)")
    fig.supylabel("generalisation accuracy on the target (pairwise, 0–1)")
    fig.suptitle(
        f"{model}: intervention accuracy against zero-shot accuracy\n"
        "one point per distinct shift (dashed: y = x)",
        fontsize=11,
    )
    return fig


def scaling_figure(tidy: pd.DataFrame, colours: dict[str, str]) -> Figure:
    panels = scaling_panels(tidy)
    if not panels:
        raise GeniesError(f"no smaller model shares an intervention with {REFERENCE_MODEL}")
    models = list(dict.fromkeys(model for model, _ in panels))
    interventions = ordered([i for _, i in panels], PAPER_INTERVENTIONS)
    incomparable = not_comparable(tidy)
    fig = Figure(
        figsize=(2.6 * len(interventions) + 0.8, 2.7 * len(models) + 1.0), layout="constrained"
    )
    axes = fig.subplots(len(models), len(interventions), squeeze=False, sharex=True, sharey=True)
    for ax in axes.ravel():
        ax.set_visible(False)
    for model, intervention in panels:
        ax = axes[models.index(model), interventions.index(intervention)]
        ax.set_visible(True)
        # The larger model is usually better, so points fall below y = x: r goes upper left.
        s = scaling_scatter(tidy, model, intervention)
        draw_scatter(ax, s, colours[model], "upper left")
        ax.set_title(f"{model}\n{intervention_label(intervention, incomparable, ' ')}", fontsize=9)
    fig.supxlabel(f"{REFERENCE_MODEL} generalisation accuracy (pairwise, 0–1)")
    fig.supylabel("smaller model's generalisation accuracy (pairwise, 0–1)")
    fig.suptitle(
        f"Scaling: each smaller model's per-shift accuracy against {REFERENCE_MODEL}'s, same "
        "intervention and shift (dashed: y = x)"
    )
    return fig
