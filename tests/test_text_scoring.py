"""zero_shot and few_shot on the tiny random LLaMA, against plain transformers computations."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from genies.data.pairs import evaluation_pairs, training_pairs
from genies.errors import GeniesError
from genies.interventions import registry, text_scoring
from genies.interventions.base import PairData
from genies.interventions.few_shot import SEPARATOR, FewShot, draw_shots, shot_prompts
from genies.interventions.text_scoring import fit_context, response_log_likelihoods, tokenisation
from genies.interventions.zero_shot import ZeroShot
from genies.models.catalog import resolve_model
from genies.models.loading import load_model, materialise_model

METHODS = {"zero_shot": ZeroShot, "few_shot": FewShot}
WORDS = "the quick brown fox jumps over the lazy dog while the assistant answers"


def words(count: int, offset: int = 0) -> str:
    vocabulary = WORDS.split()
    return " ".join(vocabulary[(offset + i) % len(vocabulary)] for i in range(count))


def split_of(name: str, response_counts: list[int], prompt_words=None) -> pd.DataFrame:
    """A split in the layout of genies.data.splits, with prompts of varied lengths. An example's
    responses are its four words rotated: each token costs the random model about log(vocab)
    nats, so responses of different token counts would give probabilities of almost 0 or 1."""
    rows = []
    for index, k in enumerate(response_counts):
        length = prompt_words[index] if prompt_words else 3 + 7 * index
        four = words(4, index).split()
        rows.append(
            {
                "example_id": f"{name}/{index}",
                "prompt": f"Question {index}: {words(length, index)}?\n\nAnswer:",
                "responses": [f" {' '.join(four[j:] + four[:j])}." for j in range(k)],
                "scores": [1.0 if j == index % k else 0.0 for j in range(k)],
                "preferred": index % k,
                "extra": "{}",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny-llama"
    materialise_model("tiny-llama", resolve_model("tiny-llama", {}), out)
    return load_model(out, dtype="float32")  # references are float32: rounding stays small


@pytest.fixture(scope="module")
def tiny_without_bos(tiny):
    """The same model, with a manifest saying its tokenizer adds no BOS (as SmolLM2's)."""
    manifest = {**tiny.manifest, "tokenizer": {**tiny.manifest["tokenizer"], "adds_bos": False}}
    return dataclasses.replace(tiny, manifest=manifest)


def pair_data(loaded, pairs, batch_size=8, shots=None) -> PairData:
    # max_length is the activation cache's: tiny here, and text scoring must ignore it
    return PairData(
        pairs=pairs, model=loaded, shots=shots, settings={"batch_size": batch_size, "max_length": 8}
    )


def fitted(method: str, loaded, seed=0, shots=None):
    return METHODS[method]().fit(
        pair_data(loaded, evaluation_pairs(split_of("x", [])), shots=shots), {}, seed
    )


def reference_score(loaded, prompt, response, bos: bool, context=None) -> float:
    """Summed log-probability of response + EOS after the prompt: one unpadded forward pass."""
    tokenizer = loaded.tokenizer
    head = [tokenizer.bos_token_id] if bos else []
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    response_ids.append(tokenizer.eos_token_id)
    if context is not None:  # cut the prompt from the left to fit
        excess = len(head) + len(prompt_ids) + len(response_ids) - context
        prompt_ids = prompt_ids[max(excess, 0) :]
    ids = torch.tensor([head + prompt_ids + response_ids])
    with torch.no_grad():
        log_probs = loaded.model(ids).logits[0].double().log_softmax(dim=-1)
    start = len(head) + len(prompt_ids)
    return sum(log_probs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))


def reference_probability(loaded, prompt, chosen, rejected, bos: bool, context=None) -> float:
    difference = reference_score(loaded, prompt, chosen, bos, context) - reference_score(
        loaded, prompt, rejected, bos, context
    )
    return 1 / (1 + math.exp(-difference))


# --- zero_shot ------------------------------------------------------------------------------


