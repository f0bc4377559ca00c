"""Figures of the recomputed GENIES results, and the table of every Pearson r they show.

Inputs are the pipeline's DataFrames: the tidy per-shift table (`genies.paper.tables.recompute`),
the GENIES summary (`genies.evaluation.summary.genies_summary`) and the index of published
evaluation files (`genies.paper.published.read_index`). Every figure is built in memory first
(matplotlib's object-oriented `Figure`, no pyplot state, no display), so bad input raises
GeniesError before any file is written; each PNG is then written atomically.

Conventions shared by all figures: one colour per model (`MODEL_COLOURS`), interventions in the
order of `PAPER_INTERVENTIONS`, and interventions of `NOT_COMPARABLE` (ccs) labelled
"not comparable". Pearson r is undefined (NaN) for fewer than 2 points or a constant variable.
"""

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.files.atomic import write_atomic
from genies.files.tables import write_csv
from genies.paper.tables import NOT_COMPARABLE, PAPER_INTERVENTIONS, PAPER_MODELS

DPI = 150
# Okabe-Ito colours, distinguishable with colour-blindness; fixed so a model looks the same in
# every figure.
MODEL_COLOURS = {
    "openllama-3b": "#E69F00",
    "llama-7b": "#CC79A7",
    "llama-13b": "#009E73",
    "llama-30b": "#0072B2",
}
REFERENCE_MODEL = "llama-30b"
BASELINE = "zero_shot"
GENIES_LABELS = ("extreme", "probing")
RELIABILITY_BINS = 10
PROBABILITY_LABEL = "predicted P(response preferred)"
ZERO_SHOT_COLUMNS = 4  # panels per row of accuracy_vs_zero_shot; reliability has room for fewer
RELIABILITY_COLUMNS = 3
GROUP_WIDTH = 0.8  # of one intervention's slot on the x axis, shared by its models

TIDY_COLUMNS = (
    "model",
    "intervention",
    "source",
    "target",
    "generalization_accuracy",
    "baseline_accuracy",
    "differential_elicitation",
    "genies_position",
    "genies_label",
)
SUMMARY_COLUMNS = (
    "model",
    "intervention",
    "differential_elicitation",
    "differential_elicitation_low",
    "differential_elicitation_high",
)
INDEX_COLUMNS = ("path", "nested", "probabilities")
CORRELATION_COLUMNS = ["figure", "model", "intervention", "compared_with", "r", "n"]


# --- input checks and ordering --------------------------------------------------------------------


