"""Preference data in the community's layouts through `genies add-distribution`: files written by
`datasets` and pandas in each layout, the resulting splits checked record by record against the
source rows, and every kind of bad input refused in one line with nothing vendored."""

import hashlib
import json
import lzma
import shutil

import datasets
import pandas as pd
import pytest

from genies.data.preference_import import FLATTEN_RULE, Columns
from genies.data.records import HF_FEATURES, SPLIT_SCHEMA
from genies.data.splits import build_split, load_split, read_split
from genies.data.user_data import add_distribution, add_shift
from genies.data.vendored import read_manifest
from genies.errors import GeniesError
from tests.helpers import RAW_DIR, run_genies

datasets.disable_progress_bars()


@pytest.fixture
def raw(tmp_path):
    """A copy of the vendored data to add to."""
    return shutil.copytree(RAW_DIR, tmp_path / "raw")


def examples(raw, name: str) -> dict[str, list[tuple]]:
    """Per split, each example as (prompt, responses, preferred, source rows), from its Parquet
    split built by the pipeline's own split step."""
    found = {}
    for split in ("train", "test"):
        out = raw.parent / "splits" / name / f"{split}.parquet"
        build_split(raw, name, split, out)
        found[split] = [
            (
                row.prompt,
                list(row.responses),
                int(row.preferred),
                json.loads(row.extra)["source_rows"],
            )
            for row in read_split(out).itertuples()
        ]
    return found


def write_lines(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


PAIRS_TRAIN = [
    {"prompt": "p1", "chosen": "A", "rejected": "B", "id": 0},
    {"prompt": "p2", "chosen": "X", "rejected": "Y", "id": 1},
    {"prompt": "p1", "chosen": "A", "rejected": "C", "id": 2},
    {"prompt": "p3", "chosen": "M", "rejected": "N", "id": 3},
    {"prompt": "p3", "chosen": "N", "rejected": "O", "id": 4},
]


def test_pairwise_rows_of_one_prompt_become_one_example_where_they_prefer_one_response(
    raw, tmp_path
):
    folder = tmp_path / "prefs"
    folder.mkdir()
    write_lines(folder / "train.jsonl", PAIRS_TRAIN)
    write_lines(folder / "test.jsonl", [{"prompt": "q", "chosen": "yes", "rejected": "no"}])
    assert add_distribution(folder, raw) == "prefs"
    assert examples(raw, "prefs") == {
        "train": [
            ("p1", ["A", "B", "C"], 0, [0, 2]),  # A against each rejected response
            ("p2", ["X", "Y"], 0, [1]),
            ("p3", ["M", "N"], 0, [3]),  # M > N and N > O: no one preferred response
            ("p3", ["N", "O"], 0, [4]),
        ],
        "test": [("q", ["yes", "no"], 0, [0])],
    }


def test_the_import_is_recorded_in_metadata_the_split_and_the_audit(raw, tmp_path):
    import pyarrow.parquet as pq

    from genies.data.audit import audit

    folder = tmp_path / "prefs"
    folder.mkdir()
    write_lines(folder / "train.jsonl", PAIRS_TRAIN)
    write_lines(folder / "test.jsonl", [{"prompt": "q", "chosen": "yes", "rejected": "no"}])
    add_distribution(folder, raw)
    examples(raw, "prefs")
    split = raw.parent / "splits/prefs/train.parquet"
    recorded = json.loads(pq.read_schema(split).metadata[b"genies.import"])
    assert recorded["format"] == "json" and recorded["chat"] is None
    sha = hashlib.sha256((folder / "train.jsonl").read_bytes()).hexdigest()
    assert recorded["files"]["train.jsonl"] == sha
    assert recorded["per_split"]["train"] == {
        "layout": "pairwise",
        "columns": {
            "prompt": "prompt",
            "chosen": "chosen",
            "rejected": "rejected",
            "responses": None,
            "scores": None,
            "ranks": None,
        },
        "chat_messages": False,
        "rows": 5,
        "examples": 4,
        "pairs_kept_apart": 2,
    }
    row = audit(raw, raw.parent / "splits", ["prefs"]).iloc[0]
    assert row.pairs_kept_apart == 2 and "pairs_kept_apart" in row["flags"]
    assert row.imported_from == "pairwise json"
    assert row.responses_per_example == "2/3"


def test_an_implicit_prompt_is_the_shared_start_cut_at_whitespace(raw, tmp_path):
    folder = tmp_path / "hh"
    folder.mkdir()
    rows = {
        "chosen": ["Human: hi\n\nAssistant: hello there", "Human: sum 2+2\n\nAssistant: 4"],
        "rejected": ["Human: hi\n\nAssistant: help yourself", "Human: sum 2+2\n\nAssistant: 5"],
    }
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({k: v[:1] for k, v in rows.items()}).to_csv(folder / "test.csv", index=False)
    add_distribution(folder, raw)
    found = examples(raw, "hh")
    assert found["train"] == [
        ("Human: hi\n\nAssistant: ", ["hello there", "help yourself"], 0, [0]),
        ("Human: sum 2+2\n\nAssistant: ", ["4", "5"], 0, [1]),
    ]


def test_chat_messages_saved_by_datasets_are_flattened_by_the_documented_rule(raw, tmp_path):
    def chat(*turns):
        return [{"role": role, "content": text} for role, text in turns]

    rows = [
        {  # conversational, implicit prompt: the shared leading messages
            "chosen": chat(("system", "Be kind."), ("user", "Hi?"), ("assistant", "Hello!")),
            "rejected": chat(("system", "Be kind."), ("user", "Hi?"), ("assistant", "Go.")),
        },
        {
            "chosen": chat(("user", "2+2?"), ("assistant", "4")),
            "rejected": chat(("user", "2+2?"), ("assistant", "5")),
        },
    ]
    saved = tmp_path / "chats"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[1:])}
    ).save_to_disk(str(saved))
    add_distribution(saved, raw)
    found = examples(raw, "chats")
    assert found["train"] == [
        ("System: Be kind.\n\nUser: Hi?", ["Hello!", "Go."], 0, [0]),
        ("2+2?", ["4", "5"], 0, [1]),
    ]
    metadata = json.loads(
        lzma.decompress((raw / "distributions/chats/metadata.json.xz").read_bytes())
    )
    assert metadata["id"] == "chats"
    assert metadata["import"]["format"] == "save_to_disk"
    assert metadata["import"]["chat"] == FLATTEN_RULE


