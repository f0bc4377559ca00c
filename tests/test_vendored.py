import io
import json
import lzma
import tarfile

import pytest

from genies.data.validate import distribution_dirs, validate_distribution_dir
from genies.data.vendored import (
    load_vendored_json,
    read_manifest,
    read_verified,
    vendor_upstream,
    vendored_distributions,
)
from genies.errors import GeniesError
from tests.helpers import RAW_DIR, record, run_genies, write_vendored

STRAY = {
    "extra.json": '[{"instruction": "no prompt here"}]',
    "train-copy.json": '[{"responses": {}}]',
    "test copy.json": "not json at all",
    ".meta_data.json.swp": "\x00\x01binary",
    "hps/train.json": "[]",
    "hps/test.json": "{}",
}


def test_vendored_data_is_complete_and_verifies():
    distributions = vendored_distributions(RAW_DIR)
    assert len(distributions) == 66
    manifest = read_manifest(RAW_DIR)
    assert sum(name.startswith("distributions/") for name in manifest) == 66 * 3
    assert sum(name.startswith("published/target_tuned_capability/") for name in manifest) == 185
    assert sum(name.startswith("published/generalization_metrics/") for name in manifest) == 36
    assert not any("copy" in name or "extra" in name or "hps" in name for name in manifest)
    for relpath in manifest:
        read_verified(RAW_DIR, relpath)


def test_a_corrupt_vendored_file_is_named(tmp_path):
    raw = write_vendored(tmp_path, {"toy": {"train": [record()]}})
    path = raw / "distributions/toy/train.json.xz"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(GeniesError, match=r"toy/train\.json\.xz: sha256 mismatch"):
        load_vendored_json(raw, "distributions/toy/train.json.xz")


def test_missing_and_unlisted_files_are_named(tmp_path):
    raw = write_vendored(tmp_path, {"toy": {"train": [record()]}})
    (raw / "distributions/toy/train.json.xz").unlink()
    with pytest.raises(GeniesError, match=r"train\.json\.xz: file missing"):
        read_verified(raw, "distributions/toy/train.json.xz")
    with pytest.raises(GeniesError, match=r"test\.json\.xz: not listed in .*SHA256SUMS"):
        read_verified(raw, "distributions/toy/test.json.xz")
    with pytest.raises(GeniesError, match=r"SHA256SUMS: manifest not found"):
        read_manifest(tmp_path / "elsewhere")


def test_stray_upstream_files_are_ignored_by_validate(tmp_path):
    folder = tmp_path / "toy"
    for name, content in STRAY.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    (folder / "train.json").write_text(json.dumps([record()] * 4))
    (folder / "test.json").write_text(json.dumps([record()] * 2))
    (folder / "metadata.json").write_text(json.dumps({"id": "toy"}))
    assert distribution_dirs(tmp_path) == [folder]
    assert validate_distribution_dir(folder) == {"train": 4, "test": 2}
    result = run_genies("validate", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "4 train, 2 test" in result.stdout


def test_a_folder_without_data_is_an_error(tmp_path):
    with pytest.raises(GeniesError, match="no train.json or test.json"):
        distribution_dirs(tmp_path)
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "train.json").write_text(json.dumps([record()]))
    with pytest.raises(GeniesError, match=r"only: missing test\.json"):
        validate_distribution_dir(tmp_path / "only")


def add_file(tar: tarfile.TarFile, name: str, content: str) -> None:
    data = content.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_vendor_keeps_data_files_and_leaves_stray_ones(tmp_path):
    upstream = tmp_path / "upstream"
    (upstream / "distribution_shifts" / "extreme").mkdir(parents=True)
    shift = json.dumps([{"source": "toy", "target": "toy"}])
    (upstream / "distribution_shifts" / "all.json").write_text(shift)
    (upstream / "distribution_shifts" / "extreme" / "skill.json").write_text(shift)
    with tarfile.open(upstream / "distributions.tar.xz", "w:xz") as tar:
        add_file(tar, "distributions/toy/train.json", json.dumps([record()]))
        add_file(tar, "distributions/toy/test.json", json.dumps([record()]))
        add_file(tar, "distributions/toy/metadata.json", json.dumps({"id": "toy"}))
        for name, content in STRAY.items():
            add_file(tar, f"distributions/toy/{name}", content)
    published = upstream / "published-results"
    (published / "target_tuned_capability" / "m").mkdir(parents=True)
    (published / "target_tuned_capability" / "m" / "toy.json").write_text("{}")
    (published / "generalization_metrics" / "m" / "zero_shot").mkdir(parents=True)
    (published / "generalization_metrics" / "m" / "zero_shot" / "all.csv").write_text("a\n")
    with tarfile.open(published / "evaluations.tar.xz", "w:xz") as tar:
        add_file(tar, "evaluations/zero_shot/m/toy.json", "{}")
    raw = tmp_path / "raw"
    manifest = vendor_upstream(upstream, raw)
    assert sorted(manifest) == [
        "distribution_shifts/all.json",
        "distribution_shifts/extreme/skill.json",
        "distributions/toy/metadata.json.xz",
        "distributions/toy/test.json.xz",
        "distributions/toy/train.json.xz",
        "published/evaluations.tar.xz",
        "published/generalization_metrics/m/zero_shot/all.csv",
        "published/target_tuned_capability/m/toy.json",
    ]
    archive = (published / "evaluations.tar.xz").read_bytes()
    assert (raw / "published/evaluations.tar.xz").read_bytes() == archive
    assert read_manifest(raw) == manifest
    train = lzma.decompress((raw / "distributions/toy/train.json.xz").read_bytes())
    assert json.loads(train) == [record()]
