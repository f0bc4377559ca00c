"""One owner per artifact path. Rules build their patterns from these functions (passing
"{wildcard}" strings), and the library reads and writes through them, so a layout change is one
edit here."""

from pathlib import PurePosixPath

# The source of a method that learns nothing from its source: its scores are the same for every
# source, so they are computed once.
UNTRAINED_SOURCE = "base"


def split_path(distribution: str, split: str) -> str:
    return f"data/splits/{distribution}/{split}.parquet"


def model_dir(model: str) -> str:
    return f"models/{model}"


def activation_path(model: str, template: str, distribution: str, split: str) -> str:
    return f"results/activations/{model}/{template}/{distribution}/{split}.safetensors"


def activation_sidecar_path(model: str, template: str, distribution: str, split: str) -> str:
    return str(
        PurePosixPath(activation_path(model, template, distribution, split)).with_suffix(".json")
    )


def state_path(model: str, intervention: str, source: str) -> str:
    """A method fitted on `source`'s training pairs: safetensors, with a JSON beside it."""
    return f"results/interventions/{model}/{intervention}/{source}.safetensors"


def state_info_path(path: str) -> str:
    return str(PurePosixPath(path).with_suffix(".json"))


def fit_work_dir(path) -> str:
    """A fit's own folder (training checkpoints) beside the state at `path`: it survives an
    interrupted job and goes once the state is written."""
    return f"{path}.work"


def evaluation_path(model: str, intervention: str, source: str) -> str:
    """P(preferred) of every pair of the test splits that the method fitted on `source`
    (`UNTRAINED_SOURCE` for a method that learns nothing) is scored on, one file for all."""
    return f"results/evaluations/{model}/{intervention}/{source}.parquet"


def shift_metrics_path(model: str) -> str:
    return f"results/shift_metrics/{model}.parquet"


def generalization_table_path(model: str, intervention: str, table: str) -> str:
    """Upstream's per-shift tables: `table` is GENIES or all."""
    return f"results/generalization_metrics/{model}/{intervention}/{table}.csv"


GENIES_TABLE = "results/genies_table"  # .csv, .md, .json
GENIES_SHIFTS = "results/genies_shifts.csv"
# one row per (shift, intervention), one column per model, the paired differences
MODELS_PER_SHIFT = "results/genies_models_per_shift.csv"
GENIES_CONTRASTS = "results/genies_contrasts"  # .csv, .md: per model and contrast
GENIES_CONTRAST_SHIFTS = "results/genies_contrast_shifts.csv"  # per contrast and shift
CLAIMS = "results/claims"  # .csv, .md: the paper's claims re-tested on the run
FIGURES_DIR = "results/figures"
MIXING_TABLE = "results/mixing"  # .csv, .md
MIXING_MEANS = "results/mixing_means"  # .csv
