"""The paper's figures, recomputed from the published evaluations, and the table of every Pearson r
they show.

Inputs: the tidy per-shift table (`genies.paper.tables.recompute`), the GENIES summary
(`genies.evaluation.summary.genies_summary`) and the index of published evaluation files
(`genies.paper.published.read_index`). Only the paper's models and interventions are accepted:
the paper rules name one output per paper model. Heatmaps, the extreme/probing bars and the
reliability diagrams draw the GENIES shifts; the scatter plots every distinct shift.
"""

import os
from pathlib import Path

import pandas as pd

from genies.errors import GeniesError
from genies.figures.bars import extreme_vs_probing_figure, genies_de_figure
from genies.figures.common import (
    BASELINE,
    check_summary,
    check_tidy,
    genies_only,
    model_colours,
    models_of,
    write_figures,
)
from genies.figures.heatmap import heatmap_figure
from genies.figures.per_model import per_model_figures
from genies.figures.reliability import check_index, reliability_figure
from genies.figures.scatter import (
    REFERENCE_MODEL,
    Scatter,
    scaling_figure,
    scaling_panels,
    scaling_scatter,
    zero_shot_panels,
    zero_shot_scatter,
)
from genies.files.tables import write_csv
from genies.paper.tables import PAPER_INTERVENTIONS, PAPER_MODELS

CORRELATION_COLUMNS = ["figure", "model", "intervention", "compared_with", "r", "n"]


def require_known(names, known: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise GeniesError(f"unknown {what}(s) {', '.join(unknown)}; known: {', '.join(known)}")


def require_paper_names(df: pd.DataFrame) -> None:
    require_known(df.model, PAPER_MODELS, "model")
    require_known(df.intervention, PAPER_INTERVENTIONS, "intervention")


def check_paper_tidy(tidy: pd.DataFrame) -> None:
    check_tidy(tidy)
    require_paper_names(tidy)


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
    check_paper_tidy(tidy)
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


def make_paper_figures(
    tidy: pd.DataFrame,
    summary: pd.DataFrame,
    index: pd.DataFrame,
    out_dir: str | os.PathLike,
    level: float,
) -> dict[str, Path]:
    """Draw every paper figure, then write them as `<out_dir>/<name>.png`; name -> path.

    Names: genies_de, scaling, extreme_vs_probing (GENIES shifts), extreme_vs_probing_all (every
    distinct shift, by its label), and per model heatmap_<model> (the GENIES
    shifts), heatmap_all_<model> (every distinct shift), accuracy_vs_zero_shot_<model> (if it has
    an intervention besides zero_shot) and reliability_<model>. All are drawn before the first
    is written, so bad input writes nothing.
    """
    check_paper_tidy(tidy)
    check_summary(summary)
    require_paper_names(summary)
    check_index(index)
    models, genies = models_of(tidy), genies_only(tidy)
    colours = model_colours(models)
    builders = {"genies_de": lambda: genies_de_figure(summary, colours, level)}
    builders |= per_model_figures(genies, tidy, models, colours)
    builders |= {f"heatmap_all_{m}": (lambda m=m: heatmap_figure(tidy, m)) for m in models}
    builders["scaling"] = lambda: scaling_figure(tidy, colours)
    builders["extreme_vs_probing"] = lambda: extreme_vs_probing_figure(tidy, colours)
    builders["extreme_vs_probing_all"] = lambda: extreme_vs_probing_figure(
        tidy, colours, over_all=True
    )
    builders |= {
        f"reliability_{m}": (lambda m=m: reliability_figure(tidy, index, m, colours[m]))
        for m in models
    }
    return write_figures(builders, out_dir)
