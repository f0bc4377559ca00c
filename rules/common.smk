import json
from pathlib import Path

from genies.code_inputs import library_files
from genies.config import validate_config
from genies.paper.tables import PAPER_MODELS, TTC_DIR
from genies.data.shifts import load_shifts
from genies.data.vendored import SPLITS, vendored_distributions

# Fails here, before any job, on a bad key or an unknown name (with the allowed values).
CFG = validate_config(
    config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
)
RAW = CFG.raw_dir


# The published tables cover every distinct shift, whatever the config selects.
ALL_SHIFTS = load_shifts(RAW)
PAPER_TARGETS = sorted({shift.target for shift in ALL_SHIFTS.distinct})
TTC_FILES = sorted(str(path) for path in Path(RAW, TTC_DIR).rglob("*.json"))


def code(*modules):
    """The library files a job runs (derived from imports), as inputs: editing one reruns it."""
    return library_files("src", *modules)


def paper_figure(name, caption):
    return report(
        f"results/paper/figures/{name}.png",
        caption=f"../workflow/report/{caption}.rst",
        category="Paper reproduction",
        subcategory=caption,
    )


PAPER_FIGURES = {
    name: paper_figure(name, name)
    for name in ("genies_de", "scaling", "extreme_vs_probing")
} | {
    f"{kind}_{model}": paper_figure(f"{kind}_{model}", kind)
    for kind in ("heatmap", "accuracy_vs_zero_shot", "reliability")
    for model in PAPER_MODELS
}


def activation_splits(shifts):
    """(distribution, split) pairs the interventions of `shifts` read: the source's splits (to
    train and to measure in-distribution), the target's test split, the reference's splits.
    """
    pairs = set()
    for shift in shifts:
        pairs |= {
            (shift.source, "train"),
            (shift.source, "test"),
            (shift.target, "test"),
        }
        pairs |= {(shift.target_reference, "train"), (shift.target_reference, "test")}
    return sorted(pairs)


ACTIVATION_SPLITS = activation_splits(CFG.shifts)
TEMPLATES = list(CFG.activations["templates"])


def extraction_request(wildcards):
    """The JSON the extract command reads: dtypes, batching, and per template what to keep."""
    settings = CFG.models[wildcards.model]
    return json.dumps(
        {
            "templates": CFG.activations["templates"],
            "storage_dtype": CFG.activations["storage_dtype"],
            "padding_side": CFG.activations["padding_side"],
            "dtype": settings["dtype"],
            "batch_size": settings["batch_size"],
            "max_length": settings["max_length"],
        },
        separators=(",", ":"),
    )
