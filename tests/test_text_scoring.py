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
from genies.interventions.few_shot import SEPARATOR, FewShot, draw_shots, pair_shots
from genies.interventions.text_scoring import encode, response_log_likelihoods, tokenisation
from genies.interventions.zero_shot import ZeroShot
from genies.models import activations
from genies.models.catalog import resolve_model
from genies.models.loading import load_model, materialise_model
from genies.models.templates import render

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


LONG = 512  # a max_length no text of these tests reaches but the long ones


def pair_data(loaded, pairs, batch_size=8, shots=None, max_length=LONG) -> PairData:
    settings = {"batch_size": batch_size, "max_length": max_length}
    return PairData(
        pairs=pairs, model=loaded, manifest=loaded.manifest, shots=shots, settings=settings
    )


def fitted(method: str, loaded, seed=0, shots=None, max_length=LONG):
    data = pair_data(
        loaded, evaluation_pairs(split_of("x", [])), shots=shots, max_length=max_length
    )
    return METHODS[method]().fit(data, {}, seed)


def reference_score(loaded, prompt, response, bos: bool, max_length=None, shots=()) -> float:
    """Summed log-probability of response + EOS after the prompt (and `shots` before it), each
    piece's tokens cut here by hand to their last `max_length`: one unpadded forward pass."""
    tokenizer = loaded.tokenizer

    def ids_of(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    head = [tokenizer.bos_token_id] if bos else []
    response_ids = [*ids_of(response), tokenizer.eos_token_id]
    pieces = [ids_of(shot) for shot in shots] + [ids_of(prompt) + response_ids]
    pieces[0] = head + pieces[0]
    if max_length is not None:
        pieces = [piece[max(len(piece) - max_length, 0) :] for piece in pieces]
    ids = torch.tensor([[token for piece in pieces for token in piece]])
    with torch.no_grad():
        log_probs = loaded.model(ids).logits[0].double().log_softmax(dim=-1)
    start = max(ids.shape[1] - min(len(response_ids), len(pieces[-1])), 1)
    return sum(log_probs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))