def require_columns(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise GeniesError(f"{what} lacks column(s): {', '.join(missing)}")


def ordered(names, known: tuple[str, ...], what: str) -> list[str]:
    """The distinct `names` in the order of `known`; GeniesError naming any unknown one."""
    present = set(names)
    unknown = sorted(present - set(known))
    if unknown:
        raise GeniesError(f"unknown {what}(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [name for name in known if name in present]


def models_of(df: pd.DataFrame) -> list[str]:
    return ordered(df.model, PAPER_MODELS, "model")


def interventions_of(df: pd.DataFrame) -> list[str]:
    return ordered(df.intervention, PAPER_INTERVENTIONS, "intervention")


def check_tidy(tidy: pd.DataFrame) -> None:
    require_columns(tidy, TIDY_COLUMNS, "shift metrics table")
    models_of(tidy)
    interventions_of(tidy)
    labels = set(tidy.genies_label[tidy.genies_position > 0])
    if not labels <= set(GENIES_LABELS):
        unknown = ", ".join(sorted(labels - set(GENIES_LABELS)))
        raise GeniesError(f"shift metrics table: unknown genies_label(s) {unknown}")


def check_summary(summary: pd.DataFrame) -> None:
    require_columns(summary, SUMMARY_COLUMNS, "GENIES summary")
    models_of(summary)
    interventions_of(summary)


def check_index(index: pd.DataFrame) -> None:
    require_columns(index, INDEX_COLUMNS, "evaluation index")


def intervention_label(intervention: str, separator: str = "\n") -> str:
    if intervention in NOT_COMPARABLE:
        return f"{intervention}{separator}(not comparable)"
    return intervention


def shift_label(source: str, target: str) -> str:
    return f"{source} → {target}"


def rows_of(tidy: pd.DataFrame, model: str, intervention: str) -> pd.DataFrame:
    """The distinct shifts of one model and intervention."""
    mine = tidy[(tidy.model == model) & (tidy.intervention == intervention)]
    return metrics.distinct_shifts(mine)


def genies_rows(tidy: pd.DataFrame, model: str, intervention: str) -> pd.DataFrame:
    rows = rows_of(tidy, model, intervention)
    return rows[rows.genies_position > 0].sort_values("genies_position")


def genies_shifts(tidy: pd.DataFrame) -> pd.DataFrame:
    """The GENIES shifts (source, target, genies_label) in genies_position order."""
    genies = tidy[tidy.genies_position > 0].sort_values("genies_position")
    return metrics.distinct_shifts(genies)[["source", "target", "genies_label", "genies_position"]]


# --- Pearson correlations -------------------------------------------------------------------------


def pearson(x, y) -> float:
    """Pearson r of paired values; NaN when undefined (n < 2 or a constant variable)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


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
    return Scatter(x, y, pearson(x, y))


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


def correlation_row(figure: str, model: str, intervention: str, compared_with: str, s: Scatter):
    return {
        "figure": figure,
        "model": model,
        "intervention": intervention,
        "compared_with": compared_with,
        "r": s.r,
        "n": s.n,
    }


def correlation_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Every Pearson r printed in the accuracy_vs_zero_shot and scaling figures."""
    check_tidy(tidy)
    rows = [
        correlation_row(
            "accuracy_vs_zero_shot",
            model,
            intervention,
            BASELINE,
            zero_shot_scatter(tidy, model, intervention),
        )
        for model in models_of(tidy)
        for intervention in zero_shot_panels(tidy, model)
    ]
    rows += [
        correlation_row(
            "scaling",
            model,
            intervention,
            REFERENCE_MODEL,
            scaling_scatter(tidy, model, intervention),
        )
        for model, intervention in scaling_panels(tidy)
    ]
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def write_correlations(correlations: pd.DataFrame, path: str | os.PathLike) -> Path:
    write_csv(correlations, path)
    return Path(path)


# --- shared drawing helpers -----------------------------------------------------------------------


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


def offset(position: int, models: int) -> float:
    """Where the `position`-th model's mark sits within an intervention's group."""
    return (position - (models - 1) / 2) * GROUP_WIDTH / models


def shade_not_comparable(ax, interventions: list[str]) -> None:
    for position, intervention in enumerate(interventions):
        if intervention in NOT_COMPARABLE:
            ax.axvspan(position - 0.45, position + 0.45, color="grey", alpha=0.15, linewidth=0)


def model_legend(fig: Figure) -> None:
    """One entry per model, outside the axes so that it covers no data."""
    entries = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), title="model", loc="outside right upper")


# --- 1. GENIES mean DE ----------------------------------------------------------------------------


def genies_de_figure(summary: pd.DataFrame) -> Figure:
    check_summary(summary)
    models, interventions = models_of(summary), interventions_of(summary)
    fig = Figure(figsize=(14, 5.5), layout="constrained")
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
            color=MODEL_COLOURS[model],
            capsize=3,
            label=model,
        )
    shade_not_comparable(ax, interventions)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(interventions)), [intervention_label(i) for i in interventions])
    ax.set_xlim(-0.6, len(interventions) - 0.4)
    ax.set_xlabel("intervention (zero_shot has DE = 0 by definition)")
    ax.set_ylabel("differential elicitation (DE)\n(accuracy − zero-shot accuracy) / TTC")
    ax.grid(axis="y", alpha=0.3)
    model_legend(fig)
    fig.suptitle(
        "Mean differential elicitation over the GENIES shifts, with 95% bootstrap intervals "
        "over shifts"
    )
    return fig


