"""What a finished run can resolve: the smallest paired difference between two methods that its
contrasts would separate from zero, from the spread the run itself shows.

A contrast is resolved where its interval excludes zero, so at the run's counts a mean ΔDE is
resolved about when it exceeds its interval's half-width (the half on the side of zero). Per
model this prints the half-widths of its contrasts over the table's shifts (median and range),
the per-shift paired half-widths over the target's examples (median), and what those become at
other test-example counts (a per-shift half-width shrinks as 1/sqrt(examples); the mean over
shifts keeps a floor from how much the methods' gaps differ between shifts, which more examples
do not remove), and how many contrasts a family may hold for any to resolve after Holm's
adjustment, a bound set by the sources alone (no sign-flip p falls below 2/2^S). Reads
results/genies_contrasts.csv and results/genies_contrast_shifts.csv.

    python bench/resolution.py                    # this checkout's run
    python bench/resolution.py --run-dir /tmp/clone --examples 20 40
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from genies.evaluation.contrasts import holm_family_limit, sign_flip_floor


def half_widths(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Per row, the interval's half on the side of zero (the distance a mean must clear)."""
    mean, low, high = (frame[f"{metric}{end}"] for end in ("", "_low", "_high"))
    return np.where(mean >= 0, mean - low, high - mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("."))
    parser.add_argument("--examples", type=int, nargs="*", default=[20, 40, 80])
    parser.add_argument("--level", type=float, default=0.95, help="the run's bootstrap level")
    parser.add_argument("--resamples", type=int, default=2000, help="the run's resamples")
    args = parser.parse_args()
    summary = pd.read_csv(args.run_dir / "results/genies_contrasts.csv")
    shifts = pd.read_csv(args.run_dir / "results/genies_contrast_shifts.csv")
    table = pd.read_csv(args.run_dir / "results/genies_table.csv")
    for model, rows in summary.groupby("model", sort=False):
        own = shifts[shifts.model == model]
        mean_half = pd.Series(half_widths(rows, "de_difference"))
        shift_half = pd.Series(half_widths(own, "de_difference"))
        examples = table[table.model == model].target_examples.mean()
        resolved = int(rows.resolved.notna().sum())  # read_csv: an empty cell is NaN
        print(
            f"{model}: {len(rows)} contrasts over {rows.shifts.iloc[0]} shifts, {resolved} "
            f"resolved; {examples:.0f} test examples per target"
        )
        print(
            f"  mean ΔDE resolved beyond about {mean_half.median():.3f} (median half-width; "
            f"{mean_half.min():.3f} to {mean_half.max():.3f} over the contrasts)"
        )
        print(f"  one shift's ΔDE beyond about {shift_half.median():.3f} (median half-width)")
        for count in args.examples:
            scaled = shift_half.median() * np.sqrt(examples / count)
            print(f"    at {count} test examples per target: one shift's about {scaled:.3f}")
        sources, level = int(rows.sources.max()), args.level
        floor = sign_flip_floor(sources, args.resamples)
        most = holm_family_limit(sources, args.resamples, level)
        print(
            f"  after Holm at {level:.0%}: {sources} sources, smallest sign-flip p {floor:.4f}, so "
            f"a family of at most {most} contrasts can resolve any ({len(rows)} here)"
        )


if __name__ == "__main__":
    main()
