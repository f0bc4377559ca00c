"""One model's differential elicitation on each shift, per intervention, as a heatmap."""

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from genies.evaluation import metrics
from genies.figures.common import (
    intervention_label,
    interventions_of,
    not_comparable,
    rows_of,
    shift_kind,
    shift_label,
    shifts_of,
)

# shifts side by side up to this many (the 15 GENIES shifts); more run down the rows
WIDE = 20


def de_colour_limit(rows: pd.DataFrame) -> float:
    """One symmetric colour range for every model's heatmap, so colours compare across them."""
    values = rows.differential_elicitation.abs()
    limit = float(values.max()) if values.notna().any() else 0.0
    return limit if limit > 0 else 1.0


def de_matrix(tidy: pd.DataFrame, model: str, shifts: pd.DataFrame) -> tuple[list, np.ndarray]:
    """(interventions, DE matrix: one row per intervention, one column per shift of `shifts`)."""
    interventions = interventions_of(tidy[tidy.model == model])
    columns = pd.MultiIndex.from_frame(shifts[["source", "target"]])
    matrix = np.array(
        [
            rows_of(tidy, model, intervention)
            .set_index(metrics.SHIFT_KEY)
            .differential_elicitation.reindex(columns)
            .to_numpy(dtype=float)
            for intervention in interventions
        ]
    )
    return interventions, matrix


def label_groups(ax, labels: list[str], tall: bool, width: int) -> None:
    """Name each run of equally labelled shifts (extreme / probing) beside the heatmap: above its
    columns, or right of its rows when the shifts run down (`tall`; `width` columns); shifts
    outside GENIES have no label to name."""
    start = 0
    for end in range(1, len(labels) + 1):
        if end == len(labels) or labels[end] != labels[start]:
            if labels[start]:
                mid = (start + end - 1) / 2
                beside = {"x": width - 0.4, "y": mid, "rotation": 270}
                place = beside if tall else {"x": mid, "y": -0.7}
                ax.text(
                    s=f"{labels[start]} shifts",
                    ha="left" if tall else "center",
                    va="center" if tall else "bottom",
                    fontsize=10,
                    fontweight="bold",
                    **place,
                )
            if end < len(labels):
                (ax.axhline if tall else ax.axvline)(end - 0.5, color="black", linewidth=2)
            start = end


def annotate_cells(ax, matrix: np.ndarray, limit: float) -> None:
    for (row, column), value in np.ndenumerate(matrix):
        text = "n/a" if np.isnan(value) else f"{value:+.2f}"
        dark = not np.isnan(value) and abs(value) > 0.55 * limit
        ax.text(
            column,
            row,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark else "black",
        )


def heatmap_figure(rows: pd.DataFrame, model: str) -> Figure:
    """`model`'s DE on every shift of `rows`; the colour range spans all models of `rows`. Past
    WIDE shifts (the paper's 56, say) the shifts run down the rows, each label legible."""
    shifts = shifts_of(rows)
    interventions, matrix = de_matrix(rows, model, shifts)
    incomparable = not_comparable(rows)
    limit = de_colour_limit(rows)
    tall = len(shifts) > WIDE
    size = (min(16.0, 6.0 + 0.7 * len(shifts)), max(4.0, 2.2 + 0.5 * len(interventions)))
    if tall:
        matrix = matrix.T
        size = (max(7.0, 4.5 + 0.75 * len(interventions)), 2.5 + 0.3 * len(shifts))
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(
        np.ma.masked_invalid(matrix),
        cmap=colormaps["RdBu"].with_extremes(bad="lightgrey"),
        norm=TwoSlopeNorm(0, -limit, limit),
        aspect="auto",
    )
    annotate_cells(ax, matrix, limit)
    method_ticks = [intervention_label(i, incomparable, " ") for i in interventions]
    shift_ticks = [shift_label(s.source, s.target) for s in shifts.itertuples()]
    slanted = {"rotation": 35, "ha": "right", "rotation_mode": "anchor"}
    if tall:
        ax.set_xticks(range(len(interventions)), method_ticks, **slanted)
        ax.set_yticks(range(len(shifts)), shift_ticks, fontsize=8)
        ax.set_xlabel("intervention")
    else:
        ax.set_yticks(range(len(interventions)), method_ticks)
        ax.set_xticks(range(len(shifts)), shift_ticks, fontsize=8, **slanted)
        ax.set_ylabel("intervention")
    label_groups(ax, list(shifts.genies_label), tall, len(interventions))
    colourbar = fig.colorbar(image, ax=ax, pad=0.06 if tall else 0.01, shrink=0.9)
    colourbar.set_label("DE = (accuracy − zero-shot) / TTC")
    fig.suptitle(
        f"{model}: differential elicitation on each {shift_kind(shifts)}\n"
        "(source → target; blue: better than zero-shot, red: worse)"
    )
    return fig