# --- 2. per-shift DE heatmaps ---------------------------------------------------------------------


def de_colour_limit(tidy: pd.DataFrame) -> float:
    """One symmetric colour range for every model's heatmap, so colours compare across them."""
    values = tidy.differential_elicitation[tidy.genies_position > 0].abs()
    limit = float(values.max()) if values.notna().any() else 0.0
    return limit if limit > 0 else 1.0


def de_matrix(tidy: pd.DataFrame, model: str, shifts: pd.DataFrame) -> tuple[list, np.ndarray]:
    """(interventions, DE matrix: one row per intervention, one column per GENIES shift)."""
    mine = tidy[tidy.model == model]
    interventions = interventions_of(mine)
    columns = pd.MultiIndex.from_frame(shifts[["source", "target"]])
    matrix = np.array(
        [
            genies_rows(tidy, model, intervention)
            .set_index(metrics.SHIFT_KEY)
            .differential_elicitation.reindex(columns)
            .to_numpy(dtype=float)
            for intervention in interventions
        ]
    )
    return interventions, matrix


def label_groups(ax, labels: list[str]) -> None:
    """Name each run of equally labelled columns (extreme / probing) above the heatmap."""
    start = 0
    for end in range(1, len(labels) + 1):
        if end == len(labels) or labels[end] != labels[start]:
            ax.text(
                (start + end - 1) / 2,
                -0.7,
                f"{labels[start]} shifts",
                ha="center",
                va="bottom",
                fontsize=10,
                fontweight="bold",
            )
            if end < len(labels):
                ax.axvline(end - 0.5, color="black", linewidth=2)
            start = end