def multi_rows(count: int) -> list[dict]:
    return [
        {
            "prompt": f"question {i}",
            "responses": [f"r{i}a", f"r{i}b", f"r{i}c"],
            "scores": [[1.0, 9.5, 3.0], [7.0, 2.0, 6.5], [0.5, 1.5, 8.0]][i % 3],
        }
        for i in range(count)
    ]


def test_one_multi_response_file_is_split_by_the_seeded_rule(raw, tmp_path):
    source = tmp_path / "ultra.parquet"
    pd.DataFrame(multi_rows(10)).to_parquet(source)
    add_distribution(source, raw, test_fraction=0.3, seed=5)
    found = examples(raw, "ultra")
    # the rule, computed here: prompts by sha256("<seed>/<prompt>"), the first 3 to test
    ranked = sorted(
        (f"question {i}" for i in range(10)),
        key=lambda p: hashlib.sha256(f"5/{p}".encode()).hexdigest(),
    )
    expected = {
        split: [
            (f"question {i}", [f"r{i}a", f"r{i}b", f"r{i}c"], [1, 0, 2][i % 3], [i])
            for i in range(10)
            if (f"question {i}" in ranked[:3]) == (split == "test")
        ]
        for split in ("train", "test")
    }
    assert found == expected
    metadata = read_manifest(raw)  # the vendored files are in the manifest, checksummed
    assert "distributions/ultra/train.json.xz" in metadata


def test_the_same_seed_vendors_the_same_bytes_and_another_seed_another_split(raw, tmp_path):
    source = tmp_path / "ultra.jsonl"
    write_lines(source, multi_rows(12))
    for name, seed in (("first", 0), ("again", 0), ("other", 1)):
        add_distribution(source, raw, name=name, test_fraction=0.5, seed=seed)
    test = {
        n: (raw / f"distributions/{n}/test.json.xz").read_bytes()
        for n in ("first", "again", "other")
    }
    assert test["first"] == test["again"] != test["other"]


