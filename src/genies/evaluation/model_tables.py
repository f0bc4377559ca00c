"""Per-shift tables of our own models, from the evaluations the pipeline computed.

For model M, intervention I and shift S -> T with reference R (rules written down here, since
upstream's were partly lost):
- generalization_accuracy: pairwise accuracy of I fitted on S/train, on every pair of T/test;
- source_ID_accuracy: the same on S/test;
- baseline_accuracy: zero_shot on T/test (the untrained base model);
- target_tuned_capability (TTC): the maximum, over the configured interventions that compete for
  it (all but the chance baseline `random`: a maximum over chance draws measures luck), of the
  accuracy on R/test after fitting on R/train; the winning intervention is recorded (the first
  configured one on a tie). Upstream took a maximum over interventions too, by a script it never
  published. Chosen on the labels it is then scored on, this maximum is biased upward (a
  winner's curse, large at small counts), so El and DE beside it are the paper's rule;
- target_tuned_capability_heldout: cross-fitted. R/test's examples fall in two seeded halves
  (by a hash of seed and example id, sizes differing by at most one); each half is scored by
  the candidate with the best accuracy on the other half, and the two are pooled over pairs.
  No pair's label chooses the method that scores it. El and DE get `_heldout` columns from it
  (undefined, NaN, where R/test has fewer than two examples or the held-out capability is 0);
- then El, DE and the calibration numbers of genies.evaluation.shift_metrics, with a bootstrap
  interval over examples.
Ties (P = 0.5 exactly) count half: upstream counted them correct, which scores a constant 0.5
as accuracy 1.0.
"""

from collections.abc import Callable

import pandas as pd

from genies.data.pairs import seeded_choice
from genies.data.shifts import Shift, ShiftRegistry
from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.evaluation.contrasts import paired_differences
from genies.evaluation.shift_metrics import heldout_numbers, shift_numbers, upstream_table
from genies.files.tables import write_csv

TIE_RULE = "half"
BASELINE = "zero_shot"

# (intervention, source, distribution) -> the evaluation's pairs with their probabilities
Evaluations = Callable[[str, str, str], pd.DataFrame]


def accuracy(evaluation: pd.DataFrame) -> float:
    return metrics.pairwise_accuracy(evaluation.probability.to_numpy(), ties=TIE_RULE)


def target_tuned_capability(evaluations: Evaluations, candidates: list[str], reference: str):
    """(best accuracy on reference/test after fitting on reference/train, its intervention)."""
    scores = {name: accuracy(evaluations(name, reference, reference)) for name in candidates}
    best = max(scores, key=scores.get)  # the first of equal maxima, in config order
    return scores[best], best


