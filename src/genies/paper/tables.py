"""The published GENIES tables, recomputed from the published per-example evaluations.

For model M, intervention I and shift S -> T with reference R (upstream's rules, checked file by
file against the published CSVs):
- generalization_accuracy: pairwise accuracy of `I/M-S/T.json` (ties count as correct, as
  upstream's trainer did; no published file has a tie that is not a discretised 0/1);
- baseline_accuracy: the same for `zero_shot/M-S/T.json` (baseline_intervention "zero_shot");
- source_ID_accuracy: the same for `I/M-S/S.json`;
- target_tuned_capability (TTC) and its intervention: the published
  `target_tuned_capability/M/T.json`, an input, since upstream never published the script that
  took its maximum over interventions (`target_tuned_capability.csv` says which values a stored
  R -> R evaluation explains);
- RMS_calibration_error: upstream's legacy formula on the target file's probabilities;
- differential_elicitation: (generalization_accuracy - baseline_accuracy) / TTC.
Only the top-level `I/<run>/<target>.json` files are read; the nested copies are superseded runs.
CCS files hold no probabilities: their accuracy is upstream's stored per-response accuracy with
an oracle sign, reported as is, without calibration, and marked not comparable.
"""

import os
from functools import cache, partial
from pathlib import Path

import numpy as np
import pandas as pd

from genies.data.shifts import Shift, ShiftRegistry
from genies.data.splits import read_split
from genies.data.vendored import load_vendored_json, read_manifest
from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.evaluation.shift_metrics import is_discretised, shift_numbers, upstream_table
from genies.files.tables import write_csv, write_markdown
from genies.paper.published import ARCHIVE

PAPER_MODELS = ("openllama-3b", "llama-7b", "llama-13b", "llama-30b")
PAPER_INTERVENTIONS = (
    "zero_shot",
    "few_shot",
    "lora_fine_tuning",
    "prompt_tuning",
    "mms",
    "lat_stim_1",
    "lat_stim_2",
    "cra",
    "ccs",
)
NOT_COMPARABLE = {"ccs": "per-response accuracy with an oracle sign, not pairwise accuracy"}
TIE_RULE = "correct"
TTC_DIR = "published/target_tuned_capability"


class PublishedEvaluations:
    """The top-level evaluation files of the index, by (intervention, run, target)."""

    def __init__(self, index: pd.DataFrame, raw_dir: str | os.PathLike):
        top = index[~index.nested]
        self.rows = {(r.intervention, r.run, r.target): r for r in top.itertuples(index=False)}
        self.archive = Path(raw_dir) / ARCHIVE

    def has_any(self, intervention: str, model: str, shifts: list[Shift]) -> bool:
        return any((intervention, f"{model}-{s.source}", s.target) in self.rows for s in shifts)

    def get(self, intervention: str, run: str, target: str):
        row = self.rows.get((intervention, run, target))
        if row is None:
            path = f"evaluations/{intervention}/{run}/{target}.json"
            raise GeniesError(f"{self.archive}:{path}: evaluation file missing")
        return row


def accuracy_of(row) -> float:
    if row.probabilities is None:
        return row.accuracy
    return metrics.pairwise_accuracy(row.probabilities, ties=TIE_RULE)


NOTE_KINDS = {
    "not_recomputable": "Stored accuracy not recomputable from the file's own probabilities "
    "(the recomputed value is reported)",
    "not_comparable": "Not comparable with the pairwise interventions",
    "discretised": "Probabilities discretised to 0/1: calibration and Brier meaningless",
    "distribution_id": "File records another distribution id (upstream renamed distributions)",
    "interval_over_pairs": "Pairs do not line up with the test split's examples: the accuracy "
    "interval resamples pairs, not examples (narrower where an example's pairs agree)",
}


def file_notes(row, target: str) -> list[tuple[str, str]]:
    """(kind, text) of what a reader of a number computed from this file must know."""
    notes, where = [], f"evaluations/{row.path}"
    if row.probabilities is None:
        return notes
    if is_discretised(row.probabilities):
        notes.append(("discretised", where))
    recomputed = accuracy_of(row)
    if abs(recomputed - row.accuracy) > 1e-9:
        notes.append(
            ("not_recomputable", f"{where}: stored {row.accuracy!r}, recomputed {recomputed!r}")
        )
    if row.distribution_id and row.distribution_id != target:
        notes.append(("distribution_id", f"{where}: {row.distribution_id!r}"))
    return notes


def load_ttc(raw_dir: str | os.PathLike, model: str) -> dict[str, dict]:
    prefix = f"{TTC_DIR}/{model}/"
    return {
        relpath.removeprefix(prefix).removesuffix(".json"): load_vendored_json(raw_dir, relpath)
        for relpath in read_manifest(raw_dir)
        if relpath.startswith(prefix)
    }


def capability_of(ttc: dict[str, dict], raw_dir, model: str, target: str) -> dict:
    """One model's published TTC record of `target` (`load_ttc`); GeniesError if none."""
    if target not in ttc:
        raise GeniesError(
            f"{raw_dir}/{TTC_DIR}/{model}/{target}.json: target-tuned capability missing"
        )
    return ttc[target]


