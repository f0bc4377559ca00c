import pandas as pd
import pytest

from genies.data.pairs import evaluation_pairs, training_pairs
from genies.data.splits import build_split, read_split
from tests.helpers import RAW_DIR


def split_of(response_counts: list[int]) -> pd.DataFrame:
    rows = []
    for index, k in enumerate(response_counts):
        preferred = index % k
        rows.append(
            {
                "example_id": f"toy/test/{index}",
                "prompt": f"prompt {index}",
                "responses": [f"r{index}.{j}" for j in range(k)],
                "scores": [1.0 if j == preferred else 0.0 for j in range(k)],
                "preferred": preferred,
                "extra": "{}",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def alpaca_mmlu_test(tmp_path_factory):
    out = tmp_path_factory.mktemp("splits") / "alpaca_mmlu" / "test.parquet"
    build_split(RAW_DIR, "alpaca_mmlu", "test", out)
    return read_split(out)


def test_alpaca_mmlu_test_gives_250_examples_and_750_pairs(alpaca_mmlu_test):
    assert len(alpaca_mmlu_test) == 250
    pairs = evaluation_pairs(alpaca_mmlu_test)
    assert len(pairs) == 750
    assert pairs.pair_id.is_unique
    assert len(training_pairs(alpaca_mmlu_test, seed=0)) == 250


def test_evaluation_pairs_pit_the_preferred_response_against_each_other_one():
    split = split_of([2, 3, 4])
    pairs = evaluation_pairs(split)
    assert len(pairs) == 1 + 2 + 3
    for row in split.itertuples():
        mine = pairs[pairs.example_id == row.example_id]
        assert set(mine.chosen) == {row.responses[row.preferred]}
        expected = [r for j, r in enumerate(row.responses) if j != row.preferred]
        assert list(mine.rejected) == expected


def test_training_pairs_are_seeded_and_independent_of_row_order():
    split = split_of([4] * 200)
    first = training_pairs(split, seed=7)
    assert first.equals(training_pairs(split, seed=7))
    assert not first.rejected.equals(training_pairs(split, seed=8).rejected)
    shuffled = training_pairs(split.sample(frac=1, random_state=1), seed=7)
    # the same draw per example; only the row each example sits on differs
    assert (
        first.drop(columns="example_index")
        .set_index("example_id")
        .sort_index()
        .equals(shuffled.drop(columns="example_index").set_index("example_id").sort_index())
    )
    assert (first.chosen != first.rejected).all()
    # every dispreferred position gets drawn: the draw is not stuck on one index
    assert first.rejected_position.nunique() == 4
