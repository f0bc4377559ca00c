"""`max_examples` draws a seeded sample of each split (not its first rows), which the cache records
by id and every job reading the cache must share."""

import numpy as np
import pandas as pd
import pytest

from genies.data.splits import build_split, read_examples, sample_examples
from genies.errors import GeniesError
from genies.interventions.jobs import load_activations
from genies.models.activations import ExtractionSpec, extract_split
from genies.models.catalog import resolve_model
from genies.models.loading import load_model, materialise_model
from tests.helpers import RAW_DIR


def ordered_split(n: int) -> pd.DataFrame:
    return pd.DataFrame({"example_id": [f"ex-{i:03d}" for i in range(n)], "row": range(n)})


def test_the_same_seed_draws_the_same_examples_and_another_seed_others():
    split = ordered_split(100)
    first = sample_examples(split, 10, seed=0)
    assert first.example_id.tolist() == sample_examples(split, 10, seed=0).example_id.tolist()
    assert first.example_id.tolist() != sample_examples(split, 10, seed=1).example_id.tolist()
    assert first.example_id.tolist() != split.example_id.head(10).tolist()  # not the first rows
    assert first.row.is_monotonic_increasing  # kept in the split's order
    assert list(first.index) == list(range(10))
    # the draw depends on the ids, not on where they sit in the file
    shuffled = split.sample(frac=1, random_state=3)
    assert set(sample_examples(shuffled, 10, seed=0).example_id) == set(first.example_id)
    # a larger sample keeps a smaller one; a count past the split takes it whole
    assert set(first.example_id) <= set(sample_examples(split, 30, seed=0).example_id)
    assert sample_examples(split, 100, seed=0).equals(split)
    assert sample_examples(split, None, seed=0).equals(split)


def test_every_example_is_drawn_equally_often_over_seeds():
    # an ordered file: a head() would draw the first quarter always, the rest never
    split = ordered_split(20)
    drawn = np.zeros(20)
    seeds = 800
    for seed in range(seeds):
        drawn[sample_examples(split, 5, seed).row.to_numpy()] += 1
    # 5 of 20: each example in a quarter of the samples (binomial sd 0.015 over 800 seeds)
    assert np.all(np.abs(drawn / seeds - 0.25) < 0.07), drawn / seeds


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    materialise_model("tiny-llama", resolve_model("tiny-llama", {}), folder)
    return load_model(folder, "cpu", "float32")


def test_a_cache_records_its_sample_and_a_job_drawing_another_is_refused(tiny, tmp_path):
    split_path = tmp_path / "alpaca_short" / "train.parquet"
    build_split(RAW_DIR, "alpaca_short", "train", split_path)
    out = tmp_path / "raw.safetensors"
    spec = ExtractionSpec("raw", (3,), (), "float16", 8, 64)
    metadata, _ = extract_split(tiny, split_path, spec, out, max_examples=4, seed=7)
    drawn = read_examples(split_path, 4, seed=7)
    assert metadata["example_ids"] == drawn.example_id.tolist()
    assert metadata["sample_seed"] == 7 and metadata["max_examples"] == 4
    loaded = load_activations({"raw": out}, split_path, drawn, tiny.manifest)
    assert loaded["raw"][0]["residual"].shape[0] == 2 * 4  # two responses per example
    # as many examples, drawn with another seed: the rows would belong to other examples
    other = read_examples(split_path, 4, seed=8)
    with pytest.raises(GeniesError, match=r"raw\.safetensors: extracted from other examples"):
        load_activations({"raw": out}, split_path, other, tiny.manifest)
