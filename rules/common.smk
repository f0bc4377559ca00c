from pathlib import Path

from genies.config import validate_config
from genies.paper import PAPER_MODELS, TTC_DIR
from genies.shifts import load_shifts
from genies.vendored import SPLITS, vendored_distributions

# Fails here, before any job, on a bad key or an unknown name (with the allowed values).
CFG = validate_config(
    config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
)
RAW = CFG.raw_dir


wildcard_constraints:
    distribution="|".join(vendored_distributions(RAW)),
    split="|".join(SPLITS),


# The published tables cover every distinct shift, whatever the config selects.
ALL_SHIFTS = load_shifts(RAW)
PAPER_TARGETS = sorted({shift.target for shift in ALL_SHIFTS.distinct})
TTC_FILES = sorted(str(path) for path in Path(RAW, TTC_DIR).rglob("*.json"))
