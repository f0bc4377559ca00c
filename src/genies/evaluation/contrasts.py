"""Paired contrasts between interventions: which generalises better, by how much, how sure.

Two methods of one model are scored on the same target pairs, so most of what makes each one's
own interval wide (which shift is hard, where the base model leans) is shared and cancels in
their difference. For a contrast A - B and a shift S -> T:
- per pair i of T/test (matched by pair id; methods scored on other pairs are refused),
  d_i = c_A,i - c_B,i with c the pair's correctness under the table's tie rule; the accuracy
  difference is their mean, the DE difference that mean over T's target-tuned capability (both
  share the zero-shot baseline and the capability, which cancel: DE_A - DE_B = (acc_A - acc_B)
  / TTC). Its interval is a paired bootstrap over T's examples (an example's pairs move
  together), the capability held fixed. A shift is resolved for A (or B) where the interval
  lies above (below) zero.
- over the table's shifts (the GENIES ones): the mean per-shift difference with an interval
  that resamples sources, each with all its shifts (shifts sharing a source share its fitted
  state, as in the table's own intervals); a two-sided sign-flip p of that mean, flipping the
  signs of each source's differences together (exact over every flip up to 16 sources, else
  seeded random flips); and a Wilcoxon signed-rank p over the shifts (scipy, two-sided, zero
  differences dropped), which treats shifts as independent and is therefore the weaker evidence
  where sources repeat. With S sources no p that respects them falls below 2 / 2^S (0.0078 for
  GENIES' 8): that bounds how many contrasts a run can resolve after adjustment, and the notes
  say so. A percentile bootstrap p has no such floor, which is why it is not the one adjusted:
  with 8 clusters it is optimistic.
- with many contrasts, Holm's step-down adjustment of each p over the contrasts of one model
  (the family), beside the raw p. A contrast is "resolved" where its interval excludes zero at
  the configured level, "resolved after Holm" where its adjusted sign-flip p is below 1 - level.
Every resampling uses the configured seed, so each contrast sees the same resamples.
"""

import sys
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.files.tables import markdown_table, write_csv, write_markdown

BASELINES = ("zero_shot", "random")
SHIFT_COLUMNS = [
    "model", "first", "second", "source", "target", "genies_position", "pairs",
    "accuracy_difference", "accuracy_difference_low", "accuracy_difference_high",
    "de_difference", "de_difference_low", "de_difference_high", "better",
]  # fmt: skip
MEASURED_COLUMNS = [
    "model", "first", "second", "shifts", "sources",
    "de_difference", "de_difference_low", "de_difference_high",
    "accuracy_difference", "accuracy_difference_low", "accuracy_difference_high",
    "shifts_first_better", "shifts_second_better", "p_sign_flip", "p_wilcoxon",
]  # fmt: skip
SUMMARY_COLUMNS = MEASURED_COLUMNS + [
    "p_sign_flip_holm", "p_wilcoxon_holm", "resolved", "resolved_holm"
]  # fmt: skip

# (model, intervention, source, target) -> the target's pairs: pair_id, example_id, probability
Evaluations = Callable[[str, str, str, str], pd.DataFrame]


def default_contrasts(interventions: list[str], trained: Iterable[str]) -> list[tuple[str, str]]:
    """Every intervention against zero_shot and against random (those configured; zero_shot
    minus random once), then every pair of the trained ones in config order (earlier minus
    later)."""
    baselines = [name for name in BASELINES if name in interventions]
    others = [name for name in interventions if name not in BASELINES]
    trained = [name for name in others if name in set(trained)]
    return (
        [(name, baseline) for baseline in baselines for name in others]
        + [(a, b) for i, a in enumerate(baselines) for b in baselines[i + 1 :]]
        + [(a, b) for i, a in enumerate(trained) for b in trained[i + 1 :]]
    )


def paired_differences(first: pd.DataFrame, second: pd.DataFrame, ties: str, where: str):
    """(c_first - c_second per pair, the example of each pair), the pairs matched by pair id;
    GeniesError naming `where` (both files) where the two scored different pairs."""
    joined = first.merge(second, on="pair_id", suffixes=("_1", "_2"))
    if (
        len(joined) != len(first)
        or len(joined) != len(second)
        or (joined.example_id_1 != joined.example_id_2).any()
    ):
        raise GeniesError(
            f"{where}: scored on different pairs; they cannot be compared pair by pair"
        )
    difference = metrics.pair_scores(joined.probability_1, ties) - metrics.pair_scores(
        joined.probability_2, ties
    )
    return difference, joined.example_id_1.to_numpy()


