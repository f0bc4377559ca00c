"""Reward models on the base causal LM, the machinery `lora_fine_tuning` and `prompt_tuning`
share (SPEC §4.3, §4.4): the decoder with trainable parameters added (LoRA adapters, or virtual
prompt tokens), a linear score head on the last token, trained with a Bradley-Terry loss on one
seeded (preferred, dispreferred) pair per source example.

Model. reward = w . h, h the decoder's final (normed) hidden state at the text's last token, EOS.
Upstream used a two-logit head, averaged the logits into the reward and trained both columns with
the same pairwise loss: two Bradley-Terry heads whose mean is one linear head, equal in ranking
and in P(preferred) = sigmoid(r_chosen - r_rejected). One logit is kept here: half the head, the
same function class. The head has no bias (it cancels in every difference) and starts from
N(0, 0.02^2), as transformers initialises upstream's head, drawn with the seed.

Texts are tokenised and cut as the text-scoring methods do (genies.interventions.text_scoring:
prompt and response apart, EOS appended, BOS as the tokenizer adds it, cut to the model's
`max_length` by the rule every method shares, which keeps EOS; virtual tokens come on top).
Batches are left-padded, with an attention mask and positions counting real tokens only, so the
last column is every text's EOS and a text's reward does not depend on its batch mates
(pooling "the last non-pad token" by the pad id, as transformers' sequence-classification heads
do, picks the token before EOS when the pad token is EOS, as SmolLM2's is). Virtual prompt
tokens sit right after the padding, at positions 0..n-1, before the text's tokens.

Training: AdamW (weight decay 0, betas 0.9/0.999), constant learning rate, gradient norm clipped
at `max_grad_norm` (0.3 as upstream), `steps` steps of `batch_size` pairs (fewer when the source
has fewer examples); the pairs of step s are items s*B..(s+1)*B-1 of a stream of epochs, each a
permutation of the pairs seeded by (seed, epoch), so any step's batch is known without replaying
the ones before. Parameters, optimiser state, the random generator (LoRA dropout) and the losses
are checkpointed in the fit's work folder at most every GENIES_CHECKPOINT_SECONDS (default 60)
and at the end; a rerun of an interrupted fit resumes from there, and a checkpoint of other inputs
(hyper-parameters, seed, pairs, base weights) is discarded with a message.
"""

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genies.errors import GeniesError
from genies.files.atomic import write_atomic
from genies.interventions.base import Intervention, PairData, Reads, State
from genies.interventions.text_scoring import encode, scored_pairs, tokenisation
from genies.models.activations import length_sorted_batches, pad_batch

TRAINING_HYPERPARAMETERS = {
    # defaults sized for the embedded model's make run on a 2-core CPU (docs/performance.md);
    # config/paper.yaml sets upstream's per model
    "steps": {
        "type": "integer",
        "minimum": 1,
        "default": 6,
        "description": "Optimiser steps.",
    },
    "batch_size": {
        "type": "integer",
        "minimum": 1,
        "default": 4,
        "description": "Pairs per step (max_examples below it is refused at config check).",
    },
    "max_grad_norm": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 0.3,
        "description": "Gradient norm clipping, as upstream.",
    },
}


def checkpoint_seconds() -> float:
    return float(os.environ.get("GENIES_CHECKPOINT_SECONDS", "60"))


class RewardModel(torch.nn.Module):
    """The decoder (with its adapters, if any), optional virtual tokens, and the score head."""

    def __init__(self, decoder, embed_tokens, hidden_size: int, prompt=None):
        super().__init__()
        self.decoder = decoder
        self.embed_tokens = embed_tokens
        self.prompt = prompt  # a module mapping virtual-token numbers to embeddings, or None
        self.score = torch.nn.Linear(hidden_size, 1, bias=False)
        torch.nn.init.normal_(self.score.weight, std=0.02)

    def forward(self, ids, mask, positions) -> torch.Tensor:
        """Rewards of a left-padded batch; for prompt tuning `ids` hold -1 at virtual slots."""
        virtual = ids < 0
        embeds = self.embed_tokens(ids.clamp(min=0))
        if self.prompt is not None:
            slot = (virtual.cumsum(dim=1) - 1).clamp(min=0)
            embeds = torch.where(virtual[..., None], self.prompt(slot).to(embeds.dtype), embeds)
        hidden = self.decoder(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False
        ).last_hidden_state[:, -1]
        return self.score(hidden.float().to(self.score.weight.device))[:, 0]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trained parameters by name (the base model's frozen weights left out)."""
    return {
        name: parameter.detach().cpu().contiguous()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }


def check_tensors(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], where):
    """Refuse `tensors` unless they have exactly `expected`'s names and shapes."""
    if set(expected) != set(tensors):
        missing = sorted(set(expected) - set(tensors))[:3]
        unexpected = sorted(set(tensors) - set(expected))[:3]
        raise GeniesError(
            f"{where}: its tensors do not fit this reward model (missing {missing}, "
            f"unexpected {unexpected}); refit it"
        )
    for name, tensor in expected.items():
        if tensor.shape != tensors[name].shape:
            raise GeniesError(
                f"{where}: {name} has shape {tuple(tensors[name].shape)}, this reward model "
                f"{tuple(tensor.shape)}; refit it"
            )