def test_ranks_name_the_best_response_by_the_lowest_rank(raw, tmp_path):
    folder = tmp_path / "ranked"
    folder.mkdir()
    rows = [{"prompt": "p", "completions": ["a", "b", "c"], "ranking": [2, 1, 3]}]
    for split in ("train", "test"):
        write_lines(folder / f"{split}.jsonl", rows)
    add_distribution(folder, raw, columns=Columns(ranks="ranking"))
    assert examples(raw, "ranked")["train"] == [("p", ["a", "b", "c"], 1, [0])]


def test_a_split_loads_with_datasets_with_lists_for_responses_and_scores(raw, tmp_path):
    folder = tmp_path / "prefs"
    folder.mkdir()
    write_lines(folder / "train.jsonl", PAIRS_TRAIN)
    write_lines(folder / "test.jsonl", PAIRS_TRAIN[:2])
    add_distribution(folder, raw)
    examples(raw, "prefs")
    path = raw.parent / "splits/prefs/train.parquet"
    loaded = datasets.load_dataset("parquet", data_files=str(path), cache_dir=str(tmp_path / "c"))
    features = loaded["train"].features
    assert features["responses"] == datasets.List(datasets.Value("string"))
    assert features["scores"] == datasets.List(datasets.Value("float64"))
    assert loaded["train"][0]["responses"] == ["A", "B", "C"]
    assert loaded["train"][0]["scores"] == [1.0, 0.0, 0.0]
    assert load_split(path).to_list() == loaded["train"].to_list()
    # the features the splits carry are those datasets derives from their Arrow schema
    expected = datasets.Features.from_arrow_schema(SPLIT_SCHEMA).to_dict()
    assert json.loads(HF_FEATURES) == {"info": {"features": expected}}


def pairwise_folder(tmp_path, train: list[dict], test=None):
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    write_lines(folder / "train.jsonl", train)
    write_lines(folder / "test.jsonl", test or [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    return folder


BAD = [
    # (rows of train.jsonl, options, message fragment)
    (
        PAIRS_TRAIN,
        {"columns": Columns(chosen="better")},
        r"no column 'better' \(columns found: prompt, chosen, rejected, id\)",
    ),
    (
        [{"question": "p", "a": "x", "b": "y"}],
        {},
        r"no preference layout in its columns \(question, a, b\)",
    ),
    (
        [{"prompt": "p", "chosen": "same", "rejected": "same"}],
        {},
        r"\(train\): row 0: chosen and rejected are the same text",
    ),
    (
        [{"prompt": 7, "chosen": "a", "rejected": "b"}],
        {},
        r"row 0: field 'prompt' must be a string, got int",
    ),
    (
        [{"prompt": "p", "responses": ["only"], "scores": [1]}],
        {},
        r"row 0: 1 response\(s\) in 'responses', needs 2\+",
    ),
    (
        [{"prompt": "p", "responses": ["a", "b", "c"], "scores": [3, 1, 3]}],
        {},
        r"row 0: responses 0 and 2 tie for the best scores 3",
    ),
    (
        [{"prompt": "p", "responses": ["a", "a"], "scores": [2, 1]}],
        {},
        r"row 0: response 0 appears twice",
    ),
    (
        [
            {"prompt": "p", "chosen": "a", "rejected": "b"},
            {"prompt": "q", "responses": ["a", "b"], "scores": [1, 2]},
        ],
        {},
        r"mixed layouts in one file: row 0 is pairwise, row 1 is multi-response",
    ),
    ([{"chosen": "abc", "rejected": "abd"}], {}, r"row 0: chosen and rejected share no prompt"),
    ([{"prompt": "p", "chosen": None, "rejected": "b"}], {}, r"row 0: field 'chosen' is empty"),
]


@pytest.mark.parametrize(("rows", "options", "message"), BAD)
def test_bad_input_is_named_in_one_error_and_nothing_is_vendored(
    raw, tmp_path, rows, options, message
):
    before = (raw / "SHA256SUMS").read_bytes()
    with pytest.raises(GeniesError, match=message):
        add_distribution(pairwise_folder(tmp_path, rows), raw, **options)
    assert (raw / "SHA256SUMS").read_bytes() == before
    assert not (raw / "distributions/bad").exists()


def test_empty_unparsable_and_unsplittable_files_are_refused(raw, tmp_path):
    folder = pairwise_folder(tmp_path, PAIRS_TRAIN)
    (folder / "test.jsonl").write_text("")
    with pytest.raises(GeniesError, match=r"bad/test\.jsonl: no rows"):
        add_distribution(folder, raw)
    (folder / "test.jsonl").write_text('{"prompt": "q", "chosen": "a",\n')
    with pytest.raises(GeniesError, match=r"bad/test\.jsonl: datasets cannot read it as json: "):
        add_distribution(folder, raw)
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"prompt": [], "chosen": [], "rejected": []}, dtype=str).to_parquet(empty)
    with pytest.raises(GeniesError, match=r"empty\.parquet: no rows"):
        add_distribution(empty, raw, test_fraction=0.5)
    one = tmp_path / "one.jsonl"
    write_lines(one, PAIRS_TRAIN)
    with pytest.raises(GeniesError, match=r"one\.jsonl: one split only; give --test-fraction"):
        add_distribution(one, raw)
    with pytest.raises(GeniesError, match=r"--test-fraction 1\.5: expected a number between"):
        add_distribution(one, raw, test_fraction=1.5)
    with pytest.raises(
        GeniesError, match=r"a test fraction of 0\.05 of 4 examples leaves a split empty"
    ):
        add_distribution(one, raw, test_fraction=0.05)
    write_lines(folder / "test.jsonl", PAIRS_TRAIN)
    with pytest.raises(
        GeniesError, match=r"already has train and test; --test-fraction is for one"
    ):
        add_distribution(folder.parent / "bad", raw, test_fraction=0.5)
    assert not (raw / "distributions/bad").exists() and not (raw / "distributions/one").exists()