def shift_contrasts(
    tidy: pd.DataFrame,
    evaluations: Evaluations,
    contrasts: list[tuple[str, str]],
    ties: str,
    bootstrap: dict,
    where: Callable[[str, str, str, str, str], str],
) -> pd.DataFrame:
    """One row per model, contrast and shift of the tidy per-shift table: the accuracy and DE
    differences with their paired intervals over the target's examples. `where(model, a, b,
    source, target)` names the two evaluations in an error."""
    rows = []
    for model, table in tidy.groupby("model", sort=False):
        by_method = {name: group.set_index(["source", "target"]) for name, group in
                     table.groupby("intervention", sort=False)}  # fmt: skip
        for first, second in contrasts:
            missing = [name for name in (first, second) if name not in by_method]
            if missing:
                raise GeniesError(f"contrast {first} - {second}: {model} has no {missing[0]}")
            for (source, target), shift in by_method[first].iterrows():
                difference, examples = paired_differences(
                    evaluations(model, first, source, target),
                    evaluations(model, second, source, target),
                    ties,
                    where(model, first, second, source, target),
                )
                low, high = metrics.bootstrap_ci(
                    difference,
                    n_resamples=bootstrap["resamples"],
                    level=bootstrap["level"],
                    seed=bootstrap["seed"],
                    groups=examples,
                )
                capability = shift.target_tuned_capability
                rows.append(
                    {
                        "model": model,
                        "first": first,
                        "second": second,
                        "source": source,
                        "target": target,
                        "genies_position": shift.genies_position,
                        "pairs": len(difference),
                        "accuracy_difference": difference.mean(),
                        "accuracy_difference_low": low,
                        "accuracy_difference_high": high,
                        "de_difference": difference.mean() / capability,
                        "de_difference_low": low / capability,
                        "de_difference_high": high / capability,
                        "better": first if low > 0 else second if high < 0 else "",
                    }
                )
    return pd.DataFrame(rows, columns=SHIFT_COLUMNS)


def source_interval(values, sources, bootstrap: dict) -> tuple[float, float, float]:
    """(mean, low, high), the percentile interval resampling sources, each with its shifts."""
    return metrics.shift_mean_with_ci(
        np.asarray(values, dtype=float),
        bootstrap["seed"],
        bootstrap["resamples"],
        bootstrap["level"],
        groups=np.asarray(sources),
    )


EXACT_FLIPS_UP_TO = 16  # sources; 2^16 flips, beyond which seeded random flips


def sign_flip_floor(sources: int, resamples: int) -> float:
    """The smallest p `sign_flip_p` can give."""
    return 2 / 2**sources if sources <= EXACT_FLIPS_UP_TO else 1 / (resamples + 1)


def holm_family_limit(sources: int, resamples: int, level: float) -> int:
    """The most contrasts a family may hold for Holm to resolve any at `level`: its first step
    needs p < (1 - level) / m, and no sign-flip p falls below `sign_flip_floor`."""
    return int(np.ceil((1 - level) / sign_flip_floor(sources, resamples))) - 1


def sign_flip_p(values, sources, bootstrap: dict) -> float:
    """Two-sided p of a zero mean: the share of sign flips, each source's values flipped
    together, whose |mean| reaches the observed one. Every flip up to `EXACT_FLIPS_UP_TO`
    sources (the smallest p is then 2 / 2^S), else seeded random ones, +1 each."""
    codes, _ = pd.factorize(np.asarray(sources))
    sums = np.bincount(codes, weights=np.asarray(values, dtype=float))
    exact = sums.size <= EXACT_FLIPS_UP_TO
    if exact:
        flips = 1 - 2 * ((np.arange(2**sums.size)[:, None] >> np.arange(sums.size)) & 1)
    else:
        rng = np.random.default_rng(bootstrap["seed"])
        flips = rng.choice([-1, 1], size=(bootstrap["resamples"], sums.size))
    reached = np.sum(np.abs(flips @ sums) >= abs(sums.sum()) * (1 - 1e-12))
    return float(reached / len(flips)) if exact else float((reached + 1) / (len(flips) + 1))


