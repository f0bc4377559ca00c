"""Data-mixing runs: per shift, target accuracy against the fraction of the target's examples
mixed into the source's training data, one line per (model, intervention).

Input: the table of `genies.paper.mixing.mixing_table` (the published runs) or of
`genies.evaluation.mixing_table` (ours); fraction 0 is the plain shift. The
fractions sit evenly spaced on the x axis (0, 1%, 5%, 10%, 35%), so that the small ones stay
readable; each model's target-tuned capability is its dashed ceiling, chance the grey line at 0.5.
"""

import itertools

import pandas as pd
from matplotlib.figure import Figure

from genies.errors import GeniesError
from genies.figures.common import model_colours, models_of, require_columns, shift_label
from genies.figures.layout import grid_shape, model_legend, panel_grid

MIXING_COLUMNS = (
    "model",
    "intervention",
    "source",
    "target",
    "fraction",
    "generalization_accuracy",
    "accuracy_low",
    "accuracy_high",
    "target_tuned_capability",
)
PANEL_COLUMNS = 3
CHANCE = 0.5
# (line style, marker) per intervention, in the order of the table's interventions: LoRA and
# MMS, the two with published mixing runs, come first in the paper's table
STYLES = [("-", "o"), (":", "s"), ("--", "^"), ("-.", "D"), ((0, (1, 4)), "v"), ((0, (5, 1)), "P")]


def fraction_positions(table: pd.DataFrame) -> dict[float, int]:
    """Each fraction's x position: evenly spaced, so that the small fractions stay readable."""
    return {fraction: x for x, fraction in enumerate(sorted(table.fraction.unique()))}


def interval_line(ax, line: pd.DataFrame, columns: tuple[str, str, str], position, **style):
    """One line of (value, low, high) `columns` against the fraction, with its interval bars."""
    value, low, high = (line[column] for column in columns)
    ax.errorbar(line.fraction.map(position), value, yerr=[value - low, high - value], **style)


def label_fraction_axes(axes, columns: int, position: dict[float, int], ylabel: str) -> None:
    """The fraction ticks and grid on every panel; the axis labels on the outer panels."""
    for ax in axes:
        ax.set_xticks(list(position.values()), [f"{fraction:.0%}" for fraction in position])
        ax.grid(alpha=0.3)
    for ax in axes[::columns]:
        ax.set_ylabel(ylabel)
    for ax in axes[-columns:]:
        ax.set_xlabel("fraction of the target mixed into training")


def mixing_figure(table: pd.DataFrame, level: float, whose: str) -> Figure:
    """The figure of a mixing table; `whose` runs they are, for the title."""
    require_columns(table, MIXING_COLUMNS, "mixing table")
    if table.empty:
        raise GeniesError("mixing table has no rows")
    shifts = table[["source", "target"]].drop_duplicates().sort_values(["source", "target"])
    position = fraction_positions(table)
    colours = model_colours(models_of(table))
    styles = dict(zip(table.intervention.unique(), itertools.cycle(STYLES)))
    rows, columns = grid_shape(len(shifts), PANEL_COLUMNS)
    fig = Figure(figsize=(4.2 * columns + 3.2, 3.6 * rows + 0.8), layout="constrained")
    axes = panel_grid(fig, len(shifts), PANEL_COLUMNS, sharex=True, sharey=True)
    for ax, shift in zip(axes, shifts.itertuples(index=False), strict=True):
        mine = table[(table.source == shift.source) & (table.target == shift.target)]
        for model in models_of(mine):
            for intervention, line in mine[mine.model == model].groupby("intervention"):
                line = line.sort_values("fraction")
                linestyle, marker = styles[intervention]
                interval_line(
                    ax,
                    line,
                    ("generalization_accuracy", "accuracy_low", "accuracy_high"),
                    position,
                    color=colours[model],
                    linestyle=linestyle,
                    marker=marker,
                    capsize=2,
                    label=f"{model} / {intervention}",
                )
            ceiling = mine[mine.model == model].target_tuned_capability.iloc[0]
            ax.axhline(
                ceiling, color=colours[model], linestyle="--", linewidth=1, label=f"{model} ceiling"
            )
        ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_title(shift_label(shift.source, shift.target), fontsize=9)
        ax.set_ylim(0, 1.02)
    label_fraction_axes(axes, columns, position, "target accuracy")
    model_legend(fig, title="model / intervention")
    fig.suptitle(
        f"{whose}: target accuracy against the mixed fraction\n"
        f"(bars: {level:.0%} bootstrap interval over the target's examples; dashed: the model's "
        "target-tuned capability)"
    )
    return fig


MEANS_COLUMNS = (
    "model",
    "intervention",
    "fraction",
    "shifts",
    "accuracy_gain",
    "accuracy_gain_low",
    "accuracy_gain_high",
)


def mixing_means_figure(means: pd.DataFrame, level: float, whose: str) -> Figure:
    """The mean gain in target accuracy over the plain shift against the mixed fraction, a panel
    per intervention, a line per model (`genies.evaluation.mixing_table.mixing_means`)."""
    require_columns(means, MEANS_COLUMNS, "mixing means")
    if means.empty:
        raise GeniesError("mixing means have no rows")
    position = fraction_positions(means)
    colours = model_colours(models_of(means))
    interventions = list(means.intervention.unique())
    rows, columns = grid_shape(len(interventions), PANEL_COLUMNS)
    fig = Figure(figsize=(4.2 * columns + 2.4, 3.6 * rows + 0.9), layout="constrained")
    axes = panel_grid(fig, len(interventions), PANEL_COLUMNS, sharex=True, sharey=True)
    for ax, intervention in zip(axes, interventions, strict=True):
        mine = means[means.intervention == intervention]
        for model in models_of(mine):
            interval_line(
                ax,
                mine[mine.model == model].sort_values("fraction"),
                ("accuracy_gain", "accuracy_gain_low", "accuracy_gain_high"),
                position,
                color=colours[model],
                marker="o",
                capsize=3,
                label=model,
            )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(f"{intervention} ({int(mine.shifts.max())} shifts)", fontsize=10)
    label_fraction_axes(
        axes, columns, position, "mean gain in target accuracy\nover the plain shift"
    )
    model_legend(fig)
    fig.suptitle(
        f"{whose}: mean gain over the shifts against the mixed fraction\n"
        f"(bars: {level:.0%} bootstrap intervals resampling sources)"
    )
    return fig
