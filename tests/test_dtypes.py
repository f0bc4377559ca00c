"""Compute dtypes on the tiny random LLaMA: bfloat16 agrees with float32 on the same texts within
stated tolerances (extraction and zero-shot scoring), and every state and evaluation records the
dtype it was made with, a job refusing to combine two."""

import json
import re

import numpy as np
import pytest
import torch

from genies.data.pairs import evaluation_pairs
from genies.data.splits import build_split, read_split
from genies.dvc_stages import dtype_notes
from genies.errors import GeniesError
from genies.evaluation.model_jobs import computed_in
from genies.interventions import jobs
from genies.interventions.base import PairData
from genies.interventions.zero_shot import ZeroShot
from genies.models.activations import ExtractionSpec, extract, extract_split, split_texts
from genies.models.loading import load_model
from tests.helpers import RAW_DIR
from tests.test_text_scoring import split_of

DTYPES = ("float32", "bfloat16")


def refusal(first, dtype, other, other_dtype) -> str:
    """The pattern of a one-line refusal naming two inputs and both dtypes."""
    names = (re.escape(str(first)), dtype, re.escape(str(other)), other_dtype)
    return r"^{} was computed in {} but {} in {}: a job never mixes compute dtypes[^\n]*$".format(
        *names
    )


@pytest.fixture(scope="module")
def models(tiny_dir):
    return {dtype: load_model(tiny_dir, "cpu", dtype) for dtype in DTYPES}


@pytest.fixture(scope="module")
def perturbed(tiny_dir):
    """The model in bfloat16 with 5% Gaussian noise (of each tensor's spread) on every weight: a
    different model, which the tolerances must tell from rounding."""
    loaded = load_model(tiny_dir, "cpu", "bfloat16")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for weight in loaded.model.parameters():
            noise = torch.randn(weight.shape, generator=generator) * weight.float().std()
            weight.add_((0.05 * noise).to(weight.dtype))
    return loaded


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("splits")
    for split in ("train", "test"):
        build_split(RAW_DIR, "alpaca_short", split, folder / f"{split}.parquet")
    return {split: folder / f"{split}.parquet" for split in ("train", "test")}


# --- bfloat16 against float32 ---------------------------------------------------------------

EXTRACTION_TOLERANCE = 0.03


def within_extraction_tolerance(actual: torch.Tensor, expected: torch.Tensor) -> bool:
    """Every entry within EXTRACTION_TOLERANCE of its row's largest magnitude (per text, layer)."""
    scale = expected.abs().amax(dim=-1, keepdim=True)
    return bool(((actual - expected).abs() <= EXTRACTION_TOLERANCE * scale).all())


def activations(loaded, texts: list[str]) -> dict[str, torch.Tensor]:
    """Every hidden state and every layer's heads (flattened) of `texts`, stored in float32."""
    layers = loaded.model.config.num_hidden_layers
    spec = ExtractionSpec("raw", tuple(range(layers + 1)), tuple(range(layers)), "float32", 4)
    tensors, _ = extract(loaded.model, loaded.tokenizer, texts, spec, progress=False)
    return {"residual": tensors["residual"], "heads": tensors["heads"].flatten(2)}


