"""`mms`: mass-mean shift on attention heads (upstream's ITI-style `mms`, SPEC 4.5).

Features: each head's output before `o_proj` at the last token of prompt + response (template
`raw`), for every head of every layer. The pipeline, and where it differs from upstream, is in
genies.interventions.directions.
"""

from genies.interventions import register
from genies.interventions.base import Features, PairData, Reads
from genies.interventions.directions import HELD_OUT, DirectionMethod, unit_count


@register
class MassMeanShift(DirectionMethod):
    name = "mms"
    reads = Reads(templates={"raw": {"residual": "none", "heads": "all"}})
    top = "top_heads"
    hyperparameters = {"top_heads": unit_count("head"), **HELD_OUT}

    def unit_features(self, data: PairData, hyperparameters: dict) -> Features:
        return data.features("raw", "heads")
