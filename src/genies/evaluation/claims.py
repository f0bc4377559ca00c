"""The paper's claims that per-shift tables can test, each re-tested by one statistic.

A claim names a statistic, the value it is tested against (0 for a difference or a correlation,
chance for an accuracy) and the side it predicts. The verdict, at the configured level:
supported where the statistic's interval lies wholly on the claimed side, contradicted where it
lies wholly on the other, not resolved where it holds the null value; not testable, with the
reason, where the run lacks what the statistic needs (one model, no probing shift, a method not
run). A count claim ("at or below chance on k of the 15 shifts") is bounded by the shifts whose
own interval lies below chance and those whose interval reaches down to it: supported where at
least k lie below, contradicted where fewer than k reach it, not resolved between. Intervals
resample sources, each with all its shifts, as the table's do. Each claim is tested at the level
on its own, without adjustment across claims; the contrasts behind the first one carry their
Holm-adjusted p's in their own table.

The paper's body text is not available to this project; quotes are from its abstract, and the
claims it does not state there are worded as the GENIES reproduction's issue 34 words them.
"""

import sys
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from genies.errors import GeniesError
from genies.evaluation import metrics
from genies.evaluation.contrasts import BASELINES
from genies.evaluation.genies_table import read_tidy
from genies.files.tables import markdown_table, write_csv, write_markdown

FINE_TUNING = "lora_fine_tuning"
INTERPRETABILITY = ("mms", "lat_stim_1", "lat_stim_2")
CHANCE = 0.5
CHANCE_SHIFTS = 6  # of the 15 GENIES shifts, where the best intervention is at or below chance
PAPER_R = 0.7  # generalisation accuracy against zero-shot accuracy, as issue 34 reports it
ABSTRACT_INTERPRETABILITY = (
    "Techniques for interpreting reward models' internal representations achieve better "
    "generalization than standard fine-tuning, but still frequently fail to distinguish "
    "instruction-following from conflated behaviors."
)
ABSTRACT_PERSONAS = (
    "We find that reward models do not learn to evaluate 'instruction-following' by default "
    "and instead favor personas that resemble internet text."
)
PARAPHRASE = "paraphrase (issue 34)"  # a claim the abstract does not state
SUPPORTED, CONTRADICTED, NOT_RESOLVED = "supported", "contradicted", "not resolved"
COLUMNS = [
    "claim", "model", "quote", "section", "statistic", "estimate", "low", "high",
    "tested_against", "verdict", "note",
]  # fmt: skip


class Claim(NamedTuple):
    name: str
    quote: str
    section: str
    statistic: str


CLAIMS = {
    claim.name: claim
    for claim in (
        Claim(
            "interpretability_beats_fine_tuning",
            ABSTRACT_INTERPRETABILITY,
            "Abstract",
            "paired mean DE difference, method - lora_fine_tuning, over the GENIES shifts",
        ),
        Claim(
            "accuracy_tracks_zero_shot",
            f"Generalisation accuracy correlates with zero-shot accuracy (r about {PAPER_R}).",
            PARAPHRASE,
            "Pearson r over the distinct shifts: lora_fine_tuning's generalisation accuracy "
            "against zero-shot accuracy on the target",
        ),
        Claim(
            "extreme_beats_probing",
            "Extreme shifts generalise better than probing shifts.",
            PARAPHRASE,
            "lora_fine_tuning's mean DE over the distinct extreme shifts minus over the probing",
        ),
        Claim(
            "small_predicts_large",
            "Small models' generalisation predicts the larger ones'.",
            PARAPHRASE,
            "Pearson r over the shared distinct shifts: lora_fine_tuning's generalisation "
            "accuracy, this model against the table's last one (the paper's largest)",
        ),
        Claim(
            "best_at_chance",
            f"The best intervention is at or below chance on {CHANCE_SHIFTS} of the 15 GENIES "
            "shifts.",
            PARAPHRASE,
            "GENIES shifts where the best intervention (highest mean DE) scores at or below "
            "0.5; low/high: those whose own interval lies below 0.5 / reaches 0.5",
        ),
        Claim(
            "personas_over_instructions",
            ABSTRACT_PERSONAS,
            "Abstract",
            "lora_fine_tuning's mean generalisation accuracy over the unwanted-personas shifts "
            "(interval resampling their targets: they share one or two sources' fitted states)",
        ),
    )
}