def test_the_command_takes_the_layout_options_and_errors_in_one_line(raw, tmp_path):
    folder = tmp_path / "named"
    folder.mkdir()
    rows = [{"q": "p", "good": "a", "bad": "b"}]
    for split in ("train", "test"):
        write_lines(folder / f"{split}.jsonl", rows)
    base = ("add-distribution", str(folder), "--raw-dir", str(raw))
    failed = run_genies(*base)
    assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
    assert "no preference layout in its columns (q, good, bad)" in failed.stderr
    named = ("--prompt-column", "q", "--chosen-column", "good", "--rejected-column", "bad")
    added = run_genies(*base, *named)
    assert added.returncode == 0, added.stderr
    assert examples(raw, "named")["test"] == [("p", ["a", "b"], 0, [0])]


@pytest.mark.parametrize(
    "responses", ['{"same": 0.0, "same": 1.0, "x": 0.0}', '{"same": 1.0, "same": 0.0, "x": 0.0}']
)
def test_the_upstream_layout_refuses_a_repeated_response_text_as_the_other_layouts(
    raw, tmp_path, responses
):
    """A JSON object keeps the last of two equal keys: read as a dict, one response is lost (or
    the count of preferred ones is wrong); the raw pairs say what the text repeats."""
    folder = tmp_path / "twice"
    folder.mkdir()
    good = '{"prompt": "q", "responses": {"a": 1.0, "b": 0.0}}'
    (folder / "train.json").write_text(f'[{good}, {{"prompt": "p", "responses": {responses}}}]')
    (folder / "test.json").write_text(f"[{good}]")
    before = (raw / "SHA256SUMS").read_bytes()
    message = r"twice/train\.json: record 1: field 'responses': response 0 appears twice \('same'\)"
    with pytest.raises(GeniesError, match=message):
        add_distribution(folder, raw)
    assert (raw / "SHA256SUMS").read_bytes() == before
    assert not (raw / "distributions/twice").exists()
    # the JSON Lines layouts say it in the same words
    write_lines(folder.parent / "twice.jsonl", [{"prompt": "p", "responses": ["same", "same"],
                                               "scores": [1, 0]}])  # fmt: skip
    with pytest.raises(GeniesError, match=r"row 0: response 0 appears twice \('same'\)"):
        add_distribution(folder.parent / "twice.jsonl", raw, test_fraction=0.5)


def test_a_shift_from_a_distribution_to_itself_is_refused(raw):
    before = (raw / "SHA256SUMS").read_bytes()
    with pytest.raises(GeniesError, match=r"^shift alpaca_short->alpaca_short: the source is the"):
        add_shift(raw, "alpaca_short", "alpaca_short", "extreme", "x")
    assert (raw / "SHA256SUMS").read_bytes() == before
