"""Every validation error path: the message names the file, the record and the field, and the
split build writes nothing."""

import json

import pytest

from genies.data.splits import build_split
from genies.errors import GeniesError
from tests.helpers import record, run_genies, write_vendored

BAD_RECORDS = [
    # (records, expected message fragment)
    ({"prompt": "x"}, "expected a JSON list of records, got dict"),
    ([], "contains no records"),
    ([record(), "not a record"], "record 1: expected an object, got str"),
    ([{"responses": {"a": 1.0, "b": 0.0}}], "record 0: field 'prompt': missing"),
    ([record(prompt=7)], "record 0: field 'prompt': must be a string, got int"),
    ([record(), {"prompt": "p"}], "record 1: field 'responses': missing"),
    ([{"prompt": "p", "responses": ["a", "b"]}], "record 0: field 'responses': must be an object"),
    ([record(responses={"a": 1.0})], "record 0: field 'responses': has 1 entries, needs 2+"),
    (
        [record(), record(), record(responses={"a": 1.0, "b": 0.5, "c": 0.0})],
        "record 2: field 'responses': score of response 1 is 0.5",
    ),
    ([record(responses={"a": True, "b": 0.0})], "score of response 0 is True"),
    ([record(responses={"a": "1.0", "b": 0.0})], "score of response 0 is '1.0'"),
    (
        [record(responses={"a": 1.0, "b": 1.0, "c": 0.0})],
        "record 0: field 'responses': 2 responses scored 1.0, expected exactly one",
    ),
    ([record(responses={"a": 0.0, "b": 0.0})], "0 responses scored 1.0"),
]


@pytest.mark.parametrize(("records", "message"), BAD_RECORDS)
def test_bad_record_is_named_and_no_split_is_written(tmp_path, records, message):
    raw = write_vendored(tmp_path / "raw", {"toy": {"train": records, "metadata": {"id": "toy"}}})
    out = tmp_path / "splits" / "toy" / "train.parquet"
    with pytest.raises(GeniesError) as caught:
        build_split(raw, "toy", "train", out)
    assert str(raw / "distributions/toy/train.json.xz") in str(caught.value)
    assert message in str(caught.value)
    assert not out.exists()
    assert not list(tmp_path.rglob("*.parquet")) and not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize(("records", "message"), BAD_RECORDS)
def test_validate_command_stops_at_the_first_bad_record(tmp_path, records, message):
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "train.json").write_text(json.dumps([record()] * 3))
    (folder / "test.json").write_text(json.dumps(records))
    result = run_genies("validate", str(folder))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(folder / "test.json") in lines[0]
    assert message in lines[0]


def test_invalid_json_is_reported_with_its_file(tmp_path):
    raw = write_vendored(tmp_path / "raw", {"toy": {"train": b'[{"prompt": "p",'}})
    with pytest.raises(GeniesError, match=r"toy/train\.json\.xz: invalid JSON"):
        build_split(raw, "toy", "train", tmp_path / "out.parquet")


def test_unknown_distribution_and_split_name_the_allowed_ones(tmp_path):
    raw = write_vendored(tmp_path / "raw", {"toy": {"train": [record()]}})
    with pytest.raises(GeniesError, match=r"unknown distribution 'nope'.*known: toy"):
        build_split(raw, "nope", "train", tmp_path / "out.parquet")
    with pytest.raises(GeniesError, match=r"unknown split 'dev'; allowed: train, test"):
        build_split(raw, "toy", "dev", tmp_path / "out.parquet")


def test_good_records_keep_order_scores_and_extra_fields(tmp_path):
    records = [
        {**record(responses={"no": 0.0, "yes": 1.0, "maybe": 0.0}), "subject": "x"},
        record(prompt="second", responses={"a": 1.0, "b": 0.0, "c": 0.0}),
    ]
    raw = write_vendored(tmp_path / "raw", {"toy": {"test": records}})
    table = build_split(raw, "toy", "test", tmp_path / "out.parquet").to_pylist()
    assert [row["example_id"] for row in table] == ["toy/test/0", "toy/test/1"]
    assert table[0]["responses"] == ["no", "yes", "maybe"]
    assert table[0]["scores"] == [0.0, 1.0, 0.0]
    assert table[0]["preferred"] == 1
    assert json.loads(table[0]["extra"]) == {"subject": "x"}
    assert json.loads(table[1]["extra"]) == {}


def test_examples_may_hold_different_response_counts_and_each_is_paired_by_its_own(tmp_path):
    from genies.data.pairs import evaluation_pairs
    from genies.data.splits import read_split

    records = [record(), record(prompt="two", responses={"b": 0.0, "a": 1.0})]
    raw = write_vendored(tmp_path / "raw", {"toy": {"test": records}})
    build_split(raw, "toy", "test", tmp_path / "out.parquet")
    pairs = evaluation_pairs(read_split(tmp_path / "out.parquet"))
    assert list(zip(pairs.chosen, pairs.rejected, strict=True)) == [
        ("hi", "bye"),
        ("hi", "no"),
        ("a", "b"),
    ]