def halves(example_ids, seed: int) -> dict[str, int]:
    """0 or 1 per example: the examples in the order of a seeded hash, the first half 0."""
    unique = sorted(set(example_ids))
    order = sorted(unique, key=lambda e: (seeded_choice(seed, f"capability:{e}", 2**64), e))
    return {example: int(i >= (len(order) + 1) // 2) for i, example in enumerate(order)}


def heldout_capability(evaluations: Evaluations, candidates: list[str], reference: str, seed):
    """(cross-fitted capability, the winner of each half joined by "|"): see the docstring."""
    scored = {name: evaluations(name, reference, reference) for name in candidates}
    first = next(iter(scored.values()))
    half_of = halves(first.example_id, seed)
    if len(half_of) < 2:
        return float("nan"), ""
    for name, frame in scored.items():
        if set(frame.example_id) != set(half_of):
            raise GeniesError(
                f"{reference}: {name} and {next(iter(scored))} were scored on different examples"
            )
    half = {name: frame.example_id.map(half_of) for name, frame in scored.items()}
    correct, winners = 0.0, []
    for part in (0, 1):
        other = {name: accuracy(frame[half[name] != part]) for name, frame in scored.items()}
        winner = max(other, key=other.get)  # the first of equal maxima, in config order
        held = scored[winner][half[winner] == part]
        correct += accuracy(held) * len(held)
        winners.append(winner)
    return correct / len(first), "|".join(dict.fromkeys(winners))


def model_shift_table(
    model: str,
    interventions: list[str],
    shifts: list[Shift],
    registry: ShiftRegistry,
    evaluations: Evaluations,
    comparable: dict[str, bool],
    candidates: list[str],
    bootstrap: dict,
) -> pd.DataFrame:
    """One row per intervention and shift, in the columns of the paper's tidy table (plus the
    examples behind each accuracy). `candidates` compete for the target-tuned capability;
    `bootstrap` holds the seed, resamples and level of the intervals."""
    genies_position = {s.name: i for i, s in enumerate(registry.genies, start=1)}
    genies_label = {s.name: s.label for s in registry.genies}
    rows = []
    for shift in shifts:
        capability, winner = target_tuned_capability(
            evaluations, candidates, shift.target_reference
        )
        heldout, heldout_winners = heldout_capability(
            evaluations, candidates, shift.target_reference, bootstrap["seed"]
        )
        baseline = accuracy(evaluations(BASELINE, shift.source, shift.target))
        for intervention in interventions:
            target = evaluations(intervention, shift.source, shift.target)
            source = evaluations(intervention, shift.source, shift.source)
            rows.append(
                {
                    "model": model,
                    "intervention": intervention,
                    "source": shift.source,
                    "target": shift.target,
                    "target_reference": shift.target_reference,
                    "baseline_intervention": BASELINE,
                    "target_tuned_capability_intervention": winner,
                    "target_tuned_capability_heldout_intervention": heldout_winners,
                    **shift_numbers(
                        target.probability.to_numpy(),
                        generalization=accuracy(target),
                        baseline=baseline,
                        source=accuracy(source),
                        capability=capability,
                        groups=target.example_id.to_numpy(),
                        ties=TIE_RULE,
                        **bootstrap,
                    ),
                    **heldout_numbers(accuracy(target), baseline, heldout),
                    "target_examples": target.example_id.nunique(),
                    "source_examples": source.example_id.nunique(),
                    "comparable": comparable[intervention],
                    "label": shift.label,
                    "category": shift.category,
                    "genies_position": genies_position.get(shift.name, 0),
                    "genies_label": genies_label.get(shift.name, ""),
                }
            )
    return pd.DataFrame(rows)


# (model, intervention, source, distribution) -> the evaluation's pairs with their probabilities
ModelEvaluations = Callable[[str, str, str, str], pd.DataFrame]


def models_per_shift(
    rows: pd.DataFrame, evaluations: ModelEvaluations, bootstrap: dict
) -> pd.DataFrame:
    """Models side by side: one row per (shift, intervention) of the tidy `rows`, one column per
    model (in order of appearance) holding its generalisation accuracy, and for each later model
    its difference from the first (`<model>_minus_<first>`) with a bootstrap interval over the
    target's examples, paired: both models' scores of the same pairs, whole examples resampled
    (`bootstrap`: seed, resamples, level). Accuracy, not DE: the models are scored on the same
    pairs, while DE divides by each model's own baseline and capability."""
    keys = ["source", "target", "intervention"]
    if rows.duplicated([*keys, "model"]).any():
        raise GeniesError("models per shift: a (model, shift, intervention) has several rows")
    models = list(dict.fromkeys(rows.model))
    accuracy = rows.set_index([*keys, "model"]).generalization_accuracy
    table = rows[["source", "target", "genies_position", "intervention"]].drop_duplicates(keys)
    table = table.reset_index(drop=True)
    for model in models:
        table[model] = [accuracy.get((*key, model), float("nan")) for key in table[keys].values]
    first = models[0]
    for model in models[1:]:
        name = f"{model}_minus_{first}"
        table[name] = table[model] - table[first]
        intervals = [
            paired_difference_interval(evaluations, (first, model), *key, bootstrap)
            if not pd.isna(difference)
            else (float("nan"), float("nan"))
            for key, difference in zip(table[keys].values, table[name], strict=True)
        ]
        table[[f"{name}_low", f"{name}_high"]] = intervals
    return table


def paired_difference_interval(
    evaluations: ModelEvaluations,
    models: tuple[str, str],
    source: str,
    target: str,
    intervention: str,
    bootstrap: dict,
) -> tuple[float, float]:
    """Bootstrap interval of the second model's accuracy minus the first's on the target's pairs,
    pair by pair, resampling examples; refused where the two scored different pairs."""
    first, second = (evaluations(m, intervention, source, target) for m in models)
    difference, examples = paired_differences(
        second, first, TIE_RULE, f"{target}: {models[0]} and {models[1]} ({intervention})"
    )
    return metrics.bootstrap_ci(
        difference,
        n_resamples=bootstrap["resamples"],
        level=bootstrap["level"],
        seed=bootstrap["seed"],
        groups=examples,
    )


def write_upstream_tables(
    tidy: pd.DataFrame, shifts: list[Shift], registry: ShiftRegistry, path: Callable
) -> None:
    """Upstream's per-intervention CSVs at `path(model, intervention, table)`: GENIES.csv (the
    configured GENIES shifts, in the benchmark's order) and all.csv (every configured shift, in
    config order)."""
    configured = {s.name for s in shifts}
    genies = [s for s in registry.genies if s.name in configured]
    for (model, intervention), group in tidy.groupby(["model", "intervention"], sort=False):
        write_csv(upstream_table(group, genies), path(model, intervention, "GENIES"))
        write_csv(upstream_table(group, shifts), path(model, intervention, "all"))