def wilcoxon_p(values) -> float:
    """Two-sided Wilcoxon signed-rank p over the shifts; 1.0 where every difference is 0."""
    from scipy import stats  # for the summaries only, not for every job reading this module

    values = np.asarray(values, dtype=float)
    if not np.any(values != 0):
        return 1.0
    return float(stats.wilcoxon(values, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given: the i-th smallest p times the
    number of p's not smaller in rank (m - i + 1), made monotone, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def contrast_summary(shift_rows: pd.DataFrame, bootstrap: dict) -> pd.DataFrame:
    """Per model and contrast, over the shifts of `shift_rows` (the table's): the mean DE and
    accuracy differences with source-resampled intervals, the shifts resolved each way, the
    sign-flip and Wilcoxon p's and their Holm adjustment over the model's contrasts."""
    rows = []
    keys = ["model", "first", "second"]
    for (model, first, second), group in shift_rows.groupby(keys, sort=False):
        de, de_low, de_high = source_interval(group.de_difference, group.source, bootstrap)
        acc, acc_low, acc_high = source_interval(group.accuracy_difference, group.source, bootstrap)
        p = sign_flip_p(group.de_difference, group.source, bootstrap)
        rows.append(
            [model, first, second, len(group), group.source.nunique(),
             de, de_low, de_high, acc, acc_low, acc_high,
             int((group.better == first).sum()), int((group.better == second).sum()),
             p, wilcoxon_p(group.de_difference)]
        )  # fmt: skip
    summary = pd.DataFrame(rows, columns=MEASURED_COLUMNS)
    for p in ("p_sign_flip", "p_wilcoxon"):
        summary[f"{p}_holm"] = summary.groupby("model")[p].transform(holm)
    low, high = summary.de_difference_low, summary.de_difference_high
    summary["resolved"] = np.where(
        low > 0, summary["first"], np.where(high < 0, summary.second, "")
    )
    after = summary.p_sign_flip_holm < 1 - bootstrap["level"]
    summary["resolved_holm"] = np.where(
        after, np.where(summary.de_difference > 0, summary["first"], summary.second), ""
    )
    return summary[SUMMARY_COLUMNS]


def intervals(group: pd.DataFrame, metric: str) -> list[str]:
    columns = [metric, f"{metric}_low", f"{metric}_high"]
    return [f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for m, lo, hi in group[columns].to_numpy()]


def adjusted(group: pd.DataFrame, p: str) -> list[str]:
    return [f"{raw:.3g} ({holm:.3g})" for raw, holm in group[[p, f"{p}_holm"]].to_numpy()]


def holm_bound(group: pd.DataFrame, level: float, resamples: int) -> str:
    """What the model's sources let Holm resolve: no sign-flip p falls below its floor."""
    sources, m = int(group.sources.max()), len(group)
    floor, first_step = sign_flip_floor(sources, resamples), (1 - level) / m
    said = (
        f"{sources} sources: no sign-flip p falls below {floor:.3g}; Holm's "
        f"first step over these {m} contrasts needs p < {first_step:.3g}"
    )
    if floor < first_step:
        return said + "."
    most = holm_family_limit(sources, resamples, level)
    family = f"only a family of at most {most} contrasts can" if most else "no family can"
    return f"{said}, so none can be resolved after Holm by construction: {family} resolve any."


def contrasts_markdown(summary: pd.DataFrame, level: float, resamples: int, left_out) -> str:
    """Per model, one row per contrast, with the notes a reader needs to use the p's."""
    lines = [
        f"Each contrast A - B is paired: both methods' scores of the same target pairs. ΔDE is the "
        f"mean over the shifts (the GENIES ones where there are any) of DE(A) - DE(B) = "
        f"(acc(A) - acc(B)) / TTC, with its "
        f"{level:.0%} percentile interval from {resamples} bootstrap resamples of sources (each "
        f"with all its shifts). Shifts +/-: shifts whose own paired interval (resampling the "
        f"target's examples) lies above / below zero. p flip: two-sided sign-flip p of the "
        f"mean, each source's differences flipped together (every flip up to "
        f"{EXACT_FLIPS_UP_TO} sources); p W: Wilcoxon "
        f"signed-rank over the shifts (treats shifts sharing a source as independent). Holm: "
        f"each p adjusted over the model's contrasts (Holm's step-down, family-wise error). "
        f"Resolved: the interval excludes zero; after Holm: the adjusted sign-flip p is below "
        f"{1 - level:.2f}.",
    ]
    lines += [f"\nLeft out, {model} {name}: {why}." for (model, name), why in left_out.items()]
    for model, group in summary.groupby("model", sort=False):
        table = pd.DataFrame(
            {
                "contrast": group["first"] + " - " + group.second,
                "ΔDE": intervals(group, "de_difference"),
                "Δacc": intervals(group, "accuracy_difference"),
                "shifts +/-": [
                    f"{a}/{b}/{n}"
                    for a, b, n in group[
                        ["shifts_first_better", "shifts_second_better", "shifts"]
                    ].to_numpy()
                ],
                "p flip (Holm)": adjusted(group, "p_sign_flip"),
                "p W (Holm)": adjusted(group, "p_wilcoxon"),
                "resolved": group.resolved,
                "after Holm": group.resolved_holm,
            }
        )
        lines += [f"\n## {model}\n", holm_bound(group, level, resamples), "", markdown_table(table)]
    return "\n".join(lines) + "\n"


def write_contrasts(summary, shift_rows, left_out, bootstrap: dict, csv, md, shifts_csv) -> None:
    write_csv(shift_rows, shifts_csv)
    write_csv(summary, csv)
    body = contrasts_markdown(summary, bootstrap["level"], bootstrap["resamples"], left_out)
    write_markdown(md, "Paired contrasts between interventions", body)
    resolved, after = ((summary[c] != "").sum() for c in ("resolved", "resolved_holm"))
    print(
        f"wrote {csv}: {len(summary)} contrasts, {resolved} resolved, {after} after Holm",
        file=sys.stderr,
    )