def pairs_per_example(splits_dir: str | os.PathLike, target: str) -> np.ndarray:
    split = read_split(Path(splits_dir) / target / "test.parquet")
    return split.responses.map(len).to_numpy() - 1


def example_groups(per_example: np.ndarray, n_pairs: int):
    """The example each evaluation pair belongs to (pairs are stored example by example)."""
    if per_example.sum() != n_pairs:
        return None
    return np.repeat(np.arange(len(per_example)), per_example)


def shift_metrics(ctx, model: str, intervention: str, shift: Shift) -> tuple[dict, list[str]]:
    run = f"{model}-{shift.source}"
    target_file = ctx.evaluations.get(intervention, run, shift.target)
    baseline_file = ctx.evaluations.get("zero_shot", run, shift.target)
    source_file = ctx.evaluations.get(intervention, run, shift.source)
    ttc = capability_of(ctx.ttc[model], ctx.raw_dir, model, shift.target)
    p = target_file.probabilities
    groups = None if p is None else example_groups(ctx.pairs_per_example(shift.target), len(p))
    row = {
        "model": model,
        "intervention": intervention,
        "source": shift.source,
        "target": shift.target,
        "target_reference": shift.target_reference,
        "baseline_intervention": "zero_shot",
        "target_tuned_capability_intervention": ttc["best_intervention"],
        **shift_numbers(
            p,
            generalization=accuracy_of(target_file),
            baseline=accuracy_of(baseline_file),
            source=accuracy_of(source_file),
            capability=ttc["best_intervention_accuracy"],
            groups=groups,
            ties=TIE_RULE,
            seed=ctx.seed,
            resamples=ctx.resamples,
            level=ctx.level,
        ),
        "comparable": intervention not in NOT_COMPARABLE,
    }
    notes = [
        note
        for file, target in ((target_file, shift.target), (baseline_file, shift.target))
        for note in file_notes(file, target)
    ]
    notes += file_notes(source_file, shift.source)
    if p is not None and groups is None:
        per_example = ctx.pairs_per_example(shift.target)
        notes.append(
            (
                "interval_over_pairs",
                f"evaluations/{target_file.path}: {len(p)} pairs, the test split's "
                f"{len(per_example)} examples have {per_example.sum()}",
            )
        )
    if intervention in NOT_COMPARABLE:
        notes.append(("not_comparable", f"{intervention}: {NOT_COMPARABLE[intervention]}"))
    return row, notes


class Context:
    def __init__(self, index, raw_dir, splits_dir, seed: int, resamples: int, level: float):
        self.evaluations = PublishedEvaluations(index, raw_dir)
        self.raw_dir, self.splits_dir = raw_dir, splits_dir
        self.seed, self.resamples, self.level = seed, resamples, level
        self.ttc = {model: load_ttc(raw_dir, model) for model in PAPER_MODELS}
        self.pairs_per_example = cache(partial(pairs_per_example, splits_dir))


def recompute(
    index, registry: ShiftRegistry, raw_dir, splits_dir, seed=0, resamples=2000, level=0.95
):
    """(one row per model, intervention and distinct shift; one row per note)."""
    ctx = Context(index, raw_dir, splits_dir, seed, resamples, level)
    genies_position = {s.name: i for i, s in enumerate(registry.genies, start=1)}
    genies_label = {s.name: s.label for s in registry.genies}
    rows, notes = [], []
    for model in PAPER_MODELS:
        for intervention in PAPER_INTERVENTIONS:
            if not ctx.evaluations.has_any(intervention, model, registry.distinct):
                continue
            for shift in registry.distinct:
                row, row_notes = shift_metrics(ctx, model, intervention, shift)
                row.update(
                    label=shift.label,
                    category=shift.category,
                    genies_position=genies_position.get(shift.name, 0),
                    genies_label=genies_label.get(shift.name, ""),
                )
                rows.append(row)
                notes += [
                    {"model": model, "intervention": intervention, "shift": shift.name}
                    | {"kind": kind, "note": text}
                    for kind, text in row_notes
                ]
    return pd.DataFrame(rows), pd.DataFrame(
        notes, columns=["model", "intervention", "shift", "kind", "note"]
    )


def notes_markdown(model: str, intervention: str, notes: pd.DataFrame) -> str:
    lines = [
        f"Recomputed by genies from the published evaluation files of {model} / {intervention} "
        "(rules: genies.paper.tables).",
    ]
    if notes.empty:
        lines.append("\nNo caveats: every number was recomputed from its file.")
    for kind, title in NOTE_KINDS.items():
        mine = notes[notes.kind == kind].drop_duplicates(["shift", "note"])
        if mine.empty:
            continue
        lines.append(f"\n## {title}: {mine['shift'].nunique()} shifts\n")
        for note, group in mine.groupby("note", sort=False):
            shifts = list(group["shift"])
            where = f"all {len(shifts)} shifts" if len(shifts) > 3 else ", ".join(shifts)
            lines.append(f"- {where}: {note}")
    return "\n".join(lines) + "\n"