def reference_probability(loaded, prompt, chosen, rejected, bos: bool, **cut) -> float:
    difference = reference_score(loaded, prompt, chosen, bos, **cut) - reference_score(
        loaded, prompt, rejected, bos, **cut
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
    sums = response_log_likelihoods(
        loaded, tokenisation(loaded, LONG), prompts, responses, 8, "cpu"
    )
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
    spec = tokenisation(tiny, LONG)
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


class FakeTokenizer:
    """Token ids written in the text: "1 2 3" is [1, 2, 3]."""

    def __call__(self, texts, **kwargs):
        return {"input_ids": [[int(word) for word in text.split()] for text in texts]}


def test_encode_keeps_the_last_max_length_tokens_of_each_piece():
    spec = text_scoring.Tokenisation(bos_id=0, eos_id=9, max_length=5)
    rows = encode(FakeTokenizer(), spec, ["1 2", "1 2 3 4", "1"], ["5", "5 6", "5 6 7 8"])
    assert rows == [
        ([0, 1, 2], [5, 9]),  # short: whole, BOS included
        ([3, 4], [5, 6, 9]),  # the prompt and BOS lose their start
        ([5], [6, 7, 8, 9]),  # a response too long alone keeps its end, one token unscored
    ]
    # shots: BOS before the first, each piece cut on its own
    shots = [("1 2 3 4 5 6",)]
    assert encode(FakeTokenizer(), spec, ["7"], ["8"], shots) == [([2, 3, 4, 5, 6, 7], [8, 9])]


def test_encode_drops_the_earliest_shots_past_the_models_context():
    shots = [("1 2 3", "4 5 6")]
    fits = text_scoring.Tokenisation(bos_id=0, eos_id=9, max_length=5, context=10)
    assert encode(FakeTokenizer(), fits, ["7"], ["8"], shots) == [
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    ]
    # one position short: the first shot goes whole and BOS opens the second
    tight = dataclasses.replace(fits, context=9)
    assert encode(FakeTokenizer(), tight, ["7"], ["8"], shots) == [([0, 4, 5, 6, 7], [8, 9])]
    # the text itself always stays, cut to max_length
    tiny_context = dataclasses.replace(fits, context=2)
    assert encode(FakeTokenizer(), tiny_context, ["7"], ["8"], shots) == [([0, 7], [8, 9])]


def test_a_max_length_past_the_models_positions_is_refused(tiny):
    assert tiny.model.config.max_position_embeddings == 512
    assert tokenisation(tiny, 512).context == 512
    with pytest.raises(GeniesError, match="max_length 513 exceeds the 512 positions"):
        tokenisation(tiny, 513)


def test_a_text_longer_than_max_length_scores_as_its_last_max_length_tokens(tiny, capsys):
    # the prompt of the second example is cut; the first fits whole
    max_length = 48
    pairs = evaluation_pairs(split_of("toy/test", [2, 2], prompt_words=[2, 80]))
    state = fitted("zero_shot", tiny, max_length=max_length)
    scores = ZeroShot().score(pair_data(tiny, pairs, max_length=max_length), {}, state)
    expected = [
        reference_probability(
            tiny, pair.prompt, pair.chosen, pair.rejected, True, max_length=max_length
        )
        for pair in pairs.itertuples()
    ]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
    assert "2 of 4 texts (shots counted) lost their start" in capsys.readouterr().err
    uncut = [
        reference_probability(tiny, pair.prompt, pair.chosen, pair.rejected, True)
        for pair in pairs.itertuples()
    ]
    assert abs(scores[1] - uncut[1]) > 1e-3  # the cut changes the long text's score


def test_the_cache_zero_shot_and_the_reward_models_cut_a_long_text_alike(tiny, monkeypatch):
    max_length = 40
    split = split_of("toy/test", [2], prompt_words=[60])
    pairs = evaluation_pairs(split)
    prompt, response = pairs.prompt[0], pairs.chosen[0]
    tokenizer = tiny.tokenizer
    # the text's tokens (BOS, prompt, response) as the tokenizer gives them, EOS after
    text_ids = tokenizer(render("raw", prompt, response))["input_ids"]
    assert text_ids[0] == tokenizer.bos_token_id and len(text_ids) > max_length + 10
    scored_ids = [*text_ids, tokenizer.eos_token_id]

    cache_ids = activations.encode(tokenizer, [render("raw", prompt, response)], max_length)[0][0]
    seen = []
    original = text_scoring.log_likelihoods

    def recording(model, rows, *args):
        seen.extend(prefix + scored for prefix, scored in rows)
        return original(model, rows, *args)

    monkeypatch.setattr(text_scoring, "log_likelihoods", recording)
    data = pair_data(tiny, pairs.iloc[:1], max_length=max_length)
    ZeroShot().score(data, {}, fitted("zero_shot", tiny, max_length=max_length))
    lora = registry()["lora_fine_tuning"]().texts(data, {})
    prompt_tuning = registry()["prompt_tuning"]().texts(data, {"virtual_tokens": 3})

    # the cache reads the text without EOS, the others with it: each its last max_length tokens
    assert cache_ids == text_ids[-max_length:]
    assert scored_ids[-max_length:] in seen
    assert lora.rows([prompt], [response]) == [scored_ids[-max_length:]]
    assert prompt_tuning.rows([prompt], [response]) == [[-1] * 3 + scored_ids[-max_length:]]


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


def few_shot_scores(loaded, pairs, source, seed, batch_size=8, max_length=LONG):
    method = FewShot()
    fit_data = pair_data(loaded, training_pairs(source, seed), shots=source, max_length=max_length)
    state = method.fit(fit_data, {}, seed)
    data = pair_data(loaded, pairs, batch_size, max_length=max_length)
    scores = method.score(data, {"shots": 4}, state)
    return scores, pair_shots(pairs, state.info, 4), state


def test_few_shot_is_seeded_and_scores_the_prompt_after_its_shots(tiny, source_train):
    pairs = evaluation_pairs(split_of("tgt/test", [2, 3, 4]))
    scores, prompts, state = few_shot_scores(tiny, pairs, source_train, seed=0)
    again, prompts_again, _ = few_shot_scores(tiny, pairs, source_train, seed=0, batch_size=3)
    assert prompts == prompts_again
    np.testing.assert_allclose(scores, again, rtol=0, atol=1e-5)
    _, other_prompts, _ = few_shot_scores(tiny, pairs, source_train, seed=1)
    assert other_prompts != prompts

    pool = state.info["pool"]
    for pair, shots in zip(pairs.itertuples(), prompts, strict=True):
        picked = draw_shots(pool["example_id"], pair.example_id, 0, 4)
        upstream = [SEPARATOR + pool["prompt"][i] + pool["response"][i] for i in picked]
        assert "".join(shots) == "".join(upstream) + SEPARATOR  # then the pair's own prompt
        assert len(shots) == len(set(picked)) == 4
    # the shots are the preferred responses of the source examples
    source = source_train.set_index("example_id")
    first = source.loc[pool["example_id"][0]]
    assert pool["response"][0] == first.responses[first.preferred]
    # and the scores are zero_shot's after those shots
    expected = [
        reference_probability(tiny, pair.prompt, pair.chosen, pair.rejected, True, shots=shots)
        for pair, shots in zip(pairs.itertuples(), prompts, strict=True)
    ]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)


