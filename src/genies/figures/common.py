"""What every figure shares: input checks, the order and colour of models and interventions, the
shifts drawn, and writing the PNGs.

Figures are built in memory (matplotlib's object-oriented `Figure`, no pyplot state) and written
only once all of a set are drawn, so bad input raises GeniesError before any file exists.
"""

import itertools
import os
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.files.atomic import write_atomic
from genies.paper.tables import PAPER_INTERVENTIONS, PAPER_MODELS

DPI = 150
BASELINE = "zero_shot"
GENIES_LABELS = ("extreme", "probing")
# Okabe-Ito colours, distinguishable with colour-blindness. The paper's models keep theirs in every
# figure; any other model takes one of the rest.
PAPER_MODEL_COLOURS = {
    "openllama-3b": "#E69F00",
    "llama-7b": "#CC79A7",
    "llama-13b": "#009E73",
    "llama-30b": "#0072B2",
}
OTHER_MODEL_COLOURS = ("#D55E00", "#56B4E9", "#000000", "#F0E442")

TIDY_COLUMNS = (
    "model",
    "intervention",
    "source",
    "target",
    "generalization_accuracy",
    "baseline_accuracy",
    "differential_elicitation",
    "comparable",
    "label",
    "genies_position",
    "genies_label",
)
SUMMARY_COLUMNS = (
    "model",
    "intervention",
    "comparable",
    "differential_elicitation",
    "differential_elicitation_low",
    "differential_elicitation_high",
)


# --- input checks ---------------------------------------------------------------------------------


def require_columns(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise GeniesError(f"{what} lacks column(s): {', '.join(missing)}")


def check_tidy(tidy: pd.DataFrame) -> None:
    require_columns(tidy, TIDY_COLUMNS, "shift metrics table")
    if tidy.empty:
        raise GeniesError("shift metrics table has no rows")
    labels = set(genies_only(tidy).genies_label)
    if not labels <= set(GENIES_LABELS):
        unknown = ", ".join(sorted(labels - set(GENIES_LABELS)))
        raise GeniesError(f"shift metrics table: unknown genies_label(s) {unknown}")


def check_summary(summary: pd.DataFrame) -> None:
    require_columns(summary, SUMMARY_COLUMNS, "GENIES summary")


# --- order, colour and labels ---------------------------------------------------------------------


def ordered(names: Iterable[str], known: tuple[str, ...]) -> list[str]:
    """The distinct `names`: those of `known` in its order, then the others as they appear."""
    distinct = list(dict.fromkeys(names))
    return [n for n in known if n in distinct] + [n for n in distinct if n not in known]


def models_of(df: pd.DataFrame) -> list[str]:
    return ordered(df.model, PAPER_MODELS)


def interventions_of(df: pd.DataFrame) -> list[str]:
    return ordered(df.intervention, PAPER_INTERVENTIONS)


def model_colours(models: Iterable[str]) -> dict[str, str]:
    """A colour per model: the paper's fixed ones, then the rest of the palette in sorted order of
    the other names (repeating past four), so a set of models is always drawn alike."""
    others = sorted(set(models) - set(PAPER_MODEL_COLOURS))
    return PAPER_MODEL_COLOURS | dict(zip(others, itertools.cycle(OTHER_MODEL_COLOURS)))


def not_comparable(df: pd.DataFrame) -> set[str]:
    """Interventions with a row marked not comparable (ccs in the paper)."""
    return set(df.intervention[~df.comparable.astype(bool)])


def intervention_label(
    intervention: str, incomparable: Collection[str], separator: str = "\n"
) -> str:
    if intervention in incomparable:
        return f"{intervention}{separator}(not comparable)"
    return intervention


def shift_label(source: str, target: str) -> str:
    return f"{source} → {target}"


# --- rows and shifts ------------------------------------------------------------------------------


def genies_only(tidy: pd.DataFrame) -> pd.DataFrame:
    return tidy[tidy.genies_position > 0]


def rows_of(tidy: pd.DataFrame, model: str, intervention: str) -> pd.DataFrame:
    """The distinct shifts of one model and intervention."""
    mine = tidy[(tidy.model == model) & (tidy.intervention == intervention)]
    return metrics.distinct_shifts(mine)


def genies_rows(tidy: pd.DataFrame, model: str, intervention: str) -> pd.DataFrame:
    return genies_only(rows_of(tidy, model, intervention)).sort_values("genies_position")


def shifts_of(rows: pd.DataFrame) -> pd.DataFrame:
    """The distinct shifts (source, target, genies_label, genies_position) of `rows`: GENIES
    shifts in genies_position order, any other (position 0) first, in order of appearance."""
    shifts = metrics.distinct_shifts(rows).sort_values("genies_position", kind="stable")
    return shifts[["source", "target", "genies_label", "genies_position"]]


def genies_shifts(tidy: pd.DataFrame) -> pd.DataFrame:
    return shifts_of(genies_only(tidy))


def shift_kind(rows: pd.DataFrame) -> str:
    """What the shifts of `rows` are called in titles."""
    return "GENIES shift" if (rows.genies_position > 0).all() else "shift"


# --- writing --------------------------------------------------------------------------------------


def save_png(fig: Figure, path: str | os.PathLike) -> Path:
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return Path(path)


def write_figures(
    builders: dict[str, Callable[[], Figure]], out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Draw every figure, then write each as `<out_dir>/<name>.png`; name -> path.

    All are drawn before the first is written, so a figure that cannot be drawn writes nothing.
    """
    figures = {name: build() for name, build in builders.items()}
    return {name: save_png(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}
