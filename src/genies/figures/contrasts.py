"""Forest plot of the paired contrasts (genies.evaluation.contrasts): one row per contrast, its
mean DE difference over the GENIES shifts and interval, the zero line; models side by side.
Resolved contrasts are filled, those still resolved after Holm's adjustment also starred."""

import pandas as pd
from matplotlib.figure import Figure

from genies.figures.common import model_colours, require_columns

COLUMNS = (
    "model",
    "first",
    "second",
    "de_difference",
    "de_difference_low",
    "de_difference_high",
    "resolved",
    "resolved_holm",
)
ROW_INCHES = 0.22


def contrast_forest(summary: pd.DataFrame) -> Figure:
    require_columns(summary, COLUMNS, "contrast summary")
    models = list(dict.fromkeys(summary.model))
    names = list(dict.fromkeys(summary["first"] + " - " + summary.second))
    colours = model_colours(models)
    fig = Figure(figsize=(2.6 + 3.2 * len(models), 1.4 + ROW_INCHES * len(names)))
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    for ax, model in zip(axes, models, strict=True):
        rows = summary[summary.model == model]
        y = [names.index(name) for name in rows["first"] + " - " + rows.second]
        resolved = (rows.resolved != "").to_numpy()
        mean = rows.de_difference.to_numpy()
        error = [mean - rows.de_difference_low.to_numpy(), rows.de_difference_high - mean]
        colour = colours[model]
        ax.errorbar(mean, y, xerr=error, fmt="none", ecolor=colour, elinewidth=1)
        ax.scatter(mean[resolved], [v for v, r in zip(y, resolved, strict=True) if r], c=colour)
        ax.scatter(
            mean[~resolved],
            [v for v, r in zip(y, resolved, strict=True) if not r],
            facecolors="white",
            edgecolors=colour,
        )
        for value, row, holm in zip(mean, y, rows.resolved_holm, strict=True):
            if holm:
                ax.annotate("*", (value, row), xytext=(4, -2), textcoords="offset points")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(model)
        ax.set_xlabel("ΔDE, mean over the shifts")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names, fontsize=8)
    axes[0].set_ylim(len(names) - 0.5, -0.5)
    fig.suptitle(
        "Paired contrasts A - B\nintervals resampling sources; filled: excludes 0; *: after Holm",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
