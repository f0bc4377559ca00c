"""A known answer on the embedded real model: `snakemake genies` with smollm2-135m on a synthetic
family whose preferred response is told apart by one marker word.

In marker_src and marker_tgt (other prompts, other seeds) the preferred response ends in "zzzz"
and the other in a full stop; in marker_flip the marker sits on the dispreferred one. A method
that reads the right token and learns from the right labels must rank by the marker: near-perfect
in distribution and where the rule is kept, near-zero where it is reversed, whichever of the two
rules it was trained on. This fails if extraction reads a token that has not seen the marker (the
prompt's, say), if chosen and rejected are swapped between fitting and scoring, or if LoRA does
not train: an untrained reward model ranks by its random head, the same way for both rules, so it
is wrong in distribution on one of the two sources. zero_shot, which learns nothing, is held to
what a real language model knows, that a full stop is likelier than the made-up word "zzzz": it
catches labels swapped everywhere, which the trained methods learn and score alike. random is
held to chance.
"""

import json

import pandas as pd

from tests.helpers import copy_workflow, marker_records, run_genies, run_snakemake

# name: (the response that carries the marker, the seed of its records)
FAMILY = {
    "marker_src": ("preferred", 1),
    "marker_tgt": ("preferred", 2),
    "marker_flip": ("dispreferred", 3),
}
# where the rule is kept, where it flips, and the flip as source (an untrained model fails one)
SHIFTS = [
    ("marker_src", "marker_tgt"),
    ("marker_src", "marker_flip"),
    ("marker_flip", "marker_src"),
]
COUNTS = {"train": 32, "test": 24}
TRAINED = ("probe", "mms", "lora_fine_tuning")
CONFIG = {
    "distributions": list(FAMILY),
    "shifts": [f"{source}->{target}" for source, target in SHIFTS],
    "models": ["smollm2-135m"],
    # short texts: 64 tokens hold every prompt and response; float32, not "auto"'s bfloat16
    "model_settings": {"smollm2-135m": {"dtype": "float32", "max_length": 64}},
    "interventions": ["zero_shot", *TRAINED, "random"],
    # enough for LoRA to learn the marker from 32 pairs, cheaply: 8 steps of 4 pairs at 1e-3
    # (at upstream's 2e-4 it still ranks by its randomly drawn head)
    "hyperparameters": {
        "lora_fine_tuning": {
            "steps": 8,
            "batch_size": 4,
            "learning_rate": 1e-3,
            "r": 8,
        }
    },
    "max_examples": None,
}


def marker_preferred(distribution: str) -> bool:
    return FAMILY[distribution][0] == "preferred"


def test_smollm2_ranks_by_the_marker_where_the_rule_holds_and_against_it_where_it_flips(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    for name, (marked, seed) in FAMILY.items():
        folder = tmp_path / name
        folder.mkdir()
        for split, count in COUNTS.items():
            records = marker_records(count, seed * 10 + len(split), marked)
            (folder / f"{split}.json").write_text(json.dumps(records))
        added = run_genies("add-distribution", str(folder), cwd=workdir)
        assert added.returncode == 0, added.stderr
    for source, target in SHIFTS:
        command = ("add-shift", source, target, "--label", "extreme", "--category", "x")
        added = run_genies(*command, cwd=workdir)
        assert added.returncode == 0, added.stderr
    (workdir / "config/known_answer.yaml").write_text(json.dumps(CONFIG))

    # one core: the later --cores wins over run_snakemake's
    command = ("--cores", "1", "genies", "--configfile", "config/known_answer.yaml")
    result = run_snakemake(workdir, *command, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_known_answer(pd.read_csv(workdir / "results/genies_shifts.csv"))


def assert_known_answer(shifts: pd.DataFrame) -> None:
    """The pattern the marker rules dictate, on the rows of genies_shifts.csv."""
    accuracies = ["source_ID_accuracy", "generalization_accuracy", "accuracy_low", "accuracy_high"]
    print(shifts[["intervention", "source", "target", *accuracies, "n_pairs"]].to_string())
    shifts = shifts.set_index(["intervention", "source", "target"])
    for source, target in SHIFTS:
        kept = marker_preferred(source) == marker_preferred(target)
        for method in TRAINED:
            row = shifts.loc[(method, source, target)]
            where = f"{method} on {source}->{target}"
            assert row.source_ID_accuracy >= 0.9, f"{where}: {row.source_ID_accuracy}"
            accuracy = row.generalization_accuracy
            assert accuracy >= 0.9 if kept else accuracy <= 0.1, f"{where}: {accuracy}"
        # the base model's likelihood: a full stop over "zzzz", so right only where "zzzz" loses
        baseline = shifts.loc[("zero_shot", source, target)]
        for distribution, accuracy in (
            (source, baseline.source_ID_accuracy),
            (target, baseline.generalization_accuracy),
        ):
            right = accuracy <= 0.2 if marker_preferred(distribution) else accuracy >= 0.8
            assert right, f"zero_shot on {distribution}: {accuracy}"
    chance = shifts.loc[("random", "marker_src", "marker_tgt")]
    interval = (chance.accuracy_low, chance.accuracy_high)
    assert interval[0] <= 0.5 <= interval[1], f"random: {interval}"
