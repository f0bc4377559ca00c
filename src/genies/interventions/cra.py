"""`cra`: contrastive representation arithmetic on attention heads (SPEC 4.8).

Features: per head, act(yes) - alpha * act(no), where act(yes) and act(no) are the head's
outputs before `o_proj` at the last token of prompt + response + "### Does the responder
successfully follow the instruction?" answered Yes, and No (templates `yes`, `no`); alpha = 1 as
upstream. Head selection, directions, the pair score (on the difference of the two responses'
features, f(B) - f(A); upstream wrote diff(B) - alpha diff(A), the same at alpha = 1) and
calibration are those of mms, in genies.interventions.directions, with its fixes; in particular
the train/validation split, which upstream drew before setting the seed, is seeded.
"""

from genies.errors import GeniesError
from genies.interventions import register
from genies.interventions.base import Features, PairData, Reads
from genies.interventions.directions import HELD_OUT, DirectionMethod, unit_count


@register
class ContrastiveArithmetic(DirectionMethod):
    name = "cra"
    reads = Reads(
        templates={
            "yes": {"residual": "none", "heads": "all"},
            "no": {"residual": "none", "heads": "all"},
        }
    )
    top = "top_heads"
    hyperparameters = {
        "top_heads": unit_count("head"),
        "alpha": {"type": "number", "default": 1.0, "description": "Weight of the No features."},
        **HELD_OUT,
    }

    def unit_features(self, data: PairData, hyperparameters: dict) -> Features:
        yes, no = data.features("yes", "heads"), data.features("no", "heads")
        if yes.units != no.units:
            raise GeniesError("cra: the yes and no activation caches hold different heads")
        alpha = hyperparameters["alpha"]
        return Features(
            yes.chosen - alpha * no.chosen, yes.rejected - alpha * no.rejected, yes.units
        )
