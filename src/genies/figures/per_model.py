"""The figures drawn once per model, for the paper's models and ours alike."""

from collections.abc import Callable

import pandas as pd
from matplotlib.figure import Figure

from genies.figures.heatmap import heatmap_figure
from genies.figures.scatter import accuracy_vs_zero_shot_figure, zero_shot_panels


def per_model_figures(
    heatmap_rows: pd.DataFrame, scatter_rows: pd.DataFrame, models: list[str], colours: dict
) -> dict[str, Callable[[], Figure]]:
    """Builders of each model's DE heatmap and, where it has an intervention besides zero-shot,
    its accuracy-vs-zero-shot scatter."""
    builders = {f"heatmap_{m}": (lambda m=m: heatmap_figure(heatmap_rows, m)) for m in models}
    builders |= {
        f"accuracy_vs_zero_shot_{m}": (
            lambda m=m: accuracy_vs_zero_shot_figure(scatter_rows, m, colours[m])
        )
        for m in models
        if zero_shot_panels(scatter_rows, m)
    }
    return builders
