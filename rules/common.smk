from pathlib import Path

from genies.config import validate_config
from genies.vendored import SPLITS, vendored_distributions

# Fails here, before any job, on a bad key or an unknown name (with the allowed values).
CFG = validate_config(
    config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
)
RAW = CFG.raw_dir


wildcard_constraints:
    distribution="|".join(vendored_distributions(RAW)),
    split="|".join(SPLITS),