def test_bfloat16_extraction_equals_float32_within_tolerance(models, perturbed, splits):
    """Tolerance: each cached entry within 3% of the largest magnitude of its row (text, layer).

    bfloat16 keeps 8 significant bits: one rounding moves a value by up to 2^-9 of itself (0.2%),
    and the decoder rounds at every matmul, norm and residual add. Measured over 24 texts of
    alpaca_short, every hidden state and every head of tiny-llama (3 layers): at most 0.87% of the
    row's largest magnitude (0.25% for the embeddings, growing with depth to 0.87% after the final
    norm; heads at most 0.84%). 3% leaves 3.4 times that. A different model (5% noise on the
    weights) is off by 8-12%, other texts by 12-200% (outside the embeddings of a shared last
    token), and both are checked to fail it."""
    texts, _, _ = split_texts(read_split(splits["test"]).head(12), "raw")
    reference = activations(models["float32"], texts)
    computed = activations(models["bfloat16"], texts)
    for kind, expected in reference.items():
        assert computed[kind].dtype == torch.float32  # stored alike: only the compute differs
        assert within_extraction_tolerance(computed[kind], expected), kind
        assert not torch.equal(computed[kind], expected)  # bfloat16 really ran
    # the tolerance can fail: other texts (each row against the text half the list away), and
    # the same texts through another model
    other = activations(models["bfloat16"], texts[len(texts) // 2 :] + texts[: len(texts) // 2])
    noisy = activations(perturbed, texts)
    for kind, expected in reference.items():
        assert not within_extraction_tolerance(other[kind], expected), kind
        assert not within_extraction_tolerance(noisy[kind], expected), kind


LOG_LIKELIHOOD_TOLERANCE = 0.03  # nats, per text
PROBABILITY_TOLERANCE = 0.005


def zero_shot(loaded, split) -> tuple[np.ndarray, np.ndarray]:
    """(each response's summed log-likelihood, P(preferred) of each evaluation pair)."""
    from genies.interventions.text_scoring import response_log_likelihoods, tokenisation

    pairs = evaluation_pairs(split)
    data = PairData(pairs=pairs, model=loaded, settings={"batch_size": 8, "max_length": 128})
    probability = ZeroShot().score(data, {}, ZeroShot().fit(data, {}, 0))
    prompts = list(split.prompt.repeat(split.responses.map(len)))
    responses = [response for row in split.responses for response in row]
    scores = response_log_likelihoods(
        loaded, tokenisation(loaded, 128), prompts, responses, 8, loaded.model.device
    )
    return scores, probability


def deviations(actual, expected) -> tuple[float, float]:
    """The largest differences of the log-likelihoods and of the probabilities."""
    return tuple(float(np.abs(a - e).max()) for a, e in zip(actual, expected, strict=True))


def test_bfloat16_zero_shot_scores_equal_float32_within_tolerance(models, perturbed):
    """Tolerance: each text's summed log-likelihood within 0.03 nats, each pair's P(preferred)
    within 0.005.

    The LM head's logits are taken to float32 before the log-softmax, so bfloat16 enters through
    the hidden states only. Measured on 20 texts of 13-16 tokens (log-likelihoods -56 to -81 nats,
    P(preferred) 0.39 to 0.67): log-likelihoods at most 0.0095 nats apart, probabilities 0.0016
    (log-odds 0.0063). The tolerances leave 3 times that, and lie well below the differences a
    method's accuracy rests on (the pairs' probabilities lie 0.02 to 0.2 apart). The same texts
    through a model with 5% noise on its weights (0.064 nats, 0.0088) fail both, and so do the
    pairs' scores shifted by one pair (12 nats, 0.2)."""
    split = split_of("x", [2, 3, 2, 4, 2, 3, 2, 2])
    reference = zero_shot(models["float32"], split)
    computed = zero_shot(models["bfloat16"], split)
    tolerances = (LOG_LIKELIHOOD_TOLERANCE, PROBABILITY_TOLERANCE)
    for deviation, tolerance in zip(deviations(computed, reference), tolerances, strict=True):
        assert 0 < deviation <= tolerance  # (not 0: bfloat16 really ran)
    shifted = tuple(np.roll(values, 1) for values in computed)
    for other in (zero_shot(perturbed, split), shifted):
        for deviation, tolerance in zip(deviations(other, reference), tolerances, strict=True):
            assert deviation > tolerance


# --- recorded, never mixed ------------------------------------------------------------------

EXAMPLES = 12


def cache(models, splits, folder, dtype: str, template: str, split: str, kind: str):
    """A cache file of `split` extracted in `dtype` by the job's own function."""
    layers = (3,) if kind == "residual" else ()
    heads = (0, 1, 2) if kind == "heads" else ()
    spec = ExtractionSpec(template, layers, heads, "float16", 8, 64)
    out = folder / dtype / template / f"{split}.safetensors"
    extract_split(models[dtype], splits[split], spec, out, max_examples=EXAMPLES)
    return str(out)


def hyperparameters(name: str) -> dict:
    from genies import interventions

    schema = interventions.get(name).hyperparameters
    return {key: value["default"] for key, value in schema.items()}


def test_states_and_evaluations_record_their_dtype_and_refuse_another(
    models, splits, tiny_dir, tmp_path
):
    caches = {
        (dtype, split): cache(models, splits, tmp_path, dtype, "raw", split, "residual")
        for dtype in DTYPES
        for split in ("train", "test")
    }
    hp, settings = hyperparameters("probe"), {}
    state = tmp_path / "probe.safetensors"
    train = {"raw": caches[("bfloat16", "train")]}
    jobs.fit("probe", hp, 0, splits["train"], train, tiny_dir, settings, state, EXAMPLES)
    _, info = jobs.read_state(state)
    assert (info["compute_dtype"], info["device_type"]) == ("bfloat16", "cpu")
    assert json.loads(state.with_suffix(".json").read_text())["compute_dtype"] == "bfloat16"

    # scored on caches of its own dtype: recorded in the evaluation's facts
    same = {"test": (str(splits["test"]), {"raw": caches[("bfloat16", "test")]})}
    out = tmp_path / "same.parquet"
    jobs.evaluate("probe", hp, 0, state, same, tiny_dir, settings, out, EXAMPLES)
    facts = jobs.evaluation_facts(out)
    assert (facts["compute_dtype"], facts["device_type"]) == ("bfloat16", "cpu")
    assert computed_in([str(out)]) == {
        "tiny-llama": {"compute_dtypes": ["bfloat16"], "device_types": ["cpu"]}
    }

    # on float32 caches: refused in one line naming the state, the cache and both dtypes
    other = {"test": (str(splits["test"]), {"raw": caches[("float32", "test")]})}
    out = tmp_path / "mixed.parquet"
    expected = refusal(state, "bfloat16", caches[("float32", "test")], "float32")
    with pytest.raises(GeniesError, match=expected):
        jobs.evaluate("probe", hp, 0, state, other, tiny_dir, settings, out, EXAMPLES)
    assert not out.exists()


def test_a_fit_reading_caches_of_two_dtypes_is_refused(models, splits, tiny_dir, tmp_path):
    yes = cache(models, splits, tmp_path, "bfloat16", "yes", "train", "heads")
    no = cache(models, splits, tmp_path, "float32", "no", "train", "heads")
    state = tmp_path / "cra.safetensors"
    with pytest.raises(GeniesError, match=refusal(yes, "bfloat16", no, "float32")):
        jobs.fit(
            "cra", hyperparameters("cra"), 0, splits["train"], {"yes": yes, "no": no},
            tiny_dir, {}, state, EXAMPLES,
        )  # fmt: skip
    assert not state.exists() and not state.with_suffix(".json").exists()


def test_a_state_fitted_running_the_model_in_bfloat16_is_not_scored_in_float32(
    splits, tiny_dir, tmp_path
):
    # prompt tuning trains through the model (few_shot's fit, which only records its shot
    # pool, runs none and records no dtype)
    hp = hyperparameters("prompt_tuning") | {"steps": 1, "batch_size": 2}
    settings = {"batch_size": 8, "max_length": 64}
    state = tmp_path / "prompt_tuning.safetensors"
    fitted = settings | {"dtype": "bfloat16"}
    jobs.fit("prompt_tuning", hp, 0, splits["train"], {}, tiny_dir, fitted, state, EXAMPLES)
    assert jobs.read_state(state)[1]["compute_dtype"] == "bfloat16"
    scored = {"test": (str(splits["test"]), {})}
    out = tmp_path / "prompt_tuning.parquet"
    expected = refusal(state, "bfloat16", f"the model run from {tiny_dir}", "float32")
    with pytest.raises(GeniesError, match=expected):
        jobs.evaluate(
            "prompt_tuning", hp, 0, state, scored, tiny_dir, settings | {"dtype": "float32"},
            out, EXAMPLES,
        )  # fmt: skip
    assert not out.exists()


def test_a_state_and_its_evaluation_are_the_same_bytes_again(models, splits, tiny_dir, tmp_path):
    # what they record of the machine is the kind of device, never timings or which GPU
    train = {"raw": cache(models, splits, tmp_path, "bfloat16", "raw", "train", "residual")}
    written = []
    for attempt in ("first", "second"):
        state = tmp_path / attempt / "probe.safetensors"
        hp = hyperparameters("probe")
        jobs.fit("probe", hp, 0, splits["train"], train, tiny_dir, {}, state, EXAMPLES)
        written.append((state.read_bytes(), state.with_suffix(".json").read_bytes()))
    assert written[0] == written[1]


@pytest.mark.parametrize(("recorded", "noted"), [("bfloat16", True), ("float32", False)])
def test_pull_notes_artifacts_computed_in_another_dtype(
    workflow_copy, monkeypatch, recorded, noted
):
    import shutil

    monkeypatch.chdir(workflow_copy)
    shutil.copy("config/test.yaml", "config/config.yaml")  # tiny-llama, dtype auto
    # a CPU without native bfloat16 and no GPU: auto computes float32 here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("genies.models.devices.native_bfloat16", lambda: False)
    sidecar = workflow_copy / "results/activations/tiny-llama/raw/x/test.json"
    sidecar.parent.mkdir(parents=True)
    sidecar.write_text(json.dumps({"model": "tiny-llama", "compute_dtype": recorded}))
    notes = dtype_notes(workflow_copy)
    if noted:
        assert notes == [
            "note: tiny-llama's pulled artifacts were computed in bfloat16, but dtype auto "
            "computes float32 on this machine (cpu): jobs rerun here refuse to combine with "
            "them unless its dtype is set to bfloat16"
        ]
    else:
        assert notes == []