def verdict(low: float, high: float, null: float, side: str) -> str:
    """`side` ">" or "<": the side of `null` the claim predicts; no interval (every resample
    undefined: a constant variable) resolves nothing."""
    if not (np.isfinite(low) and np.isfinite(high)) or low <= null <= high:
        return NOT_RESOLVED
    return SUPPORTED if (low > null) == (side == ">") else CONTRADICTED


def count_verdict(below: int, reaching: int, claimed: int) -> str:
    if below >= claimed:
        return SUPPORTED
    return CONTRADICTED if reaching < claimed else NOT_RESOLVED


def statistic_interval(
    statistic: Callable[[np.ndarray], float], sources, bootstrap: dict
) -> tuple[float, float, float]:
    """(statistic over all rows, low, high): `statistic` takes row indices; the interval is the
    percentile one over resamples of sources, each with all its rows. Resamples where the
    statistic is undefined (NaN: a constant variable, a label drawn out) are left out."""
    codes, uniques = pd.factorize(np.asarray(sources))
    members = [np.flatnonzero(codes == c) for c in range(len(uniques))]
    drawn = np.random.default_rng(bootstrap["seed"]).integers(
        0, len(members), size=(bootstrap["resamples"], len(members))
    )
    values = np.array([statistic(np.concatenate([members[c] for c in row])) for row in drawn])
    values = values[~np.isnan(values)]
    level = bootstrap["level"]
    if values.size == 0:
        return statistic(np.arange(len(codes))), np.nan, np.nan
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return statistic(np.arange(len(codes))), float(low), float(high)


def row(claim: str, model: str, verdict_: str, note: str = "", **numbers) -> dict:
    spec = CLAIMS[claim]
    return {
        "claim": claim,
        "model": model,
        "quote": spec.quote,
        "section": spec.section,
        "statistic": spec.statistic,
        "estimate": numbers.get("estimate", np.nan),
        "low": numbers.get("low", np.nan),
        "high": numbers.get("high", np.nan),
        "tested_against": numbers.get("against", ""),
        "verdict": verdict_,
        "note": note,
    }


def untestable(claim: str, model: str, why: str) -> dict:
    return row(claim, model, "not testable", why)


def shifts_of(tidy: pd.DataFrame, model: str, intervention: str) -> pd.DataFrame:
    rows = tidy[(tidy.model == model) & (tidy.intervention == intervention)]
    return metrics.distinct_shifts(rows).reset_index(drop=True)


def interpretability_rows(tidy: pd.DataFrame, model: str, contrasts: pd.DataFrame) -> list[dict]:
    """Each interpretability method against fine-tuning, from the paired contrasts' summary."""
    mine = contrasts[contrasts.model == model]
    run = set(tidy.intervention[tidy.model == model])
    name = "interpretability_beats_fine_tuning"
    rows = []
    for method in INTERPRETABILITY:
        forward = mine[(mine["first"] == method) & (mine.second == FINE_TUNING)]
        backward = mine[(mine["first"] == FINE_TUNING) & (mine.second == method)]
        if len(forward) + len(backward) == 0:
            absent = [m for m in (method, FINE_TUNING) if m not in run]
            why = f"{absent[0]} not run" if absent else f"no contrast {method} - {FINE_TUNING}"
            rows.append(untestable(name, model, why))
            continue
        c = (forward if len(forward) else backward).iloc[0]
        sign = 1 if len(forward) else -1
        low, high = sorted(sign * c[f"de_difference_{end}"] for end in ("low", "high"))
        note = f"{method}; sign-flip p {c.p_sign_flip:.3g}, after Holm {c.p_sign_flip_holm:.3g}"
        rows.append(
            row(
                name,
                model,
                verdict(low, high, 0, ">"),
                note,
                estimate=sign * c.de_difference,
                low=low,
                high=high,
                against="0",
            )
        )
    return rows