def heatmap_figure(tidy: pd.DataFrame, model: str) -> Figure:
    check_tidy(tidy)
    shifts = genies_shifts(tidy)
    interventions, matrix = de_matrix(tidy, model, shifts)
    limit = de_colour_limit(tidy)
    fig = Figure(figsize=(16, max(4.0, 2.2 + 0.5 * len(interventions))), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(
        np.ma.masked_invalid(matrix),
        cmap=colormaps["RdBu"].with_extremes(bad="lightgrey"),
        norm=TwoSlopeNorm(0, -limit, limit),
        aspect="auto",
    )
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
    ax.set_yticks(range(len(interventions)), [intervention_label(i, " ") for i in interventions])
    ax.set_xticks(
        range(len(shifts)),
        [shift_label(s.source, s.target) for s in shifts.itertuples()],
        rotation=35,
        ha="right",
        rotation_mode="anchor",
        fontsize=8,
    )
    label_groups(ax, list(shifts.genies_label))
    ax.set_ylabel("intervention")
    colourbar = fig.colorbar(image, ax=ax, pad=0.01, shrink=0.9)
    colourbar.set_label("DE = (accuracy − zero-shot) / TTC")
    fig.suptitle(
        f"{model}: differential elicitation on each GENIES shift (source → target; "
        "blue: better than zero-shot, red: worse)"
    )
    return fig


# --- 3. generalisation accuracy against zero-shot accuracy ---------------------------------------


def accuracy_vs_zero_shot_figure(tidy: pd.DataFrame, model: str) -> Figure:
    check_tidy(tidy)
    interventions = zero_shot_panels(tidy, model)
    if not interventions:
        raise GeniesError(f"{model}: no intervention besides {BASELINE} to compare with it")
    rows, columns = grid_shape(len(interventions), ZERO_SHOT_COLUMNS)
    fig = Figure(figsize=(max(5.6, 3.2 * columns + 0.6), 3.3 * rows + 1.2), layout="constrained")
    axes = panel_grid(fig, len(interventions), ZERO_SHOT_COLUMNS, sharex=True, sharey=True)
    for ax, intervention in zip(axes, interventions, strict=True):
        s = zero_shot_scatter(tidy, model, intervention)
        # An intervention that helps lies above y = x: the lower right is the emptier corner.
        draw_scatter(ax, s, MODEL_COLOURS[model], text_corner="lower right")
        ax.set_title(intervention_label(intervention, " "), fontsize=10)
    fig.supxlabel("zero-shot accuracy on the target (pairwise, 0–1)")
    fig.supylabel("generalisation accuracy on the target (pairwise, 0–1)")
    fig.suptitle(
        f"{model}: intervention accuracy against zero-shot accuracy\n"
        "one point per distinct shift (dashed: y = x)",
        fontsize=11,
    )
    return fig


# --- 4. scaling: smaller models against llama-30b ------------------------------------------------


def scaling_figure(tidy: pd.DataFrame) -> Figure:
    check_tidy(tidy)
    panels = scaling_panels(tidy)
    if not panels:
        raise GeniesError(f"no smaller model shares an intervention with {REFERENCE_MODEL}")
    models = list(dict.fromkeys(model for model, _ in panels))
    interventions = ordered([i for _, i in panels], PAPER_INTERVENTIONS, "intervention")
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
        draw_scatter(
            ax, scaling_scatter(tidy, model, intervention), MODEL_COLOURS[model], "upper left"
        )
        ax.set_title(f"{model}\n{intervention_label(intervention, ' ')}", fontsize=9)
    fig.supxlabel(f"{REFERENCE_MODEL} generalisation accuracy (pairwise, 0–1)")
    fig.supylabel("smaller model's generalisation accuracy (pairwise, 0–1)")
    fig.suptitle(
        f"Scaling: each smaller model's per-shift accuracy against {REFERENCE_MODEL}'s, same "
        "intervention and shift (dashed: y = x)"
    )
    return fig


# --- 5. extreme against probing GENIES shifts -----------------------------------------------------


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


def extreme_vs_probing_figure(tidy: pd.DataFrame) -> Figure:
    check_tidy(tidy)
    means = de_by_genies_label(tidy)
    labels = [label for label in GENIES_LABELS if label in set(means.genies_label)]
    if not labels:
        raise GeniesError("shift metrics table has no GENIES shift (genies_position > 0)")
    # zero_shot's DE is 0 by definition: an empty group of bars would only look like missing data.
    means = means[means.intervention != BASELINE]
    if means.empty:
        raise GeniesError(f"shift metrics table has no intervention besides {BASELINE}")
    models, interventions = models_of(means), interventions_of(means)
    fig = Figure(figsize=(13, 3.2 * len(labels) + 0.8), layout="constrained")
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
                color=MODEL_COLOURS[model],
                label=model,
            )
        shade_not_comparable(ax, interventions)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{label} shifts ({int(mine.shifts.max())} GENIES shifts)", fontsize=10)
        ax.set_ylabel("mean DE")
    model_legend(fig)
    axes[-1].set_xticks(range(len(interventions)), [intervention_label(i) for i in interventions])
    axes[-1].set_xlabel("intervention (DE = (accuracy − zero-shot accuracy) / TTC)")
    fig.suptitle("Mean differential elicitation over the extreme and the probing GENIES shifts")
    return fig


# --- 6. reliability diagrams ----------------------------------------------------------------------


class PooledProbabilities(NamedTuple):
    """The GENIES target files of one model and intervention, sorted into used and skipped."""

    used: dict[str, np.ndarray]  # path -> per-pair P(preferred response wins)
    skipped: dict[str, str]  # path -> why it is not pooled

    @property
    def probabilities(self) -> np.ndarray:
        return np.concatenate(list(self.used.values())) if self.used else np.empty(0)


def genies_target_paths(tidy: pd.DataFrame, model: str, intervention: str) -> list[str]:
    genies = genies_rows(tidy, model, intervention)
    return [f"{intervention}/{model}-{r.source}/{r.target}.json" for r in genies.itertuples()]


