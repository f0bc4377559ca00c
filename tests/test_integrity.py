"""Damaged artifacts are refused where they are read and found by `genies verify`: every single
byte flipped in a fitted state or a Parquet artifact is either refused or changes nothing that
is read, checked byte by byte against the written content."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from genies.errors import GeniesError
from genies.files.parquet import read_parquet, read_table, write_frame, write_parquet
from genies.interventions.base import State
from genies.interventions.jobs import read_state, read_state_info, write_state
from genies.rebuild import forcing, missing_after_build
from tests.helpers import run_genies

STATE = "results/interventions/m/mms/src.safetensors"
TABLE = "results/shift_metrics/m.parquet"


def write_artifacts(root: Path) -> None:
    (root / STATE).parent.mkdir(parents=True)
    tensors = {"directions": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7,
               "slope": torch.tensor(1.5, dtype=torch.float64)}  # fmt: skip
    write_state(root / STATE, State(tensors, {"loss": [0.69, 0.5]}), {"fitted": {"loss": [0.7]}})
    (root / TABLE).parent.mkdir(parents=True)
    write_frame(pd.DataFrame({"target": ["a", "b"], "accuracy": [0.25, 0.75]}), root / TABLE)


def flips(path: Path):
    """Each byte of the file flipped in turn (one bit), the original restored after."""
    original = path.read_bytes()
    try:
        for i in range(len(original)):
            damaged = bytearray(original)
            damaged[i] ^= 0x04
            path.write_bytes(bytes(damaged))
            yield i
    finally:
        path.write_bytes(original)


def test_a_flipped_byte_in_a_state_is_refused_or_changes_nothing_read(tmp_path):
    write_artifacts(tmp_path)
    path = tmp_path / STATE
    state, info = read_state(path)
    expected = {name: tensor.clone() for name, tensor in state.tensors.items()}
    refused = 0
    for _ in flips(path):
        try:
            again, again_info = read_state(path)
        except GeniesError as exc:
            assert str(path) in str(exc)
            refused += 1
            continue
        assert again_info == info
        assert all(torch.equal(again.tensors[name], expected[name]) for name in expected)
    assert refused > 0.9 * path.stat().st_size  # the tensor bytes and the header, nearly all
    # the JSON beside it edited: refused by the evaluation and by the figures' reader
    sidecar = path.with_suffix(".json")
    sidecar.write_text(sidecar.read_text().replace("0.7", "0.8"))
    for read in (read_state, read_state_info):
        with pytest.raises(GeniesError, match=r"src\.json: differs from the header"):
            read(path)


def test_a_flipped_byte_in_a_parquet_artifact_is_refused_or_changes_nothing_read(tmp_path):
    write_artifacts(tmp_path)
    path = tmp_path / TABLE
    expected = read_parquet(path, None, "shift table")
    refused = 0
    for _ in flips(path):
        try:
            pd.testing.assert_frame_equal(read_parquet(path, None, "shift table"), expected)
        except GeniesError as exc:
            assert str(path) in str(exc)
            refused += 1
    assert refused > 0


def test_verify_names_each_damaged_artifact_in_one_line(tmp_path):
    write_artifacts(tmp_path)
    result = run_genies("verify", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "ok: 2 artifacts verified\n", result.stderr
    state = tmp_path / STATE
    damaged = bytearray(state.read_bytes())
    damaged[-3] ^= 0x01  # the tensor data: the file still parses
    state.write_bytes(bytes(damaged))
    info = json.loads(state.with_suffix(".json").read_text())
    assert info["checksum"]  # recorded in both the JSON and the header
    result = run_genies("verify", "--root", str(tmp_path), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1
    assert (
        lines[0]
        == f"{state}: checksum mismatch: the fitted state is damaged; delete it and rebuild"
    )
    assert lines[-1].endswith("1 of 2 artifacts damaged: delete each and run the target again")


def test_only_a_built_chain_counts_as_lost_and_a_users_forced_files_stay(tmp_path):
    (tmp_path / "table").write_text("built")
    (tmp_path / "kept").write_text("here")
    chains = [
        ([tmp_path / "kept", tmp_path / "state"], tmp_path / "table"),
        ([tmp_path / "never"], tmp_path / "not built"),
    ]
    assert missing_after_build(chains) == [str(tmp_path / "state")]
    assert forcing(["genies", "-n"], ["a"]) == ["genies", "-n", "--forcerun", "a"]
    # --forcerun takes every value up to the next option, its last occurrence wins
    assert forcing(["genies", "-R", "fit", "-n"], ["a"]) == ["genies", "-R", "a", "fit", "-n"]


def test_a_parquet_artifact_of_other_column_types_or_no_checksum_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_artifacts(tmp_path)
    path = tmp_path / TABLE
    table = pq.read_table(path)
    # the same Python values (0.25 and 0.75 are exact in float32), another column type
    narrowed = table.set_column(1, "accuracy", table.column("accuracy").cast(pa.float32()))
    assert narrowed.column("accuracy").to_pylist() == table.column("accuracy").to_pylist()
    pq.write_table(narrowed, path)
    with pytest.raises(GeniesError, match="checksum mismatch: the shift table is damaged"):
        read_parquet(path, None, "shift table")
    # as genies wrote before checksums, and before they covered types (key genies.checksum)
    for metadata in ({}, {b"genies.checksum": b"0" * 64}):
        pq.write_table(table.replace_schema_metadata(metadata), path)
        with pytest.raises(GeniesError, match="table without a checksum .* earlier genies"):
            read_parquet(path, None, "shift table")


def test_every_kind_of_column_reads_back_as_written(tmp_path):
    """Types a round trip through Parquet lays out otherwise (a list's item name, a categorical's
    dictionary of large strings, large strings) are the same column to the reader."""
    import pyarrow as pa

    frame = pd.DataFrame(
        {
            "label": pd.Categorical(["a", "b", "a"]),
            "text": pd.Series(["x", "y", "z"], dtype="string"),
            "scores": [[0.5, 1.0], [], [0.25]],
            "count": [1, 2, 3],
        }
    )
    write_frame(frame, tmp_path / "t.parquet")
    read_parquet(tmp_path / "t.parquet", None, "table")
    large = pa.table({"text": pa.array(["x", "y"], type=pa.large_string())})
    write_parquet(large, tmp_path / "large.parquet")
    assert read_table(tmp_path / "large.parquet", "table").column("text").to_pylist() == ["x", "y"]


def test_verify_refuses_a_folder_with_no_artifact(tmp_path):
    result = run_genies("verify", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"genies: error: {tmp_path}: no artifact to verify under data/splits, "
        "results/activations, results/interventions, results/evaluations, "
        "results/shift_metrics, results/paper: not a built workspace"
    )


def test_verify_stops_where_a_failure_says_nothing_of_the_file(tmp_path, monkeypatch):
    """Permission refused (or a reader's library missing): no file is called damaged, whose
    deletion would mend nothing; the error reaches the command line's one line."""
    from genies import verify

    write_artifacts(tmp_path)

    def refused(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(verify, "reader", lambda kind: refused)
    with pytest.raises(PermissionError):
        verify.verify(str(tmp_path))