def correlation_row(claim, model, x, y, sources, bootstrap, note="") -> dict:
    r, low, high = statistic_interval(lambda i: metrics.pearson(x[i], y[i]), sources, bootstrap)
    return row(
        claim, model, verdict(low, high, 0, ">"), note, estimate=r, low=low, high=high, against="0"
    )


def zero_shot_row(tidy, model, bootstrap) -> dict:
    name = "accuracy_tracks_zero_shot"
    shifts = shifts_of(tidy, model, FINE_TUNING)
    if len(shifts) < 3:
        return untestable(name, model, f"{len(shifts)} shifts of {FINE_TUNING}")
    x, y = (shifts[c].to_numpy(float) for c in ("baseline_accuracy", "generalization_accuracy"))
    out = correlation_row(name, model, x, y, shifts.source, bootstrap)
    inside = out["low"] <= PAPER_R <= out["high"]
    out["note"] = (
        f"{len(shifts)} shifts; {PAPER_R} {'inside' if inside else 'outside'} the interval"
    )
    return out


def label_row(tidy, model, bootstrap) -> dict:
    name = "extreme_beats_probing"
    shifts = shifts_of(tidy, model, FINE_TUNING)
    missing = [label for label in ("extreme", "probing") if label not in set(shifts.label)]
    if missing:
        return untestable(name, model, f"no {missing[0]} shift of {FINE_TUNING}")
    de = shifts.differential_elicitation.to_numpy(float)
    extreme = (shifts.label == "extreme").to_numpy()

    def difference(i):
        e, p = de[i][extreme[i]], de[i][~extreme[i]]
        return e.mean() - p.mean() if e.size and p.size else np.nan

    estimate, low, high = statistic_interval(difference, shifts.source, bootstrap)
    note = f"{extreme.sum()} extreme, {(~extreme).sum()} probing shifts"
    return row(
        name,
        model,
        verdict(low, high, 0, ">"),
        note,
        estimate=estimate,
        low=low,
        high=high,
        against="0",
    )


def scaling_row(tidy, model, reference, bootstrap) -> dict:
    name = "small_predicts_large"
    columns = ["source", "target", "generalization_accuracy"]
    both = shifts_of(tidy, model, FINE_TUNING)[columns].merge(
        shifts_of(tidy, reference, FINE_TUNING)[columns], on=metrics.SHIFT_KEY
    )
    if len(both) < 3:
        return untestable(name, model, f"{len(both)} shifts shared with {reference}")
    x, y = (both[f"generalization_accuracy_{s}"].to_numpy(float) for s in ("x", "y"))
    return correlation_row(
        name, model, x, y, both.source, bootstrap, f"against {reference}, {len(both)} shared shifts"
    )


def chance_row(tidy, model) -> dict:
    name = "best_at_chance"
    genies = tidy[(tidy.model == model) & (tidy.genies_position > 0)]
    if (count := genies.genies_position.nunique()) < 15:
        return untestable(name, model, f"{count} of the 15 GENIES shifts")
    tuned = genies[~genies.intervention.isin(BASELINES)]
    if tuned.empty:
        return untestable(name, model, "no intervention but the baselines")
    best = tuned.groupby("intervention", sort=False).differential_elicitation.mean().idxmax()
    shifts = metrics.distinct_shifts(tuned[tuned.intervention == best])
    at = int((shifts.generalization_accuracy <= CHANCE).sum())
    below = int((shifts.accuracy_high < CHANCE).sum())
    reaching = int((shifts.accuracy_low <= CHANCE).sum())
    return row(
        name,
        model,
        count_verdict(below, reaching, CHANCE_SHIFTS),
        f"best: {best}",
        estimate=at,
        low=below,
        high=reaching,
        against=f"{CHANCE_SHIFTS} shifts",
    )


