"""The published data-mixing runs: a model trained on a source with a fraction of the target's
examples mixed in, evaluated on the target.

No upstream code for them survives; only their evaluation files do, in run folders named
`<model>-<source>-<target>-<percent>%` beside the plain `<model>-<source>` runs (LoRA and MMS).
A LoRA run folder also holds `<source>-<target>-<percent>%.json`, its evaluation on the mixture's
own test set. The name is parsed against the known model and distribution names, never split on
hyphens alone (distribution names hold underscores, model names hyphens).

The table has one row per (model, intervention, source, target, fraction): the target accuracy
recomputed from the per-pair probabilities and its bootstrap interval over the target's examples,
exactly as the per-shift tables (`genies.paper.tables`) compute them, the plain shift as fraction 0
where the same model and intervention published it, and the published target-tuned capability as
the ceiling. Where several files exist for one point (superseded nested copies), the top-level one
is used, else the first nested one by path; the others are listed, with whether they agree.
"""

import os
import re
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np
import pandas as pd

from genies.data.vendored import vendored_distributions
from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.files.tables import markdown_table, write_csv, write_markdown
from genies.paper.published import ARCHIVE
from genies.paper.tables import (
    PAPER_MODELS,
    TIE_RULE,
    Context,
    accuracy_of,
    capability_of,
    example_groups,
)

PERCENT_SUFFIX = re.compile(r"-(\d+(?:\.\d+)?)%$")
POINT_KEY = ["model", "intervention", "source", "target", "fraction"]
MARKDOWN_COLUMNS = [
    *POINT_KEY,
    "generalization_accuracy",
    "accuracy_low",
    "accuracy_high",
    "target_tuned_capability",
    "n_pairs",
    "file",
]
# MMS runs, and the plain shift, have no evaluation on the mixture's own test set
NO_MIXTURE = {"mixture_accuracy": np.nan, "mixture_pairs": pd.NA}


class MixingRun(NamedTuple):
    model: str
    source: str
    target: str
    # percent / 100, e.g. 0.1 for "-10%" (a share of the target's pairs: docs/paper.md)
    fraction: float


def is_mixing_run(run: str) -> bool:
    return run.endswith("%")


def parse_mixing_run(run: str, models, distributions, where: str) -> MixingRun:
    """`<model>-<source>-<target>-<percent>%`, each name one of the known ones; GeniesError naming
    `where` if no reading or more than one exists."""
    suffix = PERCENT_SUFFIX.search(run)
    percent = float(suffix.group(1)) if suffix else 0.0
    if not 0 < percent < 100:
        raise GeniesError(f"{where}: mixing run {run!r} does not end in -<percent>% (0 < % < 100)")
    stem = run[: suffix.start()]
    readings = [
        MixingRun(model, shift[:cut], shift[cut + 1 :], percent / 100)
        for model in models
        if stem.startswith(f"{model}-")
        for shift in [stem.removeprefix(f"{model}-")]
        for cut in (i for i, c in enumerate(shift) if c == "-")
        if shift[:cut] in distributions and shift[cut + 1 :] in distributions
    ]
    if len(readings) != 1:
        raise GeniesError(
            f"{where}: mixing run {run!r} is not <model>-<source>-<target>-<percent>% of known "
            f"names ({len(readings)} readings)"
        )
    return readings[0]


def mixing_index(index: pd.DataFrame, raw_dir: str | os.PathLike) -> pd.DataFrame:
    """The index rows of the mixing runs, with model, source, target and fraction parsed from the
    run name, and `evaluated`: "target" or "mixture" (the mixed set's own test split)."""
    archive = Path(raw_dir) / ARCHIVE
    distributions = set(vendored_distributions(raw_dir))
    rows = []
    for row in index[index.run.map(is_mixing_run)].itertuples(index=False):
        where = f"{archive}:evaluations/{row.path}"
        run = parse_mixing_run(row.run, PAPER_MODELS, distributions, where)
        evaluated = {run.target: "target", row.run.removeprefix(f"{run.model}-"): "mixture"}
        if row.target not in evaluated:
            raise GeniesError(f"{where}: neither the target nor the mixture of run {row.run!r}")
        rows.append(row._asdict() | run._asdict() | {"evaluated": evaluated[row.target]})
    columns = [*index.columns, "model", "source", "fraction", "evaluated"]
    return pd.DataFrame(rows, columns=columns)