@pytest.mark.parametrize("bos", [True, False])
def test_zero_shot_equals_summed_log_likelihoods_of_unpadded_forward_passes(
    tiny, tiny_without_bos, bos
):
    loaded = tiny if bos else tiny_without_bos
    pairs = evaluation_pairs(split_of("toy/test", [2, 3, 4]))
    method = ZeroShot()
    state = method.fit(pair_data(loaded, pairs.iloc[:0]), {}, seed=0)
    scores = method.score(pair_data(loaded, pairs), {}, state)
    expected = [
        reference_probability(loaded, pair.prompt, pair.chosen, pair.rejected, bos)
        for pair in pairs.itertuples()
    ]
    assert scores.dtype == np.float64
    assert scores.shape == (len(pairs),)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
    # not saturated at 0 or 1, where a 1e-5 tolerance would be vacuous
    assert ((scores > 0.05) & (scores < 0.95)).all()
    # and the summed log-likelihoods themselves
    prompts, responses = list(pairs.prompt), list(pairs.rejected)
    sums = response_log_likelihoods(loaded, tokenisation(loaded), prompts, responses, 8, "cpu")
    expected_sums = [
        reference_score(loaded, prompt, response, bos)
        for prompt, response in zip(prompts, responses, strict=True)
    ]
    np.testing.assert_allclose(sums, expected_sums, rtol=1e-6, atol=1e-5)


def test_scores_do_not_depend_on_batch_size_or_padding(tiny):
    # prompts from 1 to 120 words: in a batch of 8 every row but the longest is padded
    split = split_of("toy/test", [2, 3, 2, 4, 2, 3], prompt_words=[1, 120, 5, 60, 17, 90])
    pairs = evaluation_pairs(split)
    state = fitted("zero_shot", tiny)
    method = ZeroShot()
    together = method.score(pair_data(tiny, pairs, batch_size=8), {}, state)
    alone = [
        method.score(pair_data(tiny, pairs.iloc[[i]], batch_size=1), {}, state)[0]
        for i in range(len(pairs))
    ]
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)
    # the per-text log-likelihoods too, which differ by tens of nats between texts
    spec = tokenisation(tiny)
    texts = list(pairs.prompt), list(pairs.rejected)
    batched = response_log_likelihoods(tiny, spec, *texts, batch_size=8, device="cpu")
    single = response_log_likelihoods(tiny, spec, *texts, batch_size=1, device="cpu")
    np.testing.assert_allclose(batched, single, rtol=1e-6, atol=1e-5)


def test_each_distinct_text_is_scored_once(tiny, monkeypatch):
    scored = []
    original = text_scoring.log_likelihoods

    def counting(model, rows, *args):
        scored.extend(rows)
        return original(model, rows, *args)

    monkeypatch.setattr(text_scoring, "log_likelihoods", counting)
    split = split_of("toy/test", [2, 3, 4])
    ZeroShot().score(pair_data(tiny, evaluation_pairs(split)), {}, fitted("zero_shot", tiny))
    # 6 pairs, 12 (prompt, response) slots, but 2 + 3 + 4 distinct texts
    assert len(scored) == 9


def test_fit_context_cuts_the_prompt_start_then_the_response_end():
    assert fit_context([1], [2, 3], [6, 7], 5) == ([1, 2, 3], [6, 7])
    assert fit_context([1], [2, 3, 4, 5], [6, 7], 5) == ([1, 4, 5], [6, 7])
    assert fit_context([1], [2, 3], [6, 7, 8, 9, 10], 4) == ([1], [6, 7, 8])
    # without BOS one prompt token stays, to predict the response's first token
    assert fit_context([], [2, 3], [6, 7, 8, 9], 3) == ([3], [6, 7])


def test_texts_longer_than_the_context_lose_the_start_of_their_prompt(tiny, monkeypatch, capsys):
    context = 48
    monkeypatch.setattr(tiny.model.config, "max_position_embeddings", context)
    split = split_of("toy/test", [2, 2], prompt_words=[2, 80])
    pairs = evaluation_pairs(split)
    state = fitted("zero_shot", tiny)
    scores = ZeroShot().score(pair_data(tiny, pairs), {}, state)
    expected = [
        reference_probability(tiny, pair.prompt, pair.chosen, pair.rejected, True, context)
        for pair in pairs.itertuples()
    ]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
    assert "2 of 4 texts lost the start of their prompt, 0 the end" in capsys.readouterr().err


def test_an_empty_prompt_without_bos_is_an_error(tiny_without_bos):
    split = split_of("toy/test", [2])
    split.loc[0, "prompt"] = ""
    state = fitted("zero_shot", tiny_without_bos)
    with pytest.raises(GeniesError, match="prompt tokenises to nothing"):
        ZeroShot().score(pair_data(tiny_without_bos, evaluation_pairs(split)), {}, state)


# --- few_shot -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_train():
    # short prompts: four shots and the scored prompt stay within the tiny model's context
    return split_of("src/train", [2, 3] * 6, prompt_words=list(range(2, 14)))