def test_few_shot_cuts_each_shot_and_the_text_to_max_length(tiny):
    # shots of 20 to 100 words and a prompt of 80: most pieces are longer than max_length
    max_length = 40
    source = split_of("src/train", [2] * 6, prompt_words=[20, 40, 60, 80, 100, 30])
    pairs = evaluation_pairs(split_of("tgt/test", [2, 2], prompt_words=[3, 80]))
    scores, shots, _ = few_shot_scores(tiny, pairs, source, seed=0, max_length=max_length)
    expected = [
        reference_probability(
            tiny, pair.prompt, pair.chosen, pair.rejected, True, max_length=max_length, shots=s
        )
        for pair, s in zip(pairs.itertuples(), shots, strict=True)
    ]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)


def test_few_shot_drops_the_earliest_shots_past_the_models_context(tiny, monkeypatch, capsys):
    # every piece is cut to exactly max_length: with room for 2.5 pieces, only the last shot and
    # the text stay
    max_length = 40
    source = split_of("src/train", [2] * 6, prompt_words=[60, 80, 100, 70, 90, 65])
    pairs = evaluation_pairs(split_of("tgt/test", [2, 2], prompt_words=[70, 80]))
    assert min(len(tiny.tokenizer(text)["input_ids"]) for text in source.prompt) > max_length
    assert min(len(tiny.tokenizer(text)["input_ids"]) for text in pairs.prompt) > max_length
    monkeypatch.setattr(tiny.model.config, "max_position_embeddings", 100)
    scores, shots, _ = few_shot_scores(tiny, pairs, source, seed=0, max_length=max_length)
    assert "12 shots dropped" in capsys.readouterr().err  # 3 of 4 for each of 4 texts
    expected = [
        reference_probability(
            tiny, pair.prompt, pair.chosen, pair.rejected, True, max_length=max_length, shots=s[-1:]
        )
        for pair, s in zip(pairs.itertuples(), shots, strict=True)
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
    everything = dict(zip(pairs.pair_id, pair_shots(pairs, state.info, 4), strict=True))
    kept = pairs[pairs.example_id.isin(["tgt/test/1", "tgt/test/4"])].iloc[::-1]
    for pair_id, prompt in zip(kept.pair_id, pair_shots(kept, state.info, 4), strict=True):
        assert prompt == everything[pair_id]


def test_few_shot_fits_from_the_manifest_without_the_model(tiny, tiny_without_bos, source_train):
    """Its fit job loads no weights: the tokenisation it records, read from the manifest, is
    the one scoring computes from the loaded tokenizer, which scores with the state."""
    assert not FewShot.reads.runs_model("fit") and FewShot.reads.runs_model("evaluate")
    pairs = evaluation_pairs(split_of("tgt/test", [2, 3]))
    for loaded in (tiny, tiny_without_bos):
        data = PairData(
            pairs=training_pairs(source_train, 0),
            manifest=loaded.manifest,
            shots=source_train,
            settings={"max_length": LONG},
        )
        state = FewShot().fit(data, {"shots": 4}, 0)
        assert state.info["tokenisation"] == tokenisation(loaded, LONG).info()
        scores = FewShot().score(pair_data(loaded, pairs), {"shots": 4}, state)
        assert scores.shape == (len(pairs),)


def test_few_shot_fit_needs_the_source_training_split(tiny):
    with pytest.raises(GeniesError, match="training split"):
        fitted("few_shot", tiny, shots=None)


# --- the state ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["zero_shot", "few_shot"])
def test_state_records_bos_and_the_join(tiny, tiny_without_bos, source_train, method):
    expected = {"bos": True, "join": "separate", "eos": True, "max_length": LONG}
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
