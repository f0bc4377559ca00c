"""The published tables are the oracle: recomputed from the published evaluations, they must come
back cell for cell (strings equal, numbers within 1e-9)."""

import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest

from genies.data.shifts import load_shifts
from genies.data.splits import build_split
from genies.data.vendored import read_manifest, sha256_bytes, write_manifest
from genies.errors import GeniesError
from genies.evaluation.claims import claims_table
from genies.evaluation.summary import genies_summary
from genies.paper.compare import differing_cells
from genies.paper.published import index_evaluations
from genies.paper.tables import Context, paper_contrasts, recompute, ttc_traceability, write_tables
from tests.helpers import RAW_DIR

PUBLISHED = RAW_DIR / "published" / "generalization_metrics"
# Upstream files whose stored eval_accuracy disagrees with their own stored probabilities: we
# report the recomputed value and say so in NOTES.md, so these published cells differ.
NOT_RECOMPUTABLE = {
    # few_shot/llama-13b-raven_matrices/raven_matrices.json: stored 0.67580, probabilities 0.67352
    ("llama-13b/few_shot/GENIES.csv", 3, "source_ID_accuracy"),
    ("llama-13b/few_shot/all.csv", 22, "source_ID_accuracy"),
    ("llama-13b/few_shot/all.csv", 23, "source_ID_accuracy"),
    # few_shot/llama-13b-math_textbook/math_make_questions.json: stored 0.93333, probabilities 0.932
    ("llama-13b/few_shot/all.csv", 32, "generalization_accuracy"),
    ("llama-13b/few_shot/all.csv", 32, "differential_elicitation"),
}


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper")
    registry = load_shifts(RAW_DIR)
    for target in {s.target for s in registry.distinct}:
        build_split(RAW_DIR, target, "test", work / "splits" / target / "test.parquet")
    index = index_evaluations(RAW_DIR).to_pandas()
    tidy, notes = recompute(index, registry, RAW_DIR, work / "splits", seed=0, resamples=200)
    write_tables(tidy, notes, registry, work / "tables")
    return {"index": index, "tidy": tidy, "notes": notes, "tables": work / "tables", "work": work}


def test_every_published_table_is_recomputed(paper):
    published = sorted(PUBLISHED.rglob("*.csv"))
    assert len(published) == 36
    differences = set()
    for path in published:
        relpath = path.relative_to(PUBLISHED).as_posix()
        for cell in differing_cells(paper["tables"] / relpath, path, tolerance=1e-9):
            differences.add((relpath, cell["row"], cell["column"]))
    assert differences == NOT_RECOMPUTABLE


def test_tables_exist_for_every_model_and_intervention_with_evaluations(paper):
    combos = set(paper["tidy"].groupby(["model", "intervention"]).groups)
    assert len(combos) == 25  # 18 with published CSVs, plus llama-7b's seven
    assert ("llama-7b", "mms") in combos and ("openllama-3b", "mms") not in combos
    genies = pd.read_csv(paper["tables"] / "llama-7b" / "mms" / "GENIES.csv")
    assert len(genies) == 15 and genies.differential_elicitation.notna().all()
    assert len(pd.read_csv(paper["tables"] / "llama-7b" / "mms" / "all.csv")) == 69


def test_notes_flag_ccs_discretised_files_and_irreproducible_values(paper):
    notes = paper["notes"]
    ccs = notes[(notes.intervention == "ccs") & (notes.kind == "not_comparable")]
    assert ccs["shift"].nunique() == 56
    assert not paper["tidy"].query("intervention == 'ccs'").comparable.any()
    discretised = notes[(notes.model == "llama-30b") & (notes.kind == "discretised")]
    assert discretised.note.str.contains("evaluations/zero_shot/llama-30b-").any()
    text = (paper["tables"] / "llama-13b" / "few_shot" / "NOTES.md").read_text()
    assert "llama-13b-math_textbook/math_make_questions.json: stored 0.9333333333333333" in text
    # an interval over pairs where the pairs do not line up with the split's examples: the
    # issue that found these counted 30 of the 1,344 published target files
    over_pairs = notes[notes.kind == "interval_over_pairs"]
    assert len(over_pairs) == 30 and over_pairs.note.str.contains(" pairs, the test split's ").all()
    # calibration is not averaged over discretised files
    tidy = paper["tidy"]
    flagged = tidy[tidy.discretised]
    assert (
        len(flagged)
        and np.isin(
            flagged.intervention.unique(), ["zero_shot", "few_shot", "lora_fine_tuning"]
        ).all()
    )


def test_genies_means_match_the_published_tables(paper):
    summary = genies_summary(paper["tidy"], seed=0, resamples=200, level=0.95)
    for path in PUBLISHED.rglob("GENIES.csv"):
        model, intervention = path.parent.parent.name, path.parent.name
        expected = pd.read_csv(path).differential_elicitation.mean()
        row = summary[(summary.model == model) & (summary.intervention == intervention)].iloc[0]
        assert row.differential_elicitation == pytest.approx(expected, abs=1e-12)
        assert row.differential_elicitation_low <= expected <= row.differential_elicitation_high
    again = genies_summary(paper["tidy"], seed=0, resamples=200, level=0.95)
    pd.testing.assert_frame_equal(summary, again)
    other_seed = genies_summary(paper["tidy"], seed=1, resamples=200, level=0.95)
    assert not other_seed.differential_elicitation_low.equals(summary.differential_elicitation_low)


