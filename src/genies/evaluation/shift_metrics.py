"""The numbers of one shift for one model and intervention, for the paper's published evaluations
and for ours alike (one code path, so both tables mean the same thing).

For a shift S -> T with reference R, from the evaluation probabilities of the target test split:
generalisation accuracy (with its bootstrap interval over examples), elicitation and differential
elicitation against the zero-shot baseline accuracy and the target-tuned capability (TTC),
upstream's legacy RMS calibration error, the correct RMS calibration error and the Brier score.
Formulas: genies.evaluation.metrics.
"""

import numpy as np
import pandas as pd

from genies.data.shifts import Shift
from genies.evaluation import metrics

UPSTREAM_COLUMNS = [
    "source",
    "target",
    "target_reference",
    "generalization_accuracy",
    "baseline_accuracy",
    "baseline_intervention",
    "target_tuned_capability",
    "target_tuned_capability_intervention",
    "source_ID_accuracy",
    "RMS_calibration_error",
    "differential_elicitation",
]


def is_discretised(probabilities) -> bool:
    """All probabilities 0 or 1: argmax decisions stored, not probabilities."""
    return bool(np.isin(np.asarray(probabilities), (0.0, 1.0)).all())


def shift_numbers(
    p,
    generalization: float,
    baseline: float,
    source: float,
    capability: float,
    groups,
    ties: str,
    seed: int,
    resamples: int,
    level: float,
) -> dict:
    """The metric columns of one shift. `p` (None for a file without probabilities) gives the
    calibration and the interval; `groups` (None: pairs) the example of each pair."""
    row = {
        "generalization_accuracy": generalization,
        "baseline_accuracy": baseline,
        "target_tuned_capability": capability,
        "source_ID_accuracy": source,
        "RMS_calibration_error": np.nan if p is None else metrics.legacy_rms_calibration_error(p),
        "differential_elicitation": metrics.differential_elicitation(
            generalization, baseline, capability
        ),
        "elicitation": metrics.elicitation(generalization, capability),
        "baseline_elicitation": metrics.elicitation(baseline, capability),
        "rms_calibration_error": np.nan if p is None else metrics.rms_calibration_error(p),
        "brier_score": np.nan if p is None else metrics.brier_score(p),
        "n_pairs": 0 if p is None else len(p),
        # pairs scored P = 0.5 exactly, which the tie rule decides
        "tied_pairs": 0 if p is None else int(np.sum(np.asarray(p) == 0.5)),
        "discretised": p is not None and is_discretised(p),
        "accuracy_low": np.nan,
        "accuracy_high": np.nan,
    }
    if p is not None:
        row["accuracy_low"], row["accuracy_high"] = metrics.accuracy_ci(
            p, groups=groups, ties=ties, seed=seed, n_resamples=resamples, level=level
        )
    return row


def heldout_numbers(generalization: float, baseline: float, capability: float) -> dict:
    """El and DE against the held-out target-tuned capability (NaN where it is NaN or 0)."""
    defined = capability > 0  # False for NaN too
    return {
        "target_tuned_capability_heldout": capability,
        "elicitation_heldout": (
            metrics.elicitation(generalization, capability) if defined else np.nan
        ),
        "differential_elicitation_heldout": (
            metrics.differential_elicitation(generalization, baseline, capability)
            if defined
            else np.nan
        ),
    }


def upstream_table(tidy: pd.DataFrame, shifts: list[Shift]) -> pd.DataFrame:
    """Rows in the order of `shifts` (duplicates included, as upstream), upstream columns."""
    by_name = tidy.set_index(tidy.source + "->" + tidy.target)
    table = by_name.loc[[s.name for s in shifts], UPSTREAM_COLUMNS].reset_index(drop=True)
    table["target_reference"] = [s.target_reference for s in shifts]
    return table
