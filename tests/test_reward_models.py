"""lora_fine_tuning and prompt_tuning on the tiny random LLaMA: they learn a marker that the last
token shows, a text's reward does not depend on its batch, states survive a round trip, and a
fit killed midway resumes to the bytes of an uninterrupted one."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genies import interventions
from genies.data.pairs import evaluation_pairs, training_pairs
from genies.data.splits import build_split, read_split
from genies.errors import GeniesError
from genies.interventions import jobs
from genies.interventions.base import PairData, State
from genies.interventions.reward_model import Checkpoint, TextBatches, step_pairs
from genies.models.catalog import resolve_model
from genies.models.loading import load_model, materialise_model
from genies.paths import fit_work_dir
from tests.helpers import REPO, marker_records, write_vendored

METHODS = ["lora_fine_tuning", "prompt_tuning"]
SETTINGS = {"dtype": "float32", "batch_size": 4, "max_length": 128}
# enough steps for the tiny model to learn the marker (loss ~0.69 -> below 0.45)
TRAINING = {"steps": 30, "batch_size": 8}
LEARNING_RATE = {"lora_fine_tuning": 1e-3, "prompt_tuning": 5.2e-3}


def hyperparameters(name: str, **overrides) -> dict:
    method = interventions.get(name)
    defaults = {key: spec["default"] for key, spec in method.hyperparameters.items()}
    return defaults | TRAINING | {"learning_rate": LEARNING_RATE[name]} | overrides


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """marker_src/train (40) and /test (30): the preferred response ends in the marker word."""
    raw = tmp_path_factory.mktemp("raw")
    records = {
        "train": marker_records(40, 1, "preferred"),
        "test": marker_records(30, 2, "preferred"),
    }
    write_vendored(raw, {"marker_src": records})
    paths = {}
    for split in records:
        paths[split] = raw / f"{split}.parquet"
        build_split(raw, "marker_src", split, paths[split])
    return paths


def fresh(tiny_dir):
    """The model as a job loads it: each method changes the decoder it is given."""
    return load_model(tiny_dir, "cpu", "float32")


def fit(name, tiny_dir, splits, **overrides):
    method = interventions.get(name)
    pairs = training_pairs(read_split(splits["train"]), seed=0)
    data = PairData(pairs, model=fresh(tiny_dir), settings=SETTINGS)
    return method, method.fit(data, hyperparameters(name, **overrides), 0)


@pytest.mark.parametrize("name", METHODS)
def test_the_loss_falls_and_the_marker_is_learnt(name, tiny_dir, splits):
    method, state = fit(name, tiny_dir, splits)
    losses = state.info["loss"]
    assert len(losses) == TRAINING["steps"]
    assert losses[0] > 0.6  # a fresh head scores near chance: log 2 = 0.69
    assert np.mean(losses[-5:]) < 0.45
    pairs = evaluation_pairs(read_split(splits["test"]))
    data = PairData(pairs, model=fresh(tiny_dir), settings=SETTINGS)
    probability = method.score(data, hyperparameters(name), state)
    assert (probability > 0.5).mean() >= 0.9  # held-out examples of the same distribution


@pytest.mark.parametrize("name", METHODS)
def test_training_moves_the_adapters_and_the_scores_depend_on_them(name, tiny_dir, splits):
    # the tiny model's last token shows the marker, so a head trained alone passes the test
    # above: here the adapters (LoRA) or virtual tokens (prompt tuning) must have trained too
    method, state = fit(name, tiny_dir, splits)
    hp = hyperparameters(name)
    pairs = evaluation_pairs(read_split(splits["test"]))

    def test_data():
        return PairData(pairs, model=fresh(tiny_dir), settings=SETTINGS)

    initial = method.stored(method.build(test_data(), hp, seed=0))  # where fit(seed 0) started
    adapters = sorted(set(initial) - {"score.weight"})
    assert adapters and set(initial) == set(state.tensors)
    for key in adapters:
        moved = (state.tensors[key].float() - initial[key].float()).abs().max().item()
        assert moved > 1e-4, f"{key} did not train (moved {moved:.2e})"
    # the trained head on the initial adapters: the scores move when the adapters are undone
    head_only = State(tensors=initial | {"score.weight": state.tensors["score.weight"]})
    trained = method.score(test_data(), hp, state)
    untrained = method.score(test_data(), hp, head_only)
    assert np.abs(trained - untrained).mean() > 0.01, np.abs(trained - untrained).mean()


def reward_alone(model, texts: TextBatches, prompt: str, response: str) -> float:
    """Reference: the text alone, no padding, through the decoder as plain transformers runs it
    (default positions, no mask), virtual tokens first, the head on the last state."""
    ids = torch.tensor([texts.rows([prompt], [response])[0]])
    virtual = ids < 0
    embeds = model.embed_tokens(ids.clamp(min=0))
    if virtual.any():
        embeds[virtual] = model.prompt.embedding.weight[: int(virtual.sum())]
    hidden = model.decoder(inputs_embeds=embeds).last_hidden_state[0, -1]
    return float(hidden @ model.score.weight[0])


@pytest.mark.parametrize("name", METHODS)
def test_a_reward_does_not_depend_on_its_batch(name, tiny_dir, splits):
    from genies.interventions.reward_model import rewards

    method = interventions.get(name)
    loaded = fresh(tiny_dir)
    loaded.tokenizer.pad_token = loaded.tokenizer.eos_token  # as SmolLM2's: the pad is EOS
    data = PairData(evaluation_pairs(read_split(splits["test"])), model=loaded, settings=SETTINGS)
    hp = hyperparameters(name)
    model = method.build(data, hp, seed=3)
    with torch.no_grad():  # a head and adapters that are not at their initial zero/near-zero
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    model.eval()
    texts = TextBatches(loaded, SETTINGS["max_length"], hp.get("virtual_tokens", 0))
    prompts = list(data.pairs.prompt[:6])
    responses = [" stone" * (1 + 2 * i) for i in range(6)]  # lengths differ: rows get padded
    batched = rewards(model, texts, prompts, responses, batch_size=6, device="cpu")
    with torch.no_grad():
        alone = [reward_alone(model, texts, p, r) for p, r in zip(prompts, responses, strict=True)]
    np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-4)
    assert np.ptp(alone) > 1e-2  # the texts' rewards differ, so pooling the wrong token shows


@pytest.mark.parametrize("name", METHODS)
def test_a_state_round_trip_gives_the_same_probabilities(name, tiny_dir, splits, tmp_path):
    out = tmp_path / f"{name}.safetensors"
    hp = hyperparameters(name, steps=4)
    jobs.fit(name, hp, 0, splits["train"], {}, tiny_dir, SETTINGS, out)
    scored = {"test": (splits["test"], {})}
    first = jobs.evaluate(name, hp, 0, out, scored, tiny_dir, SETTINGS, tmp_path / "a.parquet")
    # the head was trained and is restored: probabilities far from a fresh head's 0.5
    assert np.abs(first.probability - 0.5).max() > 0.01
    state, info = jobs.read_state(out)
    method, in_memory = fit(name, tiny_dir, splits, steps=4)
    for key, tensor in in_memory.tensors.items():
        assert torch.equal(state.tensors[key], tensor), key  # seeded: the same tensors again
    pairs = evaluation_pairs(read_split(splits["test"]))
    data = PairData(pairs, model=fresh(tiny_dir), settings=SETTINGS)
    np.testing.assert_allclose(first.probability, method.score(data, hp, in_memory), atol=1e-12)
    assert info["fitted"]["loss"] == in_memory.info["loss"]


def test_a_state_for_another_base_model_or_text_cut_is_refused(tiny_dir, splits, tmp_path):
    other = tmp_path / "tiny-other"
    materialise_model("tiny-llama", resolve_model("tiny-llama", {"seed": 1}), other)
    out = tmp_path / "lora.safetensors"
    hp = hyperparameters("lora_fine_tuning", steps=1)
    jobs.fit("lora_fine_tuning", hp, 0, splits["train"], {}, tiny_dir, SETTINGS, out)
    with pytest.raises(GeniesError, match="fitted with weights_sha256"):
        scored = {"test": (splits["test"], {})}
        jobs.evaluate("lora_fine_tuning", hp, 0, out, scored, other, SETTINGS, tmp_path / "e")
    # texts cut elsewhere: the state records where its texts were cut, and is refused
    assert jobs.read_state(out)[1]["max_length"] == SETTINGS["max_length"]
    longer = SETTINGS | {"max_length": 2 * SETTINGS["max_length"]}
    with pytest.raises(
        GeniesError, match="fitted with max_length 128, but this evaluation uses 256"
    ):
        scored = {"test": (splits["test"], {})}
        jobs.evaluate("lora_fine_tuning", hp, 0, out, scored, tiny_dir, longer, tmp_path / "e")
    # a state that does not say (an earlier genies wrote it) is refused too
    state, info = jobs.read_state(out)
    del info["max_length"]
    jobs.write_state(out, state, info)
    with pytest.raises(GeniesError, match="fitted with max_length None, but this evaluation uses"):
        scored = {"test": (splits["test"], {})}
        jobs.evaluate("lora_fine_tuning", hp, 0, out, scored, tiny_dir, SETTINGS, tmp_path / "e")


KILL_AT_STEP = """
import os, signal, sys, torch
from genies.interventions import jobs
calls = 0
step = torch.optim.AdamW.step
def counted(self, *args, **kwargs):
    global calls
    calls += 1
    if calls == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
    return step(self, *args, **kwargs)
