"""`lat_stim_1`: mass-mean directions on residual hidden states of prompt + response (upstream's
"LAT" with the raw stimulus, SPEC 4.6; class means, not PCA, as upstream's code).

Features: hidden-state indices 0..L-1 (0 = embeddings) at the last token of template `raw`.
Upstream never considered the post-norm state L; neither do we, but the method declares every
residual state ("all") so that the cache's last state is L by construction, and drops it. The
pipeline, and where it differs from upstream, is in genies.interventions.directions.
"""

from genies.interventions import register
from genies.interventions.base import Features, PairData, Reads
from genies.interventions.directions import (
    HELD_OUT,
    DirectionMethod,
    hidden_states_before_norm,
    unit_count,
)


@register
class LatRawStimulus(DirectionMethod):
    name = "lat_stim_1"
    reads = Reads(templates={"raw": {"residual": "all", "heads": "none"}})
    top = "top_layers"
    hyperparameters = {
        "top_layers": unit_count("layer"),
        **HELD_OUT,
    }

    def unit_features(self, data: PairData, hyperparameters: dict) -> Features:
        return hidden_states_before_norm(data, "raw")