def skip_reason(intervention: str, probabilities) -> str:
    """Why a file's probabilities cannot enter a reliability diagram; "" if they can."""
    if intervention in NOT_COMPARABLE:
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

    Files of a not-comparable intervention (ccs), without probabilities or with only 0/1
    probabilities (whose calibration is meaningless) are skipped; a missing file raises.
    """
    check_index(index)
    top = index[~index.nested.astype(bool)].set_index("path").probabilities
    used, skipped = {}, {}
    for path in genies_target_paths(tidy, model, intervention):
        if path not in top.index:
            raise GeniesError(f"evaluation index: {path}: evaluation file missing")
        reason = skip_reason(intervention, top[path])
        if reason:
            skipped[path] = reason
        else:
            used[path] = metrics.probabilities(top[path])
    return PooledProbabilities(used, skipped)


def skipped_text(pooled: PooledProbabilities) -> str:
    reasons = pd.Series(list(pooled.skipped.values()), dtype=str).value_counts()
    return "\n".join(f"{count} skipped: {reason}" for reason, count in reasons.items())


def reliability_title(intervention: str, pooled: PooledProbabilities) -> str:
    """The panel's title: its calibration numbers, kept off the axes so they hide no point."""
    title = intervention_label(intervention, " ")
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


def reliability_figure(tidy: pd.DataFrame, index: pd.DataFrame, model: str) -> Figure:
    check_tidy(tidy)
    check_index(index)
    interventions = interventions_of(tidy[tidy.model == model])
    if not interventions:
        raise GeniesError(f"shift metrics table has no rows for model {model!r}")
    rows, columns = grid_shape(len(interventions), RELIABILITY_COLUMNS)
    fig = Figure(figsize=(4.0 * columns + 0.6, 4.3 * rows + 0.9), layout="constrained")
    grid = fig.add_gridspec(2 * rows, columns, height_ratios=[3, 1] * rows)
    for number, intervention in enumerate(interventions):
        row, column = divmod(number, columns)
        ax = fig.add_subplot(grid[2 * row, column])
        ax_counts = fig.add_subplot(grid[2 * row + 1, column], sharex=ax)
        pooled = pooled_probabilities(tidy, index, model, intervention)
        if pooled.used:
            draw_reliability(ax, ax_counts, pooled, MODEL_COLOURS[model])
        else:
            draw_unusable(ax, ax_counts, pooled)
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.set_title(reliability_title(intervention, pooled), fontsize=8.5)
        ax.set_ylabel("observed fraction preferred", fontsize=8)
    shifts = len(genies_shifts(tidy[tidy.model == model]))
    fig.suptitle(
        f"{model}: reliability diagrams pooling the {shifts} GENIES target files\n"
        f"both orientations of each pair, {RELIABILITY_BINS} bins (dashed: perfect calibration)"
    )
    return fig


# --- all figures ----------------------------------------------------------------------------------


def figure_builders(
    tidy: pd.DataFrame, summary: pd.DataFrame, index: pd.DataFrame
) -> dict[str, Callable[[], Figure]]:
    """Figure name (the PNG's stem) -> a function drawing it."""
    builders = {"genies_de": lambda: genies_de_figure(summary)}
    models = models_of(tidy)
    builders |= {f"heatmap_{m}": (lambda m=m: heatmap_figure(tidy, m)) for m in models}
    builders |= {
        f"accuracy_vs_zero_shot_{m}": (lambda m=m: accuracy_vs_zero_shot_figure(tidy, m))
        for m in models
        if zero_shot_panels(tidy, m)
    }
    builders["scaling"] = lambda: scaling_figure(tidy)
    builders["extreme_vs_probing"] = lambda: extreme_vs_probing_figure(tidy)
    builders |= {
        f"reliability_{m}": (lambda m=m: reliability_figure(tidy, index, m)) for m in models
    }
    return builders


def save_png(fig: Figure, path: str | os.PathLike) -> Path:
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return Path(path)


def make_paper_figures(
    tidy: pd.DataFrame, summary: pd.DataFrame, index: pd.DataFrame, out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Draw every figure, then write them as `<out_dir>/<name>.png`; name -> path.

    All figures are drawn before the first is written, so bad input writes nothing.
    """
    check_tidy(tidy)
    check_summary(summary)
    check_index(index)
    figures = {name: build() for name, build in figure_builders(tidy, summary, index).items()}
    return {name: save_png(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}