def few_shot_scores(loaded, pairs, source, seed, batch_size=8):
    method = FewShot()
    state = method.fit(pair_data(loaded, training_pairs(source, seed), shots=source), {}, seed)
    hyperparameters = {"shots": 4}
    scores = method.score(pair_data(loaded, pairs, batch_size), hyperparameters, state)
    return scores, shot_prompts(pairs, state.info, 4), state


def test_few_shot_is_seeded_and_scores_the_prompt_after_its_shots(tiny, source_train):
    pairs = evaluation_pairs(split_of("tgt/test", [2, 3, 4]))
    scores, prompts, state = few_shot_scores(tiny, pairs, source_train, seed=0)
    again, prompts_again, _ = few_shot_scores(tiny, pairs, source_train, seed=0, batch_size=3)
    assert prompts == prompts_again
    np.testing.assert_allclose(scores, again, rtol=0, atol=1e-5)
    _, other_prompts, _ = few_shot_scores(tiny, pairs, source_train, seed=1)
    assert other_prompts != prompts

    pool = state.info["pool"]
    for pair, prompt in zip(pairs.itertuples(), prompts, strict=True):
        picked = draw_shots(pool["example_id"], pair.example_id, 0, 4)
        shots = [SEPARATOR + pool["prompt"][i] + pool["response"][i] for i in picked]
        assert prompt == "".join(shots) + SEPARATOR + pair.prompt
        assert len(set(picked)) == 4
    # the shots are the preferred responses of the source examples
    source = source_train.set_index("example_id")
    first = source.loc[pool["example_id"][0]]
    assert pool["response"][0] == first.responses[first.preferred]
    # and the scores are zero_shot's on those prompts
    expected = [
        reference_probability(tiny, prompt, pair.chosen, pair.rejected, True)
        for pair, prompt in zip(pairs.itertuples(), prompts, strict=True)
    ]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)


def test_few_shot_never_shows_an_example_itself(tiny):
    # scoring the source's own training split, with a pool of 5 and 4 shots: any self-shot would
    # be drawn for most examples
    source = split_of("src/train", [2] * 5)
    state = FewShot().fit(pair_data(tiny, training_pairs(source, 0), shots=source), {}, 0)
    pool = state.info["pool"]["example_id"]
    for seed in range(5):
        for example_id in source.example_id:
            picked = draw_shots(pool, example_id, seed, 4)
            assert example_id not in [pool[i] for i in picked]
            assert len(set(picked)) == 4
    with pytest.raises(GeniesError, match="only 4 other examples"):
        draw_shots(pool, "src/train/0", 0, 5)


def test_an_examples_shots_do_not_depend_on_the_other_examples_scored(tiny, source_train):
    pairs = evaluation_pairs(split_of("tgt/test", [2, 3, 4, 2, 3]))
    state = FewShot().fit(
        pair_data(tiny, training_pairs(source_train, 0), shots=source_train), {}, 0
    )
    everything = dict(zip(pairs.pair_id, shot_prompts(pairs, state.info, 4), strict=True))
    kept = pairs[pairs.example_id.isin(["tgt/test/1", "tgt/test/4"])].iloc[::-1]
    for pair_id, prompt in zip(kept.pair_id, shot_prompts(kept, state.info, 4), strict=True):
        assert prompt == everything[pair_id]


def test_few_shot_fit_needs_the_source_training_split(tiny):
    with pytest.raises(GeniesError, match="training split"):
        fitted("few_shot", tiny, shots=None)


# --- the state ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["zero_shot", "few_shot"])
def test_state_records_bos_and_the_join(tiny, tiny_without_bos, source_train, method):
    expected = {"bos": True, "join": "separate", "eos": True, "context": 512}
    assert fitted(method, tiny, shots=source_train).info["tokenisation"] == expected
    without = fitted(method, tiny_without_bos, shots=source_train).info["tokenisation"]
    assert without == {**expected, "bos": False}
    # a state fitted for one tokenisation refuses to score with another
    pairs = evaluation_pairs(split_of("tgt/test", [2]))
    state = fitted(method, tiny_without_bos, shots=source_train)
    with pytest.raises(GeniesError, match="tokenisation"):
        METHODS[method]().score(pair_data(tiny, pairs), {"shots": 4}, state)


def test_both_are_registered_read_the_model_and_only_few_shot_is_trained():
    assert {name: registry()[name] for name in METHODS} == METHODS
    assert not ZeroShot.trained
    assert FewShot.trained
    assert ZeroShot.reads.model and FewShot.reads.model
    assert FewShot.hyperparameters["shots"]["default"] == 4