torch.optim.AdamW.step = counted
name, hp, split, model, settings, out = sys.argv[1:7]
jobs.fit(name, eval(hp), 0, split, {}, model, eval(settings), out)
"""


def run_fit(name, hp, splits, tiny_dir, out, kill_at=0, signal_name="SIGKILL"):
    env = dict(os.environ, GENIES_CHECKPOINT_SECONDS="0", KILL_AT=str(kill_at))
    env |= {"SIGNAL": signal_name, "PYTHONPATH": str(REPO / "src")}
    arguments = [name, repr(hp), str(splits["train"]), str(tiny_dir), repr(SETTINGS), str(out)]
    command = [sys.executable, "-c", KILL_AT_STEP, *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("name", "signal_name"), [(m, "SIGKILL") for m in METHODS] + [("lora_fine_tuning", "SIGTERM")]
)
def test_a_killed_fit_resumes_to_the_uninterrupted_bytes(
    name, signal_name, tiny_dir, splits, tmp_path
):
    hp = hyperparameters(name, steps=6)
    whole = tmp_path / "whole.safetensors"
    assert run_fit(name, hp, splits, tiny_dir, whole).returncode == 0
    out = tmp_path / "killed.safetensors"
    killed = run_fit(name, hp, splits, tiny_dir, out, kill_at=4, signal_name=signal_name)
    assert killed.returncode == -getattr(signal, signal_name)
    assert not out.exists()  # no partial state looks complete
    work = fit_work_dir(out)
    assert os.listdir(work) == ["checkpoint.pt"]
    resumed = run_fit(name, hp, splits, tiny_dir, out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after step 3" in resumed.stderr
    assert out.read_bytes() == whole.read_bytes()
    assert not os.path.exists(work)  # gone once the state is written


def test_a_corrupt_checkpoint_is_refused_naming_it(tiny_dir, splits, tmp_path):
    hp = hyperparameters("lora_fine_tuning", steps=6)
    out = tmp_path / "killed.safetensors"
    killed = run_fit("lora_fine_tuning", hp, splits, tiny_dir, out, kill_at=4)
    assert killed.returncode == -signal.SIGKILL
    checkpoint = Path(fit_work_dir(out)) / "checkpoint.pt"
    saved = checkpoint.read_bytes()
    checkpoint.write_bytes(saved[: len(saved) // 2])  # a disk that filled up mid-write
    resumed = run_fit("lora_fine_tuning", hp, splits, tiny_dir, out)
    assert resumed.returncode != 0
    assert f"{checkpoint}: corrupt checkpoint" in resumed.stderr.strip().splitlines()[-1]
    assert not out.exists()


def test_a_checkpoint_restores_every_gpus_generator(tmp_path, monkeypatch, capsys):
    """Dropout on a GPU draws from that GPU's generator: the checkpoint keeps each one's state
    beside the CPU's (torch.cuda stood in for here: this machine has no GPU), and a resume on
    another number of GPUs says in one line that it cannot restore them."""
    states = [torch.tensor([1, 2, 3], dtype=torch.uint8), torch.tensor([4, 5], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters())
    Checkpoint(tmp_path, "key").save(model, optimizer, 1, [0.5])
    with torch.no_grad():
        assert Checkpoint(tmp_path, "key").load(model, optimizer) == (1, [0.5])
    assert len(restored) == 2 and all(map(torch.equal, restored, states))
    restored.clear()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with torch.no_grad():
        Checkpoint(tmp_path, "key").load(model, optimizer)
    assert not restored
    assert "saved the random state of 2 GPU(s), this job has 1" in capsys.readouterr().err


def plain_peft_losses(tiny_dir, rows_chosen, rows_rejected, hp) -> list[float]:
    """An independent LoRA reward-model loop in plain peft: the decoder with adapters, a linear
    head on the last position of left-padded batches, the Bradley-Terry loss, AdamW with the
    gradient norm clipped; each step's pairs from the documented per-epoch permutations."""
    from peft import LoraConfig, get_peft_model

    loaded = fresh(tiny_dir)
    torch.manual_seed(0)  # the seed fit was given: the same adapters and head drawn first
    config = LoraConfig(
        r=hp["r"],
        lora_alpha=hp["alpha"],
        lora_dropout=hp["dropout"],
        target_modules=hp["target_modules"],
        bias="none",
    )
    decoder = get_peft_model(loaded.model.model, config)
    head = torch.nn.Linear(loaded.model.config.hidden_size, 1, bias=False)
    torch.nn.init.normal_(head.weight, std=0.02)
    parameters = [p for p in decoder.parameters() if p.requires_grad] + [head.weight]
    optimizer = torch.optim.AdamW(parameters, lr=hp["learning_rate"], weight_decay=0.0)
    n, size, losses = len(rows_chosen), hp["batch_size"], []
    for step in range(hp["steps"]):
        items = range(step * size, (step + 1) * size)
        picked = [np.random.default_rng([0, i // n]).permutation(n)[i % n] for i in items]
        rows = [rows_chosen[i] for i in picked] + [rows_rejected[i] for i in picked]
        width = max(map(len, rows))
        pad = loaded.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows])
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        hidden = decoder(
            input_ids=ids, attention_mask=mask, position_ids=positions
        ).last_hidden_state
        rewards = head(hidden[:, -1])[:, 0]
        loss = -torch.nn.functional.logsigmoid(rewards[:size] - rewards[size:]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, hp["max_grad_norm"])
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_lora_losses_equal_a_plain_peft_loop_on_the_same_batches(tiny_dir, splits):
    # dropout off: the two loops draw no random numbers after initialisation
    hp = hyperparameters("lora_fine_tuning", steps=6, batch_size=4, dropout=0.0)
    method, state = fit("lora_fine_tuning", tiny_dir, splits, **hp)
    pairs = training_pairs(read_split(splits["train"]), seed=0)
    # the tokens both loops train on
    texts = TextBatches(fresh(tiny_dir), SETTINGS["max_length"], 0)
    chosen = texts.rows(list(pairs.prompt), list(pairs.chosen))
    rejected = texts.rows(list(pairs.prompt), list(pairs.rejected))
    plain = plain_peft_losses(tiny_dir, chosen, rejected, hp)
    assert plain[-1] < plain[0]  # it trains
    np.testing.assert_allclose(state.info["loss"], plain, rtol=1e-5)


def test_every_epoch_visits_each_pair_once_in_its_own_seeded_order():
    """Steps of 4 over 10 pairs: each epoch is the permutation numpy's generator seeded with
    (seed, epoch) draws, as documented, so epochs differ and seeds differ."""
    n, batch, steps = 10, 4, 8  # 32 items: epochs 0, 1, 2 whole and 3 begun
    stream = [i for step in range(steps) for i in step_pairs(7, step, batch, n)]
    for epoch in range(4):
        order = stream[epoch * n : (epoch + 1) * n]
        assert order == list(np.random.default_rng([7, epoch]).permutation(n))[: len(order)]
        assert len(order) == 2 or sorted(order) == list(range(n))
    assert stream[:n] != stream[n : 2 * n]
    assert step_pairs(8, 0, batch, n) != step_pairs(7, 0, batch, n)
