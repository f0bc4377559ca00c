"""Reliability diagrams of one paper model: per intervention, the per-pair probabilities of its
published GENIES target files pooled, against the observed fraction preferred.

The probabilities come from the index of published evaluation files
(`genies.paper.published.read_index`).
"""

from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.figures.common import (
    genies_rows,
    genies_shifts,
    intervention_label,
    interventions_of,
    not_comparable,
    require_columns,
)
from genies.figures.layout import grid_shape

RELIABILITY_BINS = 10
RELIABILITY_COLUMNS = 3  # panels per row
PROBABILITY_LABEL = "predicted P(response preferred)"
INDEX_COLUMNS = ("path", "nested", "probabilities")


def check_index(index: pd.DataFrame) -> None:
    require_columns(index, INDEX_COLUMNS, "evaluation index")


class PooledProbabilities(NamedTuple):
    """The GENIES target files of one model and intervention, sorted into used and skipped."""

    used: dict[str, np.ndarray]  # path -> per-pair P(preferred response wins)
    skipped: dict[str, str]  # path -> why it is not pooled

    @property
    def probabilities(self) -> np.ndarray:
        return np.concatenate(list(self.used.values())) if self.used else np.empty(0)


def skip_reason(comparable: bool, probabilities) -> str:
    """Why a file's probabilities cannot enter a reliability diagram; "" if they can."""
    if not comparable:
        return "not comparable"
    if probabilities is None:
        return "no per-pair probabilities"
    if np.isin(np.asarray(probabilities, dtype=float), (0.0, 1.0)).all():
        return "probabilities discretised to 0/1"
    return ""


def pooled_probabilities(
    tidy: pd.DataFrame, index: pd.DataFrame, model: str, intervention: str
) -> PooledProbabilities:
    """The per-pair probabilities of the model's GENIES target files for one intervention.

    Files of a shift marked not comparable (ccs), without probabilities or with only 0/1
    probabilities (whose calibration is meaningless) are skipped; a missing file raises.
    """
    check_index(index)
    top = index[~index.nested.astype(bool)].set_index("path").probabilities
    used, skipped = {}, {}
    for row in genies_rows(tidy, model, intervention).itertuples():
        path = f"{intervention}/{model}-{row.source}/{row.target}.json"
        if path not in top.index:
            raise GeniesError(f"evaluation index: {path}: evaluation file missing")
        reason = skip_reason(row.comparable, top[path])
        if reason:
            skipped[path] = reason
        else:
            used[path] = metrics.probabilities(top[path])
    return PooledProbabilities(used, skipped)


def skipped_text(pooled: PooledProbabilities) -> str:
    reasons = pd.Series(list(pooled.skipped.values()), dtype=str).value_counts()
    return "\n".join(f"{count} skipped: {reason}" for reason, count in reasons.items())


def reliability_title(title: str, pooled: PooledProbabilities) -> str:
    """The panel's title and its calibration numbers, kept off the axes so they hide no point."""
    if not pooled.used:
        return title
    p = pooled.probabilities
    pooled_rms = metrics.rms_calibration_error(p, RELIABILITY_BINS)
    file_rms = np.mean(
        [metrics.rms_calibration_error(f, RELIABILITY_BINS) for f in pooled.used.values()]
    )
    lines = [
        title,
        f"corrected RMS CE: {pooled_rms:.3f} pooled, {file_rms:.3f} mean per file",
        f"{len(pooled.used)} files, {p.size} pairs",
    ]
    if pooled.skipped:
        lines[-1] += "; " + skipped_text(pooled).replace("\n", "; ")
    return "\n".join(lines)


def draw_reliability(ax, ax_counts, pooled: PooledProbabilities, colour: str) -> None:
    p = pooled.probabilities
    bins = metrics.reliability_bins(p, RELIABILITY_BINS)
    filled = bins.count > 0
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    # Unclipped, so that a bin whose items are all preferred (or none) shows a whole marker.
    ax.plot(
        bins.mean_probability[filled], bins.mean_label[filled], "o-", color=colour, clip_on=False
    )
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    share = 100 * bins.count / bins.count.sum()
    ax_counts.bar(centres, share, width=0.9 / RELIABILITY_BINS, color=colour, alpha=0.6)
    ax_counts.set_ylim(0, 100)
    ax_counts.set_ylabel("% of items", fontsize=8)
    ax_counts.set_xlabel(PROBABILITY_LABEL, fontsize=8)
    ax.tick_params(labelbottom=False)


def draw_unusable(ax, ax_counts, pooled: PooledProbabilities) -> None:
    reason = skipped_text(pooled) if pooled.skipped else "no GENIES target file"
    ax.text(
        0.5,
        0.5,
        f"no usable file\n{reason}",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=8.5,
        color="dimgrey",
    )
    ax.set_xlabel(PROBABILITY_LABEL, fontsize=8)
    ax_counts.set_visible(False)


def reliability_figure(tidy: pd.DataFrame, index: pd.DataFrame, model: str, colour: str) -> Figure:
    check_index(index)
    interventions = interventions_of(tidy[tidy.model == model])
    if not interventions:
        raise GeniesError(f"shift metrics table has no rows for model {model!r}")
    incomparable = not_comparable(tidy)
    rows, columns = grid_shape(len(interventions), RELIABILITY_COLUMNS)
    fig = Figure(figsize=(4.0 * columns + 0.6, 4.3 * rows + 0.9), layout="constrained")
    grid = fig.add_gridspec(2 * rows, columns, height_ratios=[3, 1] * rows)
    for number, intervention in enumerate(interventions):
        row, column = divmod(number, columns)
        ax = fig.add_subplot(grid[2 * row, column])
        ax_counts = fig.add_subplot(grid[2 * row + 1, column], sharex=ax)
        pooled = pooled_probabilities(tidy, index, model, intervention)
        if pooled.used:
            draw_reliability(ax, ax_counts, pooled, colour)
        else:
            draw_unusable(ax, ax_counts, pooled)
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.grid(alpha=0.3)
        title = intervention_label(intervention, incomparable, " ")
        ax.set_title(reliability_title(title, pooled), fontsize=8.5)
        ax.set_ylabel("observed fraction preferred", fontsize=8)
    shifts = len(genies_shifts(tidy[tidy.model == model]))
    fig.suptitle(
        f"{model}: reliability diagrams pooling the {shifts} GENIES target files\n"
        f"both orientations of each pair, {RELIABILITY_BINS} bins (dashed: perfect calibration)"
    )
    return fig
