"""The GENIES table through real Snakemake runs on tiny-llama: config/test.yaml end to end, twice
with the same bytes, and a user-added distribution family whose answer is known."""

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from genies import interventions
from genies.config import load_config
from genies.data.vendored import SPLITS
from genies.models import footprint
from genies.models.catalog import resolve_model
from genies.models.devices import compute_dtype
from genies.models.footprint import Work
from genies.models.manifest import MANIFEST
from tests import slurm_cluster
from tests.helpers import ENV, REPO, copy_workflow, marker_records, run_genies, run_snakemake

TEST_CONFIG = ("--configfile", "config/test.yaml")
TABLE_COLUMNS = [
    "model",
    "intervention",
    "shifts",
    "differential_elicitation",
    "differential_elicitation_low",
    "differential_elicitation_high",
    "differential_elicitation_heldout",
    "target_tuned_capability_heldout",
    "tied_pairs",
    "elicitation",
    "generalization_accuracy",
    "source_id_accuracy",
    "calibration_error",
    "examples_per_split",
    "target_pairs",
    "differential_elicitation_half_width",
    "generalization_accuracy_half_width",
    "shift_accuracy_half_width",
]
OUTPUTS = [
    "results/genies_table.csv",
    "results/genies_table.md",
    "results/genies_table.json",
    "results/genies_shifts.csv",
    "results/genies_models_per_shift.csv",
    "results/generalization_metrics/tiny-llama/mms/GENIES.csv",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """config/test.yaml's GENIES table built in a copy of the workflow."""
    workdir = copy_workflow(tmp_path_factory.mktemp("first"))
    result = run_snakemake(workdir, "genies", *TEST_CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


JOB_TIME = re.compile(
    r"^genies [\w-]+: (\S+) s, of which start and imports (\S+) s, model loads (\S+) s$", re.M
)


def test_every_job_logs_its_time_and_only_model_jobs_a_model_load(built):
    registry = interventions.registry()
    logs = sorted((built / "logs").rglob("*.log"))
    assert {log.relative_to(built / "logs").parts[0] for log in logs} >= {
        "activations",
        "fit",
        "evaluate",
    }
    for log in logs:
        found = JOB_TIME.findall(log.read_text())
        assert len(found) == 1, log
        total, imports, loads = map(float, found[0])
        assert 0 < imports < total and loads < total, (log, found)
        job = log.relative_to(built / "logs").parts
        runs_model = job[0] == "activations" or (
            job[0] in ("fit", "evaluate") and registry[job[2]].reads.runs_model(job[0])
        )
        assert (loads > 0) == runs_model, (log, found)


def test_a_job_that_reads_only_the_cache_imports_no_model_library():
    imported = subprocess.run(
        [sys.executable, "-c", CACHE_JOB_IMPORTS], capture_output=True, text=True, env=ENV
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == [], imported.stdout


# What `genies fit mms`, `genies evaluate mms` and `genies fit few_shot` (which records its shot
# pool without the model) import before their work; prints the model libraries among them.
CACHE_JOB_IMPORTS = """import sys
from genies.cli.interventions import interventions_ready
from genies.interventions import jobs
for name, job in [("mms", "fit"), ("mms", "evaluate"), ("few_shot", "fit")]:
    interventions_ready(name, job)
print(*sorted({"transformers", "peft", "sklearn", "tokenizers"} & set(sys.modules)))"""


def test_the_table_has_a_row_per_intervention_and_the_promised_columns(built):
    table = pd.read_csv(built / "results/genies_table.csv")
    configured = load_config(REPO / "config/test.yaml").interventions
    assert list(table.intervention) == configured and set(table.model) == {"tiny-llama"}
    assert set(TABLE_COLUMNS) <= set(table.columns)
    assert (table.shifts == 1).all() and (table.examples_per_split == 12).all()
    shifts = pd.read_csv(built / "results/genies_shifts.csv").set_index("intervention")
    for method, row in table.set_index("intervention").iterrows():  # one shift: its interval
        half = (shifts.loc[method, "accuracy_high"] - shifts.loc[method, "accuracy_low"]) / 2
        assert row.shift_accuracy_half_width == pytest.approx(half), method
    zero_shot = table.set_index("intervention").loc["zero_shot"]
    assert zero_shot.differential_elicitation == 0  # its own baseline, by definition
    document = json.loads((built / "results/genies_table.json").read_text())
    assert document["reproduce"]["seed"] == 0
    manifest = json.loads((built / "models/tiny-llama/genies_model.json").read_text())
    assert (
        document["reproduce"]["models"]["tiny-llama"]["weights_sha256"]
        == (manifest["weights_sha256"])
    )
    # what every evaluation was computed in: the test config's dtype auto, on this CPU
    recorded = document["reproduce"]["models"]["tiny-llama"]
    assert recorded["compute_dtypes"] == [compute_dtype("auto", "cpu")]
    assert recorded["device_types"] == ["cpu"]
    assert document["table"]["tiny-llama"]["mms"]["generalization_accuracy"] == pytest.approx(
        table.set_index("intervention").loc["mms", "generalization_accuracy"], abs=1e-6
    )
    figures = sorted(p.name for p in (built / "results/figures").iterdir())
    assert "genies_de.png" in figures and "heatmap_tiny-llama.png" in figures
    assert "training_loss_tiny-llama.png" in figures  # the fine-tuned reward models' losses
    assert "models_per_shift.png" not in figures  # one model: nothing to compare
    assert "contrasts.png" not in figures and "contrasts_tiny-llama.png" in figures
    compared = pd.read_csv(built / "results/genies_models_per_shift.csv")
    assert list(compared.columns) == ["source", "target", "genies_position", "intervention"] + [
        "tiny-llama"
    ]


def test_every_intervention_state_records_what_reproduces_it(built):
    for path in (built / "results/interventions/tiny-llama").rglob("*.json"):
        info = json.loads(path.read_text())
        assert info["seed"] == 0 and info["model"] == "tiny-llama"
        assert (
            info["hyperparameters"]
            == load_config(REPO / "config/test.yaml").hyperparameters["tiny-llama"][
                info["intervention"]
            ]
        )
        assert info["data_sha256"] and info["weights_sha256"]


def artifact_bytes(workdir) -> dict[str, bytes]:
    """Every file the run wrote under results/, models/ and data/splits/, by path."""
    return {
        str(path.relative_to(workdir)): path.read_bytes()
        for folder in ("results", "models", "data/splits")
        for path in sorted((workdir / folder).rglob("*"))
        if path.is_file()
    }


def test_the_same_config_gives_the_same_bytes_for_every_artifact(built, tmp_path):
    # what DVC hashes: activations, states, evaluations, tables, figures; a run's timings and
    # devices go to its logs only
    again = copy_workflow(tmp_path)
    result = run_snakemake(again, "genies", *TEST_CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = artifact_bytes(built), artifact_bytes(again)
    assert set(OUTPUTS) <= set(first) and sorted(first) == sorted(second)
    assert [path for path in first if first[path] != second[path]] == []


def dry_run_outputs(built, override: str = "") -> tuple[set[str], list[str]]:
    """(rules, output paths) `snakemake -n genies` schedules on the built workspace once the test
    config is overridden with `override` (YAML)."""
    (built / "config/override.yaml").write_text((override or "{}") + "\n")
    result = run_snakemake(built, "genies", *TEST_CONFIG, "config/override.yaml", "-n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rules = {
        line.split()[-1].rstrip(":") for line in lines if line.endswith(":") and "rule " in line
    }
    outputs = [
        path.strip()
        for line in lines
        if line.startswith("    output: ")
        for path in line.removeprefix("    output: ").split(",")
    ]
    return rules, outputs


def scheduled(built, override: str = "") -> tuple[set[str], set[str]]:
    """(rules, interventions) `snakemake -n genies` schedules (see dry_run_outputs)."""
    rules, outputs = dry_run_outputs(built, override)
    methods = {
        path.split("/")[3]
        for path in outputs
        if path.startswith(("results/interventions/", "results/evaluations/"))
    }
    return rules, methods


AGGREGATION = {
    "shift_metrics", "genies_table", "genies_contrasts", "genies_claims", "genies_figures", "genies"
}  # fmt: skip


def test_training_and_test_splits_take_their_own_example_counts(built, tmp_path):
    # every job reading a training split gets max_examples.train, every one reading a test
    # split max_examples.test (the fits and extractions of training splits, the evaluations
    # and extractions of test splits)
    workdir = copy_of(built, tmp_path)
    (workdir / "config/counts.yaml").write_text("max_examples: {train: 11, test: 5}\n")
    result = run_snakemake(
        workdir, "genies", *TEST_CONFIG, "config/counts.yaml", "-n", "-p", "--forceall"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    commands = [line.split("command: ", 1)[-1].strip() for line in lines if "genies " in line]
    counts = {}
    for command in commands:
        if command.startswith(("genies fit", "genies extract")):
            split = "train" if "/train.parquet" in command else "test"
        elif command.startswith("genies evaluate"):
            split = "test"
        else:
            continue
        counts.setdefault(split, set()).add(re.search(r"--max-examples (\d+)", command)[1])
    assert counts == {"train": {"11"}, "test": {"5"}}


def test_changing_one_hyperparameter_reruns_only_that_method(built):
    rules, methods = scheduled(built, "hyperparameters: {mms: {top_heads: 2}}")
    assert methods == {"mms"} and rules == {"fit", "evaluate", *AGGREGATION}
    # a per-model hyper-parameter sits in model_settings, beside settings that do change the
    # model: it still reruns only its method, no materialising, no extraction
    override = "model_settings: {tiny-llama: {hyperparameters: {prompt_tuning: {steps: 2}}}}"
    rules, methods = scheduled(built, override)
    assert methods == {"prompt_tuning"} and rules == {"fit", "evaluate", *AGGREGATION}


def test_how_a_job_computes_reruns_nothing(built):
    # batch size and GPUs reach jobs as resources: a different value changes no result
    rules, _ = scheduled(built, "model_settings: {tiny-llama: {batch_size: 3, gpus: 2}}")
    assert rules == set()


def scheduled_after_editing(built, module: str) -> tuple[set[str], set[str]]:
    """What a dry run schedules once `module` (under src/genies) is edited. A touch would not do:
    Snakemake ignores a newer input whose checksum it recorded unchanged."""
    path = built / "src/genies" / module
    text, times = path.read_bytes(), path.stat()
    path.write_bytes(text + b"# edited\n")
    try:
        return scheduled(built)
    finally:
        path.write_bytes(text)
        os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))


def test_editing_a_module_reruns_only_the_jobs_that_run_it(built):
    assert scheduled(built) == (set(), set())  # the built workspace is current
    assert scheduled_after_editing(built, "interventions/mms.py") == (
        {"fit", "evaluate", *AGGREGATION},
        {"mms"},
    )
    assert scheduled_after_editing(built, "figures/training.py") == (
        {"genies_figures", "genies"},
        set(),
    )


def test_adding_a_shift_schedules_only_its_jobs(built):
    override = "shifts: [alpaca_short->alpaca_long, alpaca_easy->alpaca_hard]"
    rules, outputs = dry_run_outputs(built, override)
    assert "extract_activations" in rules and "materialise_model" not in rules
    new = {"alpaca_easy", "alpaca_hard"}  # the new shift's source, and target (its own reference)
    extracted = {
        tuple(path.split("/")[4:6])
        for path in outputs
        if path.startswith("results/activations/") and path.endswith(".safetensors")
    }
    assert extracted == {(name, f"{split}.safetensors") for name in new for split in SPLITS}
    fitted_sources = {
        path.split("/")[4].split(".")[0]
        for path in outputs
        if path.startswith("results/interventions/")
    }
    assert fitted_sources and fitted_sources <= new  # methods that learn nothing: not refitted
    # one evaluation job per fitted state: the new source's, and the new target's reference;
    # every evaluation of alpaca_short stays (none of its scored splits changed) but the
    # untrained methods', which now score the new splits too
    evaluated = {
        tuple(path.removesuffix(".parquet").split("/")[3:5])
        for path in outputs
        if path.startswith("results/evaluations/")
    }
    registry = interventions.registry()
    expected = {
        (method, source if registry[method].trained else "base")
        for method in load_config(REPO / "config/test.yaml").interventions
        for source in new
    }
    assert evaluated == expected


def test_adding_an_intervention_schedules_only_its_jobs(built, tmp_path):
    """A workspace built without ccs (its states and evaluations removed, the tables rebuilt
    from the other methods), then ccs added back to the config. ccs reads cache templates
    (yes/no, last-layer residuals) that no other method reads: the extraction stores every
    registered method's templates, so neither the run without it nor adding it re-extracts."""
    workdir = copy_of(built, tmp_path)
    for folder in ("results/interventions", "results/evaluations"):
        shutil.rmtree(workdir / folder / "tiny-llama" / "ccs")
    others = list(load_config(REPO / "config/test.yaml").interventions)
    others.remove("ccs")
    without = workdir / "config/without.yaml"
    without.write_text(f"interventions: {json.dumps(others)}\n")
    result = run_snakemake(workdir, "genies", *TEST_CONFIG, str(without))
    assert result.returncode == 0, result.stderr[-3000:]
    ran = set(re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, re.M))
    assert ran and ran <= AGGREGATION, ran  # the tables of the other methods, nothing else
    assert scheduled(workdir) == ({"fit", "evaluate", *AGGREGATION}, {"ccs"})


MIXING = "mixing: {fractions: [%s], interventions: [mms, lora_fine_tuning]}"


def test_the_contrasts_pair_the_methods_and_a_new_contrast_runs_only_their_jobs(built):
    """Each contrast's per-shift differences are those of the two methods' accuracies and DE in
    the shift table (the same pairs, so the paired mean is the difference of the means)."""
    config = load_config(REPO / "config/test.yaml")
    summary = pd.read_csv(built / "results/genies_contrasts.csv")
    assert list(zip(summary["first"], summary.second, strict=True)) == config.contrasts
    assert (summary.shifts == 1).all()
    table = pd.read_csv(built / "results/genies_shifts.csv")
    table = table.set_index(["intervention", "source", "target"])
    shifts = pd.read_csv(built / "results/genies_contrast_shifts.csv")
    assert len(shifts) == len(config.contrasts) * len(config.shifts)
    for row in shifts.itertuples():
        first, second = (
            table.loc[name, row.source, row.target] for name in (row.first, row.second)
        )
        accuracy = first.generalization_accuracy - second.generalization_accuracy
        assert row.accuracy_difference == pytest.approx(accuracy)
        assert row.de_difference == pytest.approx(
            first.differential_elicitation - second.differential_elicitation
        )
        assert row.accuracy_difference_low <= accuracy <= row.accuracy_difference_high
        assert row.pairs == first.n_pairs
    assert "Holm" in (built / "results/genies_contrasts.md").read_text()
    figure = built / "results/figures/contrasts_tiny-llama.png"
    assert figure.read_bytes().startswith(b"\x89PNG")
    rules, outputs = dry_run_outputs(built, "contrasts: [[mms, lora_fine_tuning]]")
    assert rules == {"genies_contrasts", "genies_claims", "genies_figures", "genies"}


def test_mixing_fits_on_the_drawn_target_examples_and_a_new_fraction_runs_only_its_jobs(
    built, tmp_path
):
    workdir = copy_of(built, tmp_path)
    (workdir / "config/override.yaml").write_text(MIXING % "0.25" + "\n")
    table_files = [workdir / path for path in OUTPUTS[:3]]
    written = [path.stat().st_mtime_ns for path in table_files]
    result = run_snakemake(workdir, "genies", *TEST_CONFIG, "config/override.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    # the GENIES table reads neither the mixing config nor the splits only mixed fits read
    assert [path.stat().st_mtime_ns for path in table_files] == written
    table = pd.read_csv(workdir / "results/mixing.csv")
    rows = zip(table.intervention, table.fraction, table.mixed_examples, strict=True)
    assert sorted(rows) == [
        ("lora_fine_tuning", 0.0, 0),
        ("lora_fine_tuning", 0.25, 3),  # floor(0.25 x the target's 12 training examples)
        ("mms", 0.0, 0),
        ("mms", 0.25, 3),
    ]
    plain = pd.read_csv(workdir / "results/genies_shifts.csv").set_index("intervention")
    unmixed = table[table.fraction == 0].set_index("intervention")
    for method in ("mms", "lora_fine_tuning"):
        assert unmixed.generalization_accuracy[method] == plain.generalization_accuracy[method]
    # the drawn examples, computed here: the target's 12-example sample, then its first 3, both
    # by the rank of sha256("<seed>/<example id>")
    ids = pd.read_parquet(workdir / "data/splits/alpaca_long/train.parquet").example_id
    ranked = sorted(ids, key=lambda e: hashlib.sha256(f"0/{e}".encode()).hexdigest())
    for method in ("mms", "lora_fine_tuning"):
        state = f"results/interventions/tiny-llama/{method}/alpaca_short+alpaca_long@0.25.json"
        info = json.loads((workdir / state).read_text())
        assert info["mixed"]["example_ids"] == [e for e in ids if e in set(ranked[:3])]
        assert info["pairs"] == 12 + 3
    scored = pd.read_parquet(
        workdir / "results/evaluations/tiny-llama/mms/alpaca_short+alpaca_long@0.25.parquet"
    )
    assert set(scored.distribution) == {"alpaca_long"}
    # one shift: its mean is its own gain over the plain shift
    means = pd.read_csv(workdir / "results/mixing_means.csv").set_index(
        ["intervention", "fraction"]
    )
    for method in ("mms", "lora_fine_tuning"):
        accuracy = table[table.intervention == method].set_index("fraction").generalization_accuracy
        assert means.shifts[method, 0.25] == 1
        assert means.accuracy_gain[method, 0.25] == pytest.approx(accuracy[0.25] - accuracy[0.0])
    for figure in ("mixing", "mixing_means"):
        assert (workdir / f"results/figures/{figure}.png").read_bytes().startswith(b"\x89PNG")
    rules, outputs = dry_run_outputs(workdir, MIXING % "0.25, 0.5")
    assert rules == {"fit", "evaluate", "mixing_table", "genies_figures", "genies"}
    refitted = {path for path in outputs if path.startswith("results/interventions/")}
    assert refitted and all("@0.5." in path for path in refitted)


def pairwise_rows(records: list[dict]) -> list[dict]:
    """TRL-style rows of marker records: (prompt, chosen, rejected), and for every other record a
    second row against another rejected response, so that import groups it into 3 responses."""
    rows = []
    for index, record in enumerate(records):
        chosen, rejected = record["responses"]  # the preferred one first
        rows.append({"prompt": record["prompt"], "chosen": chosen, "rejected": rejected})
        if index % 2:
            other = rejected.removesuffix(".") + " too."  # plain, as the rejected one
            rows.append({"prompt": record["prompt"], "chosen": chosen, "rejected": other})
    return rows


def scored_rows(records: list[dict]) -> list[dict]:
    """UltraFeedback-style rows: the responses with scores, the preferred one scored best."""
    return [
        {"prompt": r["prompt"], "responses": list(r["responses"]), "scores": [8.5, 3.0]}
        for r in records
    ]


def test_a_user_added_family_with_a_known_answer_shows_the_expected_pattern(tmp_path):
    """The family in three layouts: upstream JSON (source), TRL pairwise JSON Lines with pairs
    grouped into 3-response examples (target), one UltraFeedback-style Parquet file split by
    seed (flipped target)."""
    workdir = copy_workflow(tmp_path / "wf")
    family = {"marker_src": ("preferred", 1), "marker_tgt": ("preferred", 2)}
    family["marker_flip"] = ("dispreferred", 3)
    for name, (marked, seed) in family.items():
        folder = tmp_path / name
        folder.mkdir()
        splits = {
            split: marker_records(count, seed * 10 + len(split), marked)
            for split, count in (("train", 40), ("test", 30))
        }
        command = ("add-distribution", str(folder))
        if name == "marker_src":
            for split, records in splits.items():
                (folder / f"{split}.json").write_text(json.dumps(records))
        elif name == "marker_tgt":
            for split, records in splits.items():
                lines = [json.dumps(row) for row in pairwise_rows(records)]
                (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
        else:
            rows = scored_rows(splits["train"] + splits["test"])
            pd.DataFrame(rows).to_parquet(tmp_path / f"{name}.parquet")
            command = ("add-distribution", str(tmp_path / f"{name}.parquet"), "--test-fraction")
            command += ("0.43", "--seed", "3")
        added = run_genies(*command, cwd=workdir)
        assert added.returncode == 0, added.stderr
    for target in ("marker_tgt", "marker_flip"):
        command = ("add-shift", "marker_src", target, "--label", "extreme", "--category", "x")
        added = run_genies(*command, cwd=workdir)
        assert added.returncode == 0, added.stderr
    methods = ["zero_shot", "mms", "lat_stim_1", "probe", "random"]
    config = {
        "distributions": list(family),
        "shifts": ["marker_src->marker_tgt", "marker_src->marker_flip"],
        "models": ["tiny-llama"],
        "interventions": methods,
        "max_examples": None,
    }
    (workdir / "config/markers.yaml").write_text(json.dumps(config))
    result = run_snakemake(workdir, "genies", "--configfile", "config/markers.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    shifts = pd.read_csv(workdir / "results/genies_shifts.csv").set_index(
        ["intervention", "target"]
    )
    for method in ("mms", "lat_stim_1", "probe"):
        # the marker is seen in distribution and where it is kept, and misleads where it moved
        assert shifts.loc[(method, "marker_tgt"), "source_ID_accuracy"] >= 0.9, method
        assert shifts.loc[(method, "marker_tgt"), "generalization_accuracy"] >= 0.9, method
        assert shifts.loc[(method, "marker_flip"), "generalization_accuracy"] <= 0.1, method
    chance = shifts.loc[("random", "marker_tgt")]
    assert chance.accuracy_low <= 0.5 <= chance.accuracy_high


TWO_MODELS = ["tiny-llama", "tiny-gptneox"]  # two families: LLaMA and GPT-NeoX
CHEAP_METHODS = ["zero_shot", "mms", "probe", "random"]  # model scoring, heads, residual, chance


def test_two_models_of_two_families_run_side_by_side(tmp_path):
    """config/test.yaml with both tiny models and a cheap subset of the interventions, through
    the real workflow: each model gets its rows, its figures, and the two are compared per shift
    (98 s of Snakemake on 2 cores with little else running)."""
    workdir = copy_workflow(tmp_path)
    override = {"models": TWO_MODELS, "interventions": CHEAP_METHODS}
    (workdir / "config/two.yaml").write_text(json.dumps(override))
    result = run_snakemake(workdir, "genies", *TEST_CONFIG, "config/two.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(workdir / "results/genies_table.csv")
    assert list(zip(table.model, table.intervention, strict=True)) == [
        (model, method) for model in TWO_MODELS for method in CHEAP_METHODS
    ]
    architectures = {
        model: json.loads((workdir / f"models/{model}/config.json").read_text())["architectures"]
        for model in TWO_MODELS
    }
    assert architectures == {
        "tiny-llama": ["LlamaForCausalLM"],
        "tiny-gptneox": ["GPTNeoXForCausalLM"],
    }
    reproduce = json.loads((workdir / "results/genies_table.json").read_text())["reproduce"]
    hashes = {model: reproduce["models"][model]["weights_sha256"] for model in TWO_MODELS}
    assert len(set(hashes.values())) == 2
    # the comparison holds each model's own per-shift accuracy, and their paired difference
    shifts = pd.read_csv(workdir / "results/genies_shifts.csv")
    compared = pd.read_csv(workdir / "results/genies_models_per_shift.csv")
    assert len(compared) == len(shifts) / 2 == len(CHEAP_METHODS)
    difference = "tiny-gptneox_minus_tiny-llama"
    for row in compared.to_dict("records"):
        mine = shifts[
            (shifts.intervention == row["intervention"])
            & (shifts.source == row["source"])
            & (shifts.target == row["target"])
        ].set_index("model")
        for model in TWO_MODELS:
            assert row[model] == pytest.approx(mine.generalization_accuracy[model])
        gap = (
            mine.generalization_accuracy["tiny-gptneox"]
            - mine.generalization_accuracy["tiny-llama"]
        )
        assert row[difference] == pytest.approx(gap)
        assert row[f"{difference}_low"] - 1e-9 <= gap <= row[f"{difference}_high"] + 1e-9
    figures = {path.name for path in (workdir / "results/figures").iterdir()}
    assert {"models_per_shift.png", "genies_de.png", "contrasts.png"} <= figures
    assert {f"heatmap_{model}.png" for model in TWO_MODELS} <= figures
    assert {f"contrasts_{model}.png" for model in TWO_MODELS} <= figures


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hyperparameters: {cra: {top_heads: 0}}", "hyperparameters.cra.top_heads: 0 is less"),
        ("interventions: [zero_shot, rlhf]", "interventions[1]: 'rlhf' is not one of"),
        (
            "activations: {templates: {raw: {residual: [99], heads: none}}}",
            "activations.templates.raw.residual: keeps [99]",
        ),
        ("model_settings: {tiny-Llama: {dtype: float32}}", "tiny-Llama"),
    ],
)
def test_bad_hyperparameters_and_unknown_methods_fail_before_any_job(tmp_path, override, message):
    workdir = copy_workflow(tmp_path)
    (workdir / "config/bad.yaml").write_text(override + "\n")
    result = run_snakemake(workdir, "genies", *TEST_CONFIG, "config/bad.yaml")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert 'File "' not in result.stdout + result.stderr  # one line, no traceback
    assert not (workdir / "data/splits").exists() and not (workdir / "results").exists()


def start_run(workdir, log):
    """`snakemake genies` on the test config in its own session (a process group to kill)."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "genies", *TEST_CONFIG]
    return subprocess.Popen(
        command, cwd=workdir, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for_job(log_path, started: str, timeout=600):
    deadline = time.monotonic() + timeout
    while started not in log_path.read_text():
        assert time.monotonic() < deadline, f"no {started!r} within {timeout} s"
        time.sleep(0.2)
    time.sleep(2)  # well into the job: the model loaded, files being written


@pytest.mark.parametrize(
    ("kill", "job"),
    [
        (signal.SIGKILL, "rule extract_activations:"),  # a power cut
        (signal.SIGTERM, "rule extract_activations:"),  # a scheduler's time limit
        (signal.SIGKILL, "intervention=lora_fine_tuning"),  # mid-training (fit jobs list it)
    ],
)
def test_a_killed_run_resumes_to_the_same_bytes(built, tmp_path, kill, job):
    workdir = copy_workflow(tmp_path / "wf")
    log_path = tmp_path / "killed.log"
    with open(log_path, "w") as log:
        run = start_run(workdir, log)
        wait_for_job(log_path, job)
        os.killpg(run.pid, kill)  # Snakemake and every job it started
        run.wait(timeout=120)
    if kill == signal.SIGKILL:  # nothing could clean up: the lock and incomplete jobs stay
        assert list((workdir / ".snakemake/locks").glob("*.lock"))
    # the plain command again: no --unlock, no --rerun-incomplete
    result = run_snakemake(workdir, "genies", *TEST_CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    for output in OUTPUTS:
        assert (workdir / output).read_bytes() == (built / output).read_bytes(), output
    leftovers = [p for p in workdir.rglob("*.tmp*") if ".snakemake" not in p.parts]
    assert leftovers == []


LOST = [
    "results/interventions/tiny-llama/mms/alpaca_short.safetensors",
    "results/evaluations/tiny-llama/lora_fine_tuning/alpaca_short.parquet",
    "results/activations/tiny-llama/lat_stim/alpaca_long/test.json",
]


def test_the_plain_table_command_rebuilds_what_was_deleted_to_the_same_bytes(built, tmp_path):
    """Snakemake alone ignores a deleted intermediate while what depends on it is present
    ("Nothing to be done"): a deleted state, evaluation and activation sidecar come back."""
    workdir = copy_of(built, tmp_path)
    for path in LOST:
        (workdir / path).unlink()
    result = run_snakemake(workdir, "results/genies_table.csv", *TEST_CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rebuilding 3 missing artifact(s) of a built run" in result.stderr
    for path in [*LOST, *OUTPUTS[:4]]:
        assert (workdir / path).read_bytes() == (built / path).read_bytes(), path


def test_a_jobs_error_is_the_consoles_last_line(built, tmp_path):
    """A damaged state read by the evaluation that a deleted file reruns: Snakemake reports the
    failed job by its log's name; the job's own line (file and fix) comes last."""
    workdir = copy_of(built, tmp_path)
    state = workdir / LOST[0]
    damaged = bytearray(state.read_bytes())
    damaged[-2] ^= 0x01
    state.write_bytes(bytes(damaged))
    (workdir / "results/evaluations/tiny-llama/mms/alpaca_short.parquet").unlink()
    result = run_snakemake(workdir, "results/genies_table.csv", *TEST_CONFIG)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"genies: error: {LOST[0]}: checksum mismatch: the fitted state is damaged; "
        "delete it and rebuild"
    )


@pytest.mark.skipif(shutil.which("capsh") is None, reason="needs capsh (libcap2-bin)")
def test_a_write_refused_in_a_job_is_the_consoles_last_line(built, tmp_path):
    """A folder the job may not write to. As root a chmod stops nothing, so Snakemake runs with
    root's override of file permissions dropped (capsh)."""
    workdir = copy_of(built, tmp_path)
    folder = workdir / "results/evaluations/tiny-llama/mms"
    (folder / "alpaca_short.parquet").unlink()
    folder.chmod(0o555)
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "2", "results/genies_table.csv"]
    dropped = "--drop=cap_dac_override,cap_dac_read_search,cap_fowner"
    try:
        result = subprocess.run(
            ["capsh", dropped, "--", "-c", shlex.join([*snakemake, *TEST_CONFIG])],
            cwd=workdir, env=ENV, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        folder.chmod(0o755)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "genies: error: results/evaluations/tiny-llama/mms: Permission denied; "
        "give this user access to it (read for an input, write for an output)"
    ), result.stderr[-2000:]
    log = (workdir / "logs/evaluate/tiny-llama/mms/alpaca_short.log").read_text()
    assert "Traceback" in log and log.strip().splitlines()[-1] == last


def dry_run_jobs(workdir, *args: str) -> list[dict[str, str]]:
    """The jobs `snakemake -n genies` lists (test config, then `args`): rule, and each
    `    key: value` line of its block."""
    result = run_snakemake(workdir, "genies", *TEST_CONFIG, *args, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for line in result.stdout.splitlines():
        if match := re.fullmatch(r"(?:local)?rule (\w+):", line):
            jobs.append({"rule": match[1]})
        elif jobs and (match := re.fullmatch(r"    (\w+): (.*)", line)):
            jobs[-1][match[1]] = match[2]
    return jobs


def copy_of(built, tmp_path):
    """A copy of the built workspace: runs and edits there leave `built` as it was."""
    workdir = tmp_path / "wf"
    shutil.copytree(built, workdir, symlinks=True)
    return workdir


def test_each_job_asks_for_the_memory_and_time_of_its_model_and_texts(built, tmp_path):
    """Wiring: each job's mem_mb and runtime are genies.models.footprint's for the work counted
    here from the job's own inputs and outputs (the formulas: tests/test_footprint.py). The
    model on the CPU (gpus: 0) and its manifest given LLaMA-7B's shape, so that both depend on
    how many texts a job runs, how long and in what batches, beyond rounding and the minimum."""
    built = copy_of(built, tmp_path)
    manifest_path = built / "models/tiny-llama" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["architecture"] |= {
        "parameters": 6_738_415_616, "hidden_size": 4096, "num_hidden_layers": 32,
        "num_attention_heads": 32, "vocab_size": 32000,
    }  # fmt: skip
    manifest_path.write_text(json.dumps(manifest))
    (built / "config/cpu.yaml").write_text("model_settings: {tiny-llama: {gpus: 0}}\n")
    forced = ("--forcerun", "extract_activations", "fit", "evaluate")
    jobs = dry_run_jobs(built, "config/cpu.yaml", *forced)
    jobs = [job for job in jobs if job["rule"] in forced[1:]]
    model = resolve_model("tiny-llama", {})
    config = load_config(REPO / "config/test.yaml")
    registry = interventions.registry()

    def texts(paths: list[str]) -> int:
        """The texts of every split among `paths` (an evaluation job reads several)."""
        total = 0
        for path in paths:
            if path.endswith(".parquet"):
                count = config.max_examples[Path(path).stem]
                total += int(pd.read_parquet(built / path).head(count)["responses"].map(len).sum())
        return total

    kinds = set()
    for job in jobs:
        inputs, outputs = job["input"].split(", "), job["output"].split(", ")
        wildcards = dict(item.split("=") for item in job["wildcards"].split(", "))
        method = registry.get(wildcards.get("intervention"))
        asked = dict(item.split("=", 1) for item in job["resources"].split(", "))
        if method and not method.reads.runs_model(job["rule"]):
            cache = sum((built / p).stat().st_size for p in inputs if p.startswith("results/act"))
            expected = (footprint.cache_memory_mb(cache), footprint.CACHE_RUNTIME_MIN)
            kinds.add("cache")
        else:
            if job["rule"] == "extract_activations":
                templates = sum(path.endswith(".safetensors") for path in outputs)
                work = Work(texts(inputs) * templates, model["batch_size"], model["max_length"])
            else:
                hyperparameters = config.hyperparameters["tiny-llama"][method.name]
                # every method cuts a text at the model's length (few-shot: each shot too)
                shots = hyperparameters.get("shots", 0) if method.name == "few_shot" else 0
                length = (shots + 1) * model["max_length"]
                if job["rule"] == "evaluate":
                    work = Work(texts(inputs), model["batch_size"], length)
                else:  # the reward models: 2 texts a pair
                    pairs, steps = hyperparameters["batch_size"], hyperparameters["steps"]
                    work = Work(2 * pairs * steps, 2 * pairs, length, backward=True)
            expected = (
                footprint.memory_mb(manifest, work, model["dtype"], gpus=0),
                footprint.runtime_min(manifest, work, model["dtype"], gpus=0, threads=1),
            )
            kinds.add(job["rule"])
        assert (int(asked["mem_mb"]), int(asked["runtime"])) == expected, job
    assert kinds == {"cache", "extract_activations", "fit", "evaluate"}


# Fails the first time it is called, as SLURM kills a job past its memory (exit 137), then runs
# the real command.
FAIL_ONCE = """#!/bin/sh
[ -e "$0.failed" ] || {{ touch "$0.failed"; echo "killed: out of memory" >&2; exit 137; }}
exec {genies} "$@"
"""


def test_a_retried_job_asks_for_twice_the_memory_and_time(built, tmp_path):
    workdir = copy_of(built, tmp_path)
    wrapper = tmp_path / "bin" / "genies"
    wrapper.parent.mkdir()
    wrapper.write_text(FAIL_ONCE.format(genies=shutil.which("genies", path=ENV["PATH"])))
    wrapper.chmod(0o755)
    env = ENV | {"PATH": f"{wrapper.parent}{os.pathsep}{ENV['PATH']}"}
    target = "results/activations/tiny-llama/raw/alpaca_short/train.safetensors"
    result = run_snakemake(workdir, *TEST_CONFIG, "-f", target, "--retries", "1", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "bin" / "genies.failed").exists()  # the first attempt did fail
    asked = [
        dict(item.split("=", 1) for item in line.split(", "))
        for line in re.findall(r"^    resources: (.*)$", result.stdout + result.stderr, re.M)
    ]
    assert len(asked) == 2, asked
    for key in ("mem_mb", "runtime"):
        assert int(asked[1][key]) == 2 * int(asked[0][key]), asked


def granted_gpus(workdir) -> dict[str, list[int]]:
    """Per job log (path under logs/), how many GPUs each model claim found granted in
    CUDA_VISIBLE_DEVICES (0 where SLURM set none)."""
    return {
        str(log.relative_to(workdir / "logs")): [
            0 if entries in ("unset", "") else len(entries.split(","))
            for entries in re.findall(
                r"^devices: .* \(CUDA_VISIBLE_DEVICES=(.*)\)$", log.read_text(), re.MULTILINE
            )
        ]
        for log in (workdir / "logs").rglob("*.log")
    }


def slurm_mb(memory: str) -> int:
    """A memory size as scontrol writes it (1600M, 2G) in MB."""
    return int(float(memory[:-1]) * 1024 ** "MGT".index(memory[-1]))


def slurm_minutes(minutes: int) -> str:
    """A time limit as scontrol writes it: [days-]hours:minutes:seconds."""
    days, minutes = divmod(minutes, 24 * 60)
    return (f"{days}-" if days else "") + f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def group_jobs(output: str) -> list[list[dict[str, str]]]:
    """The resources of each job of each group Snakemake submitted: its log names a group
    ("[time] Group job NAME (jobs in lexicogr. order):") and lists the group's jobs, indented,
    each with its resources, until its next timed entry."""
    groups, member = [], False  # in a group's indented listing
    for line in output.splitlines():
        if " Group job " in line:
            groups.append([])
            member = True
        elif line.startswith("["):  # Snakemake's next entry; other threads' lines may interleave
            member = False
        elif member and (found := re.match(r"^        resources: (.*)$", line)):
            groups[-1].append(dict(item.split("=", 1) for item in found[1].split(", ")))
    return groups


def test_the_slurm_profile_gives_the_local_bytes_and_each_job_its_gpus(built, tmp_path):
    reason = slurm_cluster.missing_reason()
    if reason:
        pytest.skip(reason)
    workdir = copy_workflow(tmp_path / "wf")
    # the node has 2 stand-in GPUs: extractions ask for both, model-reading methods for the
    # model's one (its `gpus`), cache-only methods for none
    # the profile waits the executor's 40 s between status checks (kind to a shared controller);
    # this cluster is ours: jobs of seconds need not wait that long to be seen done
    profile = (
        "--workflow-profile",
        "workflow/profiles/slurm",
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--cores",  # the profile's, over run_snakemake's 2: a group runs its jobs one by one
        "1",
    )
    two_gpus = ("--set-resources", "extract_activations:gpu=2")
    with slurm_cluster.slurm_cluster():
        result = run_snakemake(workdir, "genies", *TEST_CONFIG, *profile, *two_gpus, timeout=1800)
        assert result.returncode == 0, result.stderr[-3000:]
        records = slurm_cluster.job_records()
    output = result.stdout + result.stderr
    # every job went to SLURM in a group, five or more jobs a submission
    groups = group_jobs(output)
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", output)
    local = len(re.findall(r"^localrule ", output, re.MULTILINE))
    submitted_jobs = int(done[-1][1]) - local
    assert output.count("has been submitted with SLURM jobid") == len(groups) == len(records)
    assert sum(len(jobs) for jobs in groups) == submitted_jobs > 40, (groups, done, local)
    assert 5 * len(groups) <= submitted_jobs, [len(jobs) for jobs in groups]
    # what SLURM recorded of the submissions: a group runs its jobs one after another, so it
    # asks the largest memory and GPU count of its jobs and the sum of their times
    asked = sorted(
        (
            max(int(job["mem_mb"]) for job in jobs),
            slurm_minutes(sum(int(job["runtime"]) for job in jobs)),
            max(int(job.get("gpu", 0)) for job in jobs),
        )
        for jobs in groups
    )
    recorded = sorted(
        (
            slurm_mb(limits["MinMemoryNode"]),
            limits["TimeLimit"],
            int(re.search(r"gres[:/]gpu:(\d+)", limits.get("TresPerJob", "gres:gpu:0"))[1]),
        )
        for limits in records.values()
    )
    assert recorded == asked
    registry = interventions.registry()
    granted = granted_gpus(workdir)
    # model jobs of every kind ran and claimed: every extraction, every model-reading method
    configured = load_config(REPO / "config/test.yaml").interventions
    reading_model = {name for name in configured if registry[name].reads.model}
    claimed = [log.split("/") for log, lists in granted.items() if lists]
    assert "activations" in {job[0] for job in claimed}, claimed
    assert {job[2] for job in claimed if job[0] == "evaluate"} == reading_model, claimed
    for log, lists in granted.items():
        job = log.split("/")
        if job[0] == "activations":
            wanted = [2]
        elif job[0] in ("fit", "evaluate") and registry[job[2]].reads.runs_model(job[0]):
            wanted = [1]
        else:
            wanted = []
        assert lists == wanted, (log, lists)
    for output in OUTPUTS:
        assert (workdir / output).read_bytes() == (built / output).read_bytes(), output
