"""Figures of the pipeline's own runs: any model names, any interventions, any list of shifts.

Inputs: a tidy per-shift table with the columns of the paper's (`genies.paper.tables.recompute`)
and a summary with the columns of `genies.evaluation.summary.genies_summary`, over the same shifts
as the figures. The figures draw the GENIES shifts of the runs (genies_position > 0) if there are
any, else every shift; the zero-shot accuracy of a shift is its `baseline_accuracy`.
"""

import os
from pathlib import Path

import pandas as pd

from genies.figures.bars import extreme_vs_probing_figure, genies_de_figure
from genies.figures.common import (
    BASELINE,
    check_summary,
    check_tidy,
    genies_only,
    model_colours,
    models_of,
    shift_kind,
    shifts_of,
    write_figures,
)
from genies.figures.heatmap import heatmap_figure
from genies.figures.models_per_shift import models_per_shift_figure
from genies.figures.per_model import per_model_figures


def drawn_rows(tidy: pd.DataFrame) -> pd.DataFrame:
    """The GENIES shifts' rows if the runs have any, else all rows."""
    genies = genies_only(tidy)
    return tidy if genies.empty else genies


def make_model_figures(
    tidy: pd.DataFrame, summary: pd.DataFrame, out_dir: str | os.PathLike, level: float, extra=None
) -> dict[str, Path]:
    """Draw the figures of our runs, then write them as `<out_dir>/<name>.png`; name -> path.
    `level`: the intervals' level, as the tidy table and the summary were computed.

    Names, each written when it has something to show:
    - genies_de: mean DE per intervention with its bootstrap interval, one mark per model (if
      the summary has rows);
    - heatmap_<model>: DE per shift and intervention;
    - heatmap_all_<model>: the same over every shift of the runs (if they have shifts beyond the
      GENIES ones: the paper's 56, say, drawn with the shifts down the rows);
    - accuracy_vs_zero_shot_<model>: per-shift accuracy against zero-shot accuracy, Pearson r per
      panel (if the model has an intervention besides zero_shot);
    - extreme_vs_probing: mean DE over the extreme and the probing GENIES shifts (if there are
      GENIES shifts with an intervention besides zero_shot); extreme_vs_probing_all: the same
      over every shift of the runs by its label (if they have shifts beyond the GENIES ones);
    - models_per_shift: per intervention, each shift's accuracy per model side by side (if the
      runs have two models or more);
    and the `extra` builders given (name -> function drawing a figure).
    All are drawn before the first is written, so bad input writes nothing.
    """
    check_tidy(tidy)
    # genies_summary of a run without a GENIES shift is empty, columns and all: nothing to check.
    if not summary.empty:
        check_summary(summary)
    rows = drawn_rows(tidy)
    models = models_of(rows)
    colours = model_colours([*models, *summary.get("model", [])])
    builders = {}
    if not summary.empty:
        builders["genies_de"] = lambda: genies_de_figure(
            summary, colours, level, f"{shift_kind(rows)}s"
        )
    builders |= per_model_figures(rows, rows, models, colours)
    beyond_genies = len(shifts_of(tidy)) > len(shifts_of(rows))
    if beyond_genies:
        builders |= {f"heatmap_all_{m}": (lambda m=m: heatmap_figure(tidy, m)) for m in models}
    if (genies_only(tidy).intervention != BASELINE).any():
        builders["extreme_vs_probing"] = lambda: extreme_vs_probing_figure(tidy, colours)
        if beyond_genies:
            builders["extreme_vs_probing_all"] = lambda: extreme_vs_probing_figure(
                tidy, colours, over_all=True
            )
    if len(models) > 1:
        builders["models_per_shift"] = lambda: models_per_shift_figure(rows, colours, level)
    return write_figures(builders | (extra or {}), out_dir)
