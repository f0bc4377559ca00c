"""`lat_stim_2`: as lat_stim_1, on the LAT stimulus template (SPEC 4.7): prompt + "Consider the
extent to which the responder follows the instruction below.\\n" + response + "\\n\\nThe
probability that the responder followed the instruction" (genies.models.templates).

Features: hidden-state indices 0..L-1 at the last token of template `lat_stim`; the method
declares every residual state and drops the post-norm one, L. Upstream's eval.py failed with a
NameError (missing imports); the pipeline, and where it differs from upstream, is in
genies.interventions.directions.
"""

from genies.interventions import register
from genies.interventions.base import Features, PairData, Reads
from genies.interventions.directions import hidden_states_before_norm
from genies.interventions.lat_stim_1 import LatRawStimulus


@register
class LatStimulus(LatRawStimulus):
    name = "lat_stim_2"
    reads = Reads(templates={"lat_stim": {"residual": "all", "heads": "none"}})

    def unit_features(self, data: PairData, hyperparameters: dict) -> Features:
        return hidden_states_before_norm(data, "lat_stim")