@torch.no_grad()
def load_trainable(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where) -> None:
    parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
    check_tensors(parameters, tensors, where)
    for name, parameter in parameters.items():
        parameter.copy_(tensors[name])


class TextBatches:
    """Token rows of (prompt, response) texts, and their left-padded batches."""

    def __init__(self, loaded, max_length: int, virtual_tokens: int):
        self.spec = tokenisation(loaded, max_length)
        if self.spec.context is not None and max_length + virtual_tokens > self.spec.context:
            raise GeniesError(
                f"model {loaded.manifest['name']}: max_length {max_length} and "
                f"{virtual_tokens} virtual tokens exceed the {self.spec.context} positions the "
                "model has"
            )
        self.tokenizer = loaded.tokenizer
        self.virtual = [-1] * virtual_tokens

    def rows(self, prompts: list[str], responses: list[str]) -> list[list[int]]:
        encoded = encode(self.tokenizer, self.spec, prompts, responses)
        return [self.virtual + prefix + response for prefix, response in encoded]

    def batch(self, rows: list[list[int]], device):
        ids, mask, positions, _ = pad_batch(rows, self.tokenizer.pad_token_id, "left", device)
        return ids, mask, positions


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def step_pairs(seed: int, step: int, batch_size: int, n: int) -> list[int]:
    """The pair indices of optimiser step `step` (see the module docstring)."""
    items = range(step * batch_size, (step + 1) * batch_size)
    return [int(epoch_order(seed, item // n, n)[item % n]) for item in items]


def fingerprint(data: PairData, hyperparameters: dict, seed: int, method: str) -> str:
    """What a checkpoint must have been trained on to be resumed."""
    facts = {
        "method": method,
        "hyperparameters": hyperparameters,
        "max_length": data.settings["max_length"],
        "seed": seed,
        "weights_sha256": data.model.manifest["weights_sha256"],
        "pairs": list(data.pairs.pair_id),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def restore_cuda_rng(states: list[torch.Tensor], path) -> None:
    """Every GPU's generator as the checkpoint saved it; said in one line where this job sees
    another number of GPUs than the one that saved it (its dropout then draws other masks)."""
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if len(states) != available:
        print(
            f"{path}: saved the random state of {len(states)} GPU(s), this job has {available}; "
            "resuming with fresh GPU generators (not the bytes of an uninterrupted fit)",
            file=sys.stderr,
        )
    elif states:
        torch.cuda.set_rng_state_all(states)


class Checkpoint:
    """The work folder's checkpoint: parameters, optimiser, random state, losses, step."""

    def __init__(self, work_dir, key: str):
        self.path = Path(work_dir) / "checkpoint.pt" if work_dir else None
        self.key = key

    def load(self, model, optimizer) -> tuple[int, list[float]]:
        """(steps done, their losses): (0, []) without a usable checkpoint."""
        if self.path is None or not self.path.is_file():
            return 0, []
        try:
            saved = torch.load(self.path, weights_only=True)
        except Exception as exc:  # torch raises several kinds on a truncated or foreign file
            raise GeniesError(f"{self.path}: corrupt checkpoint ({exc}); delete it") from exc
        if saved.get("key") != self.key:
            print(f"{self.path}: a checkpoint of other inputs; starting over", file=sys.stderr)
            return 0, []
        load_trainable(model, saved["trainable"], self.path)
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        restore_cuda_rng(saved["cuda_rng"], self.path)
        print(f"{self.path}: resuming after step {saved['step']}", file=sys.stderr)
        return saved["step"], saved["losses"]

    def save(self, model, optimizer, step: int, losses: list[float]) -> None:
        if self.path is None:
            return
        saved = {
            "key": self.key,
            "step": step,
            "losses": losses,
            "trainable": trainable_state(model),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            # dropout on a GPU draws from each device's own generator
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, lambda tmp: torch.save(saved, tmp))


def train(model: RewardModel, texts: TextBatches, data: PairData, hp: dict, seed, key) -> list:
    """Train `model`'s trainable parameters on `data.pairs`; the loss of every step."""
    pairs = data.pairs
    chosen = texts.rows(list(pairs.prompt), list(pairs.chosen))
    rejected = texts.rows(list(pairs.prompt), list(pairs.rejected))
    batch_size = min(hp["batch_size"], len(pairs))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=hp["learning_rate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
    )
    checkpoint = Checkpoint(data.work_dir, key)
    done, losses = checkpoint.load(model, optimizer)
    model.train()
    saved_at = time.monotonic()
    tokens, started = 0, time.perf_counter()
    bar = tqdm(total=hp["steps"], initial=done, unit="step", mininterval=5, file=sys.stderr)
    for step in range(done, hp["steps"]):
        indices = step_pairs(seed, step, batch_size, len(pairs))
        rows = [chosen[i] for i in indices] + [rejected[i] for i in indices]
        rewards = model(*texts.batch(rows, data.device))
        margin = rewards[:batch_size] - rewards[batch_size:]
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        if not math.isfinite(loss.item()):
            raise GeniesError(f"training diverged at step {step + 1}: loss {loss.item()}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, hp["max_grad_norm"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += sum(len(row) for row in rows)
        bar.update()
        speed = tokens / (time.perf_counter() - started)
        bar.set_postfix(loss=f"{loss.item():.4f}", tokens_per_s=f"{speed:.0f}")
        if step + 1 < hp["steps"] and time.monotonic() - saved_at >= checkpoint_seconds():
            checkpoint.save(model, optimizer, step + 1, losses)
            saved_at = time.monotonic()
    bar.close()
    model.eval()
    return losses


@torch.no_grad()
def rewards(model: RewardModel, texts: TextBatches, prompts, responses, batch_size, device):
    """The reward of each (prompt, response) text, in batches of length-sorted texts."""
    rows = texts.rows(prompts, responses)
    out = np.empty(len(rows))
    for batch in length_sorted_batches([len(row) for row in rows], batch_size):
        out[batch] = model(*texts.batch([rows[i] for i in batch], device)).double().cpu().numpy()
    return out


class RewardModelMethod(Intervention):
    """fit and score of a reward-model method; a subclass builds its model and says how its
    trained tensors are stored."""

    reads = Reads(model=True)

    def build(self, data: PairData, hyperparameters: dict, seed: int) -> RewardModel:
        raise NotImplementedError

    def stored(self, model: RewardModel) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def restore(self, model: RewardModel, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def virtual_tokens(self, hyperparameters: dict) -> int:
        return 0

    def recorded(self, model: RewardModel) -> dict:
        """Facts about the trained model for the state's JSON."""
        return {}

    @classmethod
    def min_examples(cls, hyperparameters: dict) -> int:
        return hyperparameters["batch_size"]  # a step's pairs, each from its own example

    @classmethod
    def fit_texts(cls, hyperparameters: dict) -> tuple[int, int]:
        pairs = hyperparameters["batch_size"]
        return 2 * pairs * hyperparameters["steps"], 2 * pairs

    def texts(self, data: PairData, hyperparameters: dict) -> TextBatches:
        virtual = self.virtual_tokens(hyperparameters)
        return TextBatches(data.model, data.settings["max_length"], virtual)

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        model = self.build(data, hyperparameters, seed)
        key = fingerprint(data, hyperparameters, seed, self.name)
        losses = train(model, self.texts(data, hyperparameters), data, hyperparameters, seed, key)
        return State(tensors=self.stored(model), info={"loss": losses, **self.recorded(model)})

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        model = self.build(data, hyperparameters, seed=0)
        check_tensors(self.stored(model), state.tensors, f"the {self.name} state")
        self.restore(model, state.tensors)
        model.eval()
        texts = self.texts(data, hyperparameters)
        return scored_pairs(
            data.pairs,
            list(data.pairs.prompt),
            lambda prompts, responses: rewards(
                model, texts, prompts, responses, data.settings["batch_size"], data.device
            ),
        )
