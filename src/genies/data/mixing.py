"""Data mixing: training on a source's examples plus a fraction of the target's.

A reconstruction of the paper's `<model>-<source>-<target>-<pct>%` runs, whose code was never
published (the evidence of their evaluation files: docs/paper.md, "The published data-mixing runs"):
- the fraction is of the target's training examples that the run reads (every example, or the
  `max_examples` sample of the config): one training pair each, so of its training pairs, the unit
  the published mixture test sets count in; rounded down, as those hold exactly
  floor(fraction x the target's test pairs) of the target's; a fraction that draws none is refused;
- the drawn examples are added to the source's, none of which is left out (the published mixture
  test sets hold all of the source's test pairs);
- they are the first of the target's examples ranked by sha256("<seed>/<example_id>") (as every
  sample, genies.data.splits), so a larger fraction keeps a smaller one's examples.
"""

import math
import re

import pandas as pd

from genies.data.splits import sample_examples
from genies.errors import GeniesError

# how a mixed fit is filed: in place of the source, "<source>+<target>@<fraction>"
MIXED_SOURCE = re.compile(r"(?P<source>[a-z0-9_]+)\+(?P<target>[a-z0-9_]+)@(?P<fraction>0\.\d+)")


def mixed_source(source: str, target: str, fraction: float) -> str:
    return f"{source}+{target}@{fraction:g}"


def parse_mixed_source(name: str) -> tuple[str, str, float] | None:
    """(source, target, fraction) of a mixed fit's name; None for a plain source."""
    match = MIXED_SOURCE.fullmatch(name)
    return (match["source"], match["target"], float(match["fraction"])) if match else None


def mixed_count(fraction: float, examples: int) -> int:
    """How many of `examples` target examples a fraction mixes in: rounded down."""
    return math.floor(round(fraction * examples, 9))  # 0.29 x 100 is 28.999999999999996


def draw_mixed(target: pd.DataFrame, fraction: float, seed: int, where: str) -> pd.DataFrame:
    """The target examples mixed into a fit: `fraction` of `target`'s, drawn with `seed`."""
    count = mixed_count(fraction, len(target))
    if count == 0:
        raise GeniesError(
            f"{where}: a mixing fraction of {fraction} of {len(target)} training examples draws "
            "none; use a larger fraction or more examples"
        )
    return sample_examples(target, count, seed)