def test_target_tuned_capability_traceability(paper):
    table = ttc_traceability(paper["index"], RAW_DIR)
    assert len(table) == 185
    # SPEC: 162 published values match a stored R -> R evaluation, 160 of them as its maximum
    assert table.traceable.sum() == 162
    assert table.is_max_of_stored.sum() == 160


def archive_with(tmp_path, files: dict[str, str]):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(f"evaluations/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = tmp_path / "raw"
    (raw / "published").mkdir(parents=True)
    (raw / "published" / "evaluations.tar.xz").write_bytes(buffer.getvalue())
    write_manifest(raw, {"published/evaluations.tar.xz": sha256_bytes(buffer.getvalue())})
    return raw


GOOD = json.dumps({"eval_accuracy": 1.0, "eval_probabilities": [0.9, 0.6]})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"eval_accuracy": 0.5,', "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"eval_probabilities": [0.5]}', "field 'eval_accuracy': missing or not a number"),
        ('{"eval_accuracy": 0.5, "eval_probabilities": [0.2, 1.5]}', "item 1 is 1.5"),
        ('{"eval_accuracy": 0.5, "eval_probabilities": []}', "expected a non-empty list"),
    ],
)
def test_a_malformed_evaluation_file_is_named(tmp_path, content, message):
    raw = archive_with(tmp_path, {"mms/m-a/a.json": GOOD, "mms/m-a/b.json": content})
    with pytest.raises(GeniesError) as caught:
        index_evaluations(raw)
    assert "evaluations.tar.xz:evaluations/mms/m-a/b.json" in str(caught.value)
    assert message in str(caught.value)


def test_a_missing_evaluation_file_is_named(paper):
    index = paper["index"]
    gone = "mms/llama-30b-alpaca_mmlu/wrong_arc.json"
    registry = load_shifts(RAW_DIR)
    with pytest.raises(GeniesError, match=f"evaluations/{gone}: evaluation file missing"):
        recompute(index[index.path != gone], registry, RAW_DIR, paper["work"] / "splits", 0, 100)


def test_the_vendored_archive_is_verified_before_use(tmp_path):
    raw = archive_with(tmp_path, {"mms/m-a/a.json": GOOD})
    assert "published/evaluations.tar.xz" in read_manifest(raw)
    archive = raw / "published" / "evaluations.tar.xz"
    archive.write_bytes(archive.read_bytes() + b"\0")
    with pytest.raises(GeniesError, match="evaluations.tar.xz: sha256 mismatch"):
        index_evaluations(raw)


def test_paired_contrasts_agree_with_the_published_tables(paper):
    """The per-shift differences of paired pairs are the published tables' differences, and the
    mean DE difference over the 15 GENIES shifts theirs (llama-30b: LoRA - mms, about -0.064)."""
    ctx = Context(paper["index"], RAW_DIR, paper["work"] / "splits", 0, 200, 0.95)
    shifts, summary, left_out = paper_contrasts(paper["tidy"], ctx)
    columns = ["generalization_accuracy", "differential_elicitation"]
    published = {
        name: pd.read_csv(PUBLISHED / "llama-30b" / name / "GENIES.csv").set_index(
            ["source", "target"]
        )[columns]
        for name in ("lora_fine_tuning", "mms")
    }
    expected = published["lora_fine_tuning"] - published["mms"]
    rows = shifts[
        (shifts.model == "llama-30b")
        & (shifts["first"] == "lora_fine_tuning")
        & (shifts.second == "mms")
        & (shifts.genies_position > 0)
    ].set_index(["source", "target"])
    assert len(rows) == 15
    for key, row in rows.iterrows():
        assert row.accuracy_difference == pytest.approx(expected.loc[key].generalization_accuracy)
        assert row.de_difference == pytest.approx(expected.loc[key].differential_elicitation)
    mean = summary.set_index(["model", "first", "second"]).loc[
        ("llama-30b", "lora_fine_tuning", "mms"), "de_difference"
    ]
    assert mean == pytest.approx(expected.differential_elicitation.mean())
    assert round(mean, 3) == -0.064
    # few-shot files drop pairs without ids; CCS files hold no probabilities
    assert "without pair ids" in left_out["llama-7b", "few_shot"]
    assert "no probabilities" in left_out["llama-30b", "ccs"]

    bootstrap = {"seed": 0, "resamples": 200, "level": 0.95}
    claims = claims_table(paper["tidy"], summary, bootstrap).set_index(["claim", "model"])
    beats = claims.loc[("interpretability_beats_fine_tuning", "llama-30b")]
    mms = beats[beats.note.str.startswith("mms")].iloc[0]  # read the other way round: mms - LoRA
    assert mms.estimate == pytest.approx(-expected.differential_elicitation.mean())
    # r of LoRA's against zero-shot's accuracy over the distinct shifts of the published all.csv
    every = {
        name: pd.read_csv(PUBLISHED / "llama-30b" / name / "all.csv")
        .drop_duplicates(["source", "target"])
        .set_index(["source", "target"])
        .generalization_accuracy
        for name in ("zero_shot", "lora_fine_tuning")
    }
    r = np.corrcoef(every["zero_shot"], every["lora_fine_tuning"].loc[every["zero_shot"].index])
    tracks = claims.loc[("accuracy_tracks_zero_shot", "llama-30b")]
    assert tracks.estimate == pytest.approx(r[0, 1]) and len(every["zero_shot"]) == 56
