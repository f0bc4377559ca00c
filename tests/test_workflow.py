"""Real Snakemake runs on a temporary copy of the workflow with config/test.yaml."""

import json

import pyarrow.parquet as pq

from genies.models.activations import read_activations
from tests.helpers import run_snakemake

TEST_CONFIG = ("--configfile", "config/test.yaml")
DATA_TARGETS = ("splits", "data_audit")


def test_builds_the_splits_the_config_reads_and_the_audit(workflow_copy):
    result = run_snakemake(workflow_copy, *DATA_TARGETS, *TEST_CONFIG)
    assert result.returncode == 0, result.stderr
    built = sorted(
        p.relative_to(workflow_copy).as_posix() for p in workflow_copy.rglob("*.parquet")
    )
    # the two configured distributions, and alpaca_mmlu: the reference of the configured shift
    assert built == [
        "data/splits/alpaca_long/test.parquet",
        "data/splits/alpaca_long/train.parquet",
        "data/splits/alpaca_mmlu/test.parquet",
        "data/splits/alpaca_mmlu/train.parquet",
        "data/splits/alpaca_short/test.parquet",
        "data/splits/alpaca_short/train.parquet",
    ]
    assert pq.read_metadata(workflow_copy / built[0]).num_rows == 250
    # the audit covers the configured distributions
    assert (workflow_copy / "results/data_audit.csv").read_text().count("\n") == 3
    again = run_snakemake(workflow_copy, *DATA_TARGETS, *TEST_CONFIG, "--dry-run")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_an_unknown_shift_fails_before_any_job(workflow_copy):
    result = run_snakemake(workflow_copy, *TEST_CONFIG, "--config", "shifts=[math->klingon]")
    assert result.returncode != 0
    assert "unknown shift math->klingon" in result.stderr
    assert not (workflow_copy / "data" / "splits").exists()


def test_a_corrupt_raw_file_fails_its_job_and_leaves_no_split(workflow_copy):
    raw = workflow_copy / "data/raw/distributions/alpaca_short/train.json.xz"
    raw.write_bytes(raw.read_bytes()[:-10])
    result = run_snakemake(workflow_copy, *DATA_TARGETS, *TEST_CONFIG, "--keep-going")
    assert result.returncode != 0
    log = (workflow_copy / "logs/splits/alpaca_short/train.log").read_text()
    assert "alpaca_short/train.json.xz: sha256 mismatch" in log
    assert not (workflow_copy / "data/splits/alpaca_short/train.parquet").exists()
    assert (workflow_copy / "data/splits/alpaca_short/test.parquet").exists()


def test_extracts_the_activations_of_two_distributions(workflow_copy):
    targets = [
        f"results/activations/tiny-llama/raw/{name}/test.safetensors"
        for name in ("alpaca_short", "alpaca_long")
    ]
    result = run_snakemake(workflow_copy, *targets, *TEST_CONFIG)
    assert result.returncode == 0, result.stderr
    for target in targets:
        tensors, metadata = read_activations(workflow_copy / target)
        # config/test.yaml: the first 12 examples of each 2-response split
        assert metadata["rows"] == 24 and metadata["examples"] == 12
        assert metadata["model"] == "tiny-llama" and metadata["template"] == "raw"
        assert tensors["residual"].shape[1] == 4  # all hidden states of 3 layers
    manifest = json.loads((workflow_copy / "models/tiny-llama/genies_model.json").read_text())
    assert metadata["weights_sha256"] == manifest["weights_sha256"]
    log = (workflow_copy / "logs/activations/tiny-llama/alpaca_long/test.log").read_text()
    assert "24 rows" in log
    again = run_snakemake(workflow_copy, *targets, *TEST_CONFIG, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
