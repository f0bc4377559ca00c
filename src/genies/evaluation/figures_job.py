"""The figures job of the configured models: the GENIES table's shifts, drawn by genies.figures."""

from functools import partial
from pathlib import Path

import pandas as pd

from genies.evaluation.genies_table import read_tidy, table_shifts
from genies.evaluation.summary import shift_means
from genies.figures import make_model_figures
from genies.figures.contrasts import contrast_forest
from genies.figures.mixing import mixing_figure, mixing_means_figure
from genies.figures.training import training_figures
from genies.interventions.jobs import read_state_info


def genies_figures_job(
    tidy_paths: list[str],
    states: list[str],
    out_dir,
    seed,
    resamples,
    level,
    mixing=(),
    contrasts=None,
) -> dict[str, Path]:
    """The figures of the configured models, over the same shifts as the GENIES table, the
    training loss of the fitted states that recorded one, the mixing runs (`mixing`: their
    table and its means, if any) and the forest plot of each model's contrasts (`contrasts`:
    their summary CSV)."""
    tidy = read_tidy(tidy_paths)
    summary = shift_means(table_shifts(tidy), seed, resamples, level)
    extra = training_figures({path: read_state_info(path) for path in states})
    if contrasts:  # unresolved contrasts: an empty cell
        marks = {"resolved": str, "resolved_holm": str}
        compared = pd.read_csv(contrasts, dtype=marks).fillna(dict.fromkeys(marks, ""))
        for model, rows in compared.groupby("model", sort=False):
            extra[f"contrasts_{model}"] = partial(contrast_forest, rows)
        if compared.model.nunique() > 1:  # the models side by side
            extra["contrasts"] = partial(contrast_forest, compared)
    if mixing:
        table, means = (pd.read_csv(path) for path in mixing)
        extra["mixing"] = lambda: mixing_figure(table, level, "Data mixing of our models")
        extra["mixing_means"] = lambda: mixing_means_figure(
            means, level, "Data mixing of our models"
        )
    return make_model_figures(tidy, summary, out_dir, level, extra)