def preferred_first(files: pd.DataFrame) -> pd.DataFrame:
    """Top-level files before the superseded nested copies, then by path."""
    return files.sort_values(["nested", "path"])


def target_point(files: pd.DataFrame, ctx) -> dict:
    """The accuracy of the preferred file of one point, its interval and which files it chose."""
    chosen, others = files.iloc[0], files.iloc[1:]
    where = f"{ctx.evaluations.archive}:evaluations/{chosen.path}"
    p = chosen.probabilities
    if p is None:
        raise GeniesError(f"{where}: no per-pair probabilities to recompute the accuracy from")
    accuracy = accuracy_of(chosen)
    groups = example_groups(ctx.pairs_per_example(chosen.target), len(p))
    low, high = metrics.accuracy_ci(
        p,
        groups=groups,
        ties=TIE_RULE,
        seed=ctx.seed,
        n_resamples=ctx.resamples,
        level=ctx.level,
    )
    return {
        "generalization_accuracy": accuracy,
        "accuracy_low": low,
        "accuracy_high": high,
        "interval_over": "pairs" if groups is None else "examples",
        "n_pairs": len(p),
        "file": f"evaluations/{chosen.path}",
        "other_files": ";".join(f"evaluations/{path}" for path in others.path),
        "other_files_agree": all(
            abs(accuracy_of(other) - accuracy) < 1e-12 for other in others.itertuples(index=False)
        ),
    }


def mixture_point(mixtures: pd.DataFrame, folder: str) -> dict:
    """The accuracy and pair count of the mixture's own test file in the chosen run folder."""
    mine = mixtures[mixtures.path.map(lambda path: str(PurePosixPath(path).parent)) == folder]
    if mine.empty:
        return NO_MIXTURE
    row = mine.iloc[0]
    return {"mixture_accuracy": accuracy_of(row), "mixture_pairs": len(row.probabilities)}


def mixing_table(
    index: pd.DataFrame, raw_dir, splits_dir, seed=0, resamples=2000, level=0.95
) -> pd.DataFrame:
    """One row per (model, intervention, source, target, fraction), fraction 0 the plain shift."""
    ctx = Context(index, raw_dir, splits_dir, seed, resamples, level)
    runs = mixing_index(index, raw_dir)
    mixtures = runs[runs.evaluated == "mixture"]
    rows = []
    for key, files in runs[runs.evaluated == "target"].groupby(POINT_KEY):
        point = dict(zip(POINT_KEY, key, strict=True)) | target_point(preferred_first(files), ctx)
        folder = str(PurePosixPath(point["file"]).parent.relative_to("evaluations"))
        rows.append(point | mixture_point(mixtures, folder))
    shifts = runs[["model", "intervention", "source", "target"]].drop_duplicates()
    for shift in shifts.itertuples(index=False):
        plain = ctx.evaluations.rows.get(
            (shift.intervention, f"{shift.model}-{shift.source}", shift.target)
        )
        if plain is not None:
            point = shift._asdict() | {"fraction": 0.0}
            rows.append(point | target_point(pd.DataFrame([plain]), ctx) | NO_MIXTURE)
    table = pd.DataFrame(rows)
    ceilings = [
        capability_of(ctx.ttc[row.model], ctx.raw_dir, row.model, row.target)
        for row in table.itertuples(index=False)
    ]
    table["target_tuned_capability"] = [c["best_intervention_accuracy"] for c in ceilings]
    table["target_tuned_capability_intervention"] = [c["best_intervention"] for c in ceilings]
    table["mixture_pairs"] = table.mixture_pairs.astype("Int64")
    order = table.model.map({m: i for i, m in enumerate(PAPER_MODELS)})
    return (
        table.assign(order=order)
        .sort_values(["order", "intervention", "source", "target", "fraction"])
        .drop(columns="order")
        .reset_index(drop=True)
    )


def write_mixing_table(table: pd.DataFrame, csv, md) -> None:
    write_csv(table, csv)
    write_markdown(
        md,
        "Published data-mixing runs",
        "Target accuracy of models trained on the source with a fraction of the target mixed in, "
        "recomputed from the published per-pair probabilities (genies.paper.mixing); fraction 0 "
        "is the plain shift, the ceiling the published target-tuned capability.\n\n"
        + markdown_table(table[MARKDOWN_COLUMNS]),
    )