def write_tables(tidy: pd.DataFrame, notes: pd.DataFrame, registry: ShiftRegistry, out_dir) -> None:
    for (model, intervention), group in tidy.groupby(["model", "intervention"], sort=False):
        folder = Path(out_dir) / model / intervention
        write_csv(upstream_table(group, registry.genies), folder / "GENIES.csv")
        write_csv(upstream_table(group, registry.rows), folder / "all.csv")
        mine = notes[(notes.model == model) & (notes.intervention == intervention)]
        write_markdown(
            folder / "NOTES.md",
            f"{model} / {intervention}: notes",
            notes_markdown(model, intervention, mine),
        )


def ttc_traceability(index: pd.DataFrame, raw_dir) -> pd.DataFrame:
    """Which published TTC values a stored R -> R evaluation of some intervention explains."""
    top = index[~index.nested]
    rows = []
    for model in PAPER_MODELS:
        for target, ttc in load_ttc(raw_dir, model).items():
            reference = ttc.get("target_reference", target)
            own = top[(top.run == f"{model}-{reference}") & (top.target == reference)]
            accuracies = {r.intervention: accuracy_of(r) for r in own.itertuples(index=False)}
            best = max(accuracies, key=accuracies.get) if accuracies else ""
            value = ttc["best_intervention_accuracy"]
            rows.append(
                {
                    "model": model,
                    "target": target,
                    "target_reference": reference,
                    "published_ttc": value,
                    "published_intervention": ttc["best_intervention"],
                    "best_stored": accuracies.get(best, np.nan),
                    "best_stored_intervention": best,
                    "explained_by": ";".join(
                        k for k, v in accuracies.items() if abs(v - value) < 1e-12
                    ),
                }
            )
    table = pd.DataFrame(rows)
    table["traceable"] = table.explained_by != ""
    table["is_max_of_stored"] = np.isclose(table.published_ttc, table.best_stored, atol=1e-12)
    return table


def published_pairs(ctx: "Context"):
    """The evaluations of genies.evaluation.contrasts from the published files: a file's pairs
    by position (every method of a model scored the target's pairs in the same order), grouped
    by example where the test split's examples account for them. Each file is read once: every
    contrast of a method reads it again."""

    @cache
    def evaluations(model: str, intervention: str, source: str, target: str) -> pd.DataFrame:
        row = ctx.evaluations.get(intervention, f"{model}-{source}", target)
        if row.probabilities is None:
            raise GeniesError(f"evaluations/{row.path}: no probabilities to pair")
        p = np.asarray(row.probabilities)
        groups = example_groups(ctx.pairs_per_example(target), len(p))
        positions = np.arange(len(p)).astype(str)
        return pd.DataFrame(
            {
                "pair_id": positions,
                "example_id": positions if groups is None else groups.astype(str),
                "probability": p,
            }
        )

    return evaluations


def unpaired(ctx: "Context", model: str, intervention: str, shifts: pd.DataFrame) -> str:
    """Why `intervention`'s files of `model` cannot be paired with zero_shot's on the target
    pairs of `shifts` (no probabilities, or another count of pairs, whose ids the files lack);
    "" where they can."""
    for source, target in shifts[["source", "target"]].itertuples(index=False):
        run = f"{model}-{source}"
        row = ctx.evaluations.get(intervention, run, target)
        base = ctx.evaluations.get("zero_shot", run, target).probabilities
        if row.probabilities is None:
            return f"evaluations/{row.path} holds no probabilities"
        if len(row.probabilities) != len(base):
            return (
                f"evaluations/{row.path} scores {len(row.probabilities)} pairs, "
                f"evaluations/zero_shot/{run}/{target}.json {len(base)}, without pair ids"
            )
    return ""


def paper_contrasts(tidy: pd.DataFrame, ctx: "Context"):
    """(per-shift rows, summary, {(model, intervention): why left out}) of the default contrasts
    of each published model among its interventions whose pairs line up with zero_shot's."""
    from genies.evaluation.contrasts import contrast_summary, default_contrasts, shift_contrasts

    bootstrap = {"seed": ctx.seed, "resamples": ctx.resamples, "level": ctx.level}
    tables, left_out = [], {}
    for model, rows in tidy.groupby("model", sort=False):
        present = [i for i in PAPER_INTERVENTIONS if i in set(rows.intervention)]
        shifts = rows[rows.intervention == "zero_shot"]
        for intervention in present:
            if why := unpaired(ctx, model, intervention, shifts):
                left_out[model, intervention] = why
        paired = [i for i in present if (model, i) not in left_out]
        tables.append(
            shift_contrasts(
                rows,
                published_pairs(ctx),
                default_contrasts(paired, trained=paired),  # all but zero_shot learn
                TIE_RULE,
                bootstrap,
                lambda m, a, b, s, t: f"evaluations/{{{a},{b}}}/{m}-{s}/{t}.json",
            )
        )
    shifts = pd.concat(tables, ignore_index=True)
    return shifts, contrast_summary(shifts[shifts.genies_position > 0], bootstrap), left_out
