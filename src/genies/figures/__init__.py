"""Figures of GENIES results: the paper's, recomputed from the published evaluations, and those of
the pipeline's own runs, drawn by the same figure code.

- `common`: input checks, the order and colour of models and interventions, the shifts drawn,
  writing the PNGs (built in memory, all drawn before any is written atomically);
- `layout`: panel grids, marks side by side, not-comparable shading, the model legend;
- `bars`: mean DE per intervention (GENIES mean with intervals; extreme against probing shifts);
- `heatmap`: one model's DE per shift and intervention;
- `scatter`: per-shift accuracy against zero-shot accuracy or llama-30b's, with Pearson r;
- `reliability`: reliability diagrams of the published probabilities;
- `mixing`: the published data-mixing runs, target accuracy against the mixed fraction;
- `paper`: the paper's figure set and its table of Pearson r (`make_paper_figures`,
  `correlation_table`, `write_correlations`);
- `ours`: the figure set of our own models' runs (`make_model_figures`).
"""

from genies.figures.ours import make_model_figures
from genies.figures.paper import correlation_table, make_paper_figures, write_correlations

__all__ = ["correlation_table", "make_model_figures", "make_paper_figures", "write_correlations"]