def personas_row(tidy, model, bootstrap) -> dict:
    name = "personas_over_instructions"
    shifts = shifts_of(tidy, model, FINE_TUNING)
    shifts = shifts[shifts.category == "unwanted_personas"]
    if shifts.empty:
        return untestable(name, model, f"no unwanted-personas shift of {FINE_TUNING}")
    estimate, low, high = metrics.shift_mean_with_ci(
        shifts.generalization_accuracy.to_numpy(float),
        bootstrap["seed"],
        bootstrap["resamples"],
        bootstrap["level"],
    )
    return row(
        name,
        model,
        verdict(low, high, CHANCE, "<"),
        f"{len(shifts)} shifts",
        estimate=estimate,
        low=low,
        high=high,
        against=str(CHANCE),
    )


def claims_table(tidy: pd.DataFrame, contrasts: pd.DataFrame, bootstrap: dict) -> pd.DataFrame:
    """One row per claim and model; the last model in the table is the scaling reference."""
    models = list(dict.fromkeys(tidy.model))
    rows = []
    for model in models:
        rows += interpretability_rows(tidy, model, contrasts)
        rows.append(zero_shot_row(tidy, model, bootstrap))
        rows.append(label_row(tidy, model, bootstrap))
        if model != models[-1]:
            rows.append(scaling_row(tidy, model, models[-1], bootstrap))
        elif len(models) == 1:
            rows.append(untestable("small_predicts_large", model, "one model"))
        rows.append(chance_row(tidy, model))
        rows.append(personas_row(tidy, model, bootstrap))
    order = {name: i for i, name in enumerate(CLAIMS)}
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values("claim", key=lambda c: c.map(order), kind="stable")


def claims_markdown(table: pd.DataFrame, level: float, resamples: int) -> str:
    lines = [
        f"Each claim is tested by one statistic with its {level:.0%} interval ({resamples} "
        "bootstrap resamples of sources, each with all its shifts, unless the statistic says "
        "otherwise). Verdict: supported where the interval lies wholly on the side the claim "
        "predicts of the value it is tested against, contradicted where wholly on the other "
        "side, not resolved where it holds that value; a count claim is supported where at "
        "least the claimed count of shifts lie below chance by their own interval, "
        "contradicted where fewer reach chance. No adjustment across claims. The paper's body "
        "text is not available to this project: quotes are from its abstract, other claims "
        "are worded as issue 34 words them.",
        "",
    ]
    for spec in CLAIMS.values():
        lines.append(
            f'- **{spec.name}** ({spec.section}): "{spec.quote}" Statistic: {spec.statistic}.'
        )
    shown = pd.DataFrame(
        {
            "claim": table.claim,
            "model": table.model,
            "estimate [low, high]": [
                "" if np.isnan(e) else f"{e:{f}} [{lo:{f}}, {hi:{f}}]"
                for e, lo, hi, f in zip(
                    table.estimate,
                    table.low,
                    table.high,
                    np.where(table.claim == "best_at_chance", ".0f", ".3f"),
                    strict=True,
                )
            ],
            "against": table.tested_against,
            "verdict": table.verdict,
            "note": table.note,
        }
    )
    return "\n".join(lines) + "\n\n" + markdown_table(shown) + "\n"


def claims_job(tidy_paths: list[str], contrasts_csv: str, bootstrap: dict, csv, md, title):
    try:
        contrasts = pd.read_csv(contrasts_csv)
    except (OSError, ValueError) as exc:
        raise GeniesError(f"{contrasts_csv}: unreadable contrasts ({exc}); rebuild it") from exc
    table = claims_table(read_tidy(tidy_paths), contrasts, bootstrap)
    write_csv(table, csv)
    write_markdown(md, title, claims_markdown(table, bootstrap["level"], bootstrap["resamples"]))
    verdicts = ", ".join(f"{n} {v}" for v, n in table.verdict.value_counts().items())
    print(f"wrote {csv}: {len(table)} claims, {verdicts}", file=sys.stderr)
