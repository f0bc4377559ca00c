"""Placing panels and marks: grids of panels, models side by side within an intervention's slot,
the shading of not-comparable interventions and the model legend."""

import math
from collections.abc import Collection

from matplotlib.figure import Figure

GROUP_WIDTH = 0.8  # of one intervention's slot on the x axis, shared by its models


def grid_shape(n: int, max_columns: int) -> tuple[int, int]:
    """(rows, columns) of the smallest grid of at most `max_columns` columns holding n panels."""
    columns = min(n, max_columns)
    return math.ceil(n / columns), columns


def panel_grid(fig: Figure, n: int, max_columns: int, **subplots):
    """n axes in a grid of at most `max_columns` columns; unused cells hidden."""
    rows, columns = grid_shape(n, max_columns)
    axes = fig.subplots(rows, columns, squeeze=False, **subplots).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    # A shared x axis labels only the bottom row: label the panels above a hidden cell too.
    for ax in axes[max(0, n - columns) : n]:
        ax.tick_params(labelbottom=True)
    return axes[:n]


def slots_width(interventions: int) -> float:
    """Width in inches of a figure with one x slot per intervention and the model legend."""
    return max(9.0, 1.2 * interventions + 3.2)


def offset(position: int, models: int) -> float:
    """Where the `position`-th model's mark sits within an intervention's group."""
    return (position - (models - 1) / 2) * GROUP_WIDTH / models


def shade_not_comparable(ax, interventions: list[str], incomparable: Collection[str]) -> None:
    for position, intervention in enumerate(interventions):
        if intervention in incomparable:
            ax.axvspan(position - 0.45, position + 0.45, color="grey", alpha=0.15, linewidth=0)


def model_legend(fig: Figure, title: str = "model") -> None:
    """One entry per label (per model by default), outside the axes so that it covers no data."""
    entries = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), title=title, loc="outside right upper")
