"""How the methods that read the model itself (zero_shot, few_shot) score a text: the summed
log-likelihood of the response and EOS given the prompt,

    score = sum over t in response + EOS of log p(token_t | tokens before t),

and a pair's P(preferred) is the softmax of its two responses' scores, i.e.
sigmoid(score_chosen - score_rejected).

Tokenisation, the same for both methods and recorded in their State.info under "tokenisation":
- prompt and response are tokenised separately, without special tokens, and concatenated, then
  EOS is appended (as upstream, SPEC §4.0), so the response's tokens are exactly its own whatever
  the tokenizer would have merged across the join;
- BOS is prepended when the tokenizer adds it by default (the manifest's `tokenizer.adds_bos`:
  tiny-llama yes, SmolLM2 no). Upstream never prepended it on this path.
- BOS + prompt + response + EOS is cut to the model's `max_length` by the activation cache's own
  rule (genies.models.activations.truncate): a long text loses the start of its prompt, BOS
  included, and one whose response does not fit alone keeps the response's end; its first kept
  token is then not scored, since nothing before it predicts it. few_shot's shots are cut by the
  same rule one by one, BOS before the first. Where the pieces together exceed the positions
  the model has (its config's `max_position_embeddings`), the earliest shots are dropped whole
  until they fit, and the count is printed: a text never runs past the model's context.

Computation: each distinct prompt once, then its responses from its key/value cache, prompts
sorted by length, in batches of about the model's `batch_size` texts (how, never what: a text's
score does not depend on its batch mates), with positions counting real tokens. The LM head runs
only on the hidden states that predict a response token (no vocabulary logits for prompt
tokens), log-softmax in float32, sums in float64. Each prompt is computed once, not once per
response (docs/performance.md, "Few-shot scoring").
"""

import sys
from dataclasses import dataclass

import numpy as np
import torch

from genies.errors import GeniesError
from genies.interventions.base import PairData
from genies.models.activations import pad_batch, truncate
from genies.models.families import next_token_logits


@dataclass(frozen=True)
class Tokenisation:
    bos_id: int | None  # prepended to every text, or None
    eos_id: int
    max_length: int  # the model's: the tokens a text keeps
    context: int | None = None  # the positions the model has, where its config says

    def info(self) -> dict:
        return tokenisation_info(self.bos_id is not None, self.max_length)


def tokenisation_info(bos: bool, max_length: int) -> dict:
    """What a state records of the tokenisation it was fitted with."""
    return {"bos": bos, "join": "separate", "eos": True, "max_length": max_length}


def adds_bos(manifest: dict) -> bool:
    """Whether the model's tokenizer adds BOS by default, as its manifest records."""
    adds = manifest.get("tokenizer", {}).get("adds_bos")
    if adds is None:
        raise GeniesError(
            f"model {manifest.get('name')}: the manifest lacks tokenizer.adds_bos; "
            "materialise the model again"
        )
    return adds


def tokenisation(loaded, max_length: int) -> Tokenisation:
    """The tokenisation of texts for the loaded model (genies.models.loading.LoadedModel) and
    its settings' `max_length`."""
    from genies.models.loading import context_length  # transformers: only jobs that run a model

    if loaded is None:
        raise GeniesError("scoring texts needs the model, but PairData.model is None")
    name, tokenizer = loaded.manifest["name"], loaded.tokenizer
    bos = adds_bos(loaded.manifest)
    if tokenizer.eos_token_id is None:
        raise GeniesError(f"model {name}: the tokenizer has no EOS token")
    return Tokenisation(
        bos_id=tokenizer.bos_token_id if bos else None,
        eos_id=tokenizer.eos_token_id,
        max_length=max_length,
        context=context_length(loaded, max_length),
    )


def encode(
    tokenizer, spec: Tokenisation, prompts: list[str], responses: list[str], shots=None
) -> list[tuple[list[int], list[int]]]:
    """(prefix ids, scored ids) of each text: its `shots` (a tuple of texts per text, or None)
    then BOS + prompt + response + EOS, each piece truncated on its own (BOS counted with the
    first); the scored ids are the kept tokens of the response and EOS."""
    if not prompts:
        return []

    def tokenized(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]

    shots = shots or [()] * len(prompts)
    distinct = sorted({shot for row in shots for shot in row})
    shot_ids = dict(zip(distinct, tokenized(distinct) if distinct else [], strict=True))
    head = [] if spec.bos_id is None else [spec.bos_id]
    rows, pieces_cut, pieces, dropped = [], 0, 0, 0
    for row, prompt, response in zip(shots, tokenized(prompts), tokenized(responses), strict=True):
        scored = [*response, spec.eos_id]
        full = [shot_ids[shot] for shot in row] + [prompt + scored]
        while True:
            with_head = [head + full[0], *full[1:]]
            kept = [truncate(piece, spec.max_length) for piece in with_head]
            if spec.context is None or len(full) == 1 or sum(map(len, kept)) <= spec.context:
                break
            full, dropped = full[1:], dropped + 1  # the earliest shot goes
        full = with_head
        pieces_cut += sum(len(k) < len(f) for k, f in zip(kept, full, strict=True))
        pieces += len(full)
        ids = [token for piece in kept for token in piece]
        start = len(ids) - min(len(scored), len(kept[-1]))
        if start == 0 and len(kept[-1]) == len(full[-1]):
            raise GeniesError(
                "a prompt tokenises to nothing and the tokenizer adds no BOS: "
                "nothing predicts its response's first token"
            )
        start = max(start, 1)  # a response cut alone: its first kept token only predicts
        rows.append((ids[:start], ids[start:]))
    if pieces_cut:
        print(
            f"text scoring: {pieces_cut} of {pieces} texts (shots counted) lost their start, "
            f"cut to max_length {spec.max_length} tokens",
            file=sys.stderr,
        )
    if dropped:
        print(
            f"text scoring: {dropped} shots dropped, the earliest of their texts, to fit the "
            f"model's {spec.context} positions",
            file=sys.stderr,
        )
    return rows


def prefix_groups(rows, batch_size: int) -> list[list[tuple[int, list[int]]]]:
    """Batches of distinct prefixes, each with the rows that continue it: prefixes sorted by
    length, a batch closed once it holds `batch_size` rows (so the cache copies for the
    responses take no more memory than `batch_size` texts would)."""
    members: dict[tuple, list[int]] = {}
    for index, (prefix, _) in enumerate(rows):
        members.setdefault(tuple(prefix), []).append(index)
    batches, batch, size = [], [], 0
    for prefix in sorted(members, key=len, reverse=True):
        batch.append((members[prefix], list(prefix)))
        size += len(members[prefix])
        if size >= batch_size:
            batches.append(batch)
            batch, size = [], 0
    return batches + ([batch] if batch else [])


def token_log_probabilities(model, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) of each hidden state's next token: the LM head on these states only."""
    logits = next_token_logits(model, hidden)
    chosen = logits.log_softmax(dim=-1).gather(1, targets[:, None].to(logits.device))
    return chosen[:, 0].to(hidden.device)


@torch.inference_mode()
def log_likelihoods(
    model, rows: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int, device
) -> np.ndarray:
    """Summed log-probability of each row's response ids given its prefix ids, in row order.

    Each distinct prefix runs once: its rows' responses continue from its key/value cache (an
    example's responses share its prompt, which is most of a few-shot text). Prefixes are
    left-padded so that they all end at the last column; responses are right-padded after them,
    with the attention mask covering both and positions continuing each prefix's own."""
    from transformers import DynamicCache

    scores = np.empty(len(rows))
    for batch in prefix_groups(rows, batch_size):
        prefix_ids, mask, positions, _ = pad_batch([p for _, p in batch], pad_id, "left", device)
        cache = DynamicCache(config=model.config)
        last = (
            model.get_decoder()(
                input_ids=prefix_ids,
                attention_mask=mask,
                position_ids=positions,
                cache=cache,
                use_cache=True,
            )
            .last_hidden_state[:, -1]
            .to(device)
        )  # (a spread model ends on another device)
        owners = [(j, i) for j, (indices, _) in enumerate(batch) for i in indices]
        parent = torch.tensor([j for j, _ in owners], device=device)
        for layer in cache.layers:  # one copy of its prefix's cache per response
            layer.batch_select_indices(parent.to(layer.keys.device))
        responses = [rows[i][1] for _, i in owners]
        response_ids, response_mask, response_positions, _ = pad_batch(
            responses, pad_id, "right", device
        )
        hidden = model.get_decoder()(
            input_ids=response_ids,
            attention_mask=torch.cat((mask[parent], response_mask), dim=1),
            position_ids=response_positions + mask.sum(dim=1)[parent, None],
            cache=cache,
            use_cache=False,
        ).last_hidden_state.to(device)
        # a response's first token is predicted by its prefix's last state, token t > 0 by the
        # response's state t - 1
        lengths = [len(response) for response in responses]
        row = torch.cat([torch.full((n,), k) for k, n in enumerate(lengths)]).to(device)
        column = torch.cat([torch.arange(n) for n in lengths]).to(device)
        states = torch.where(
            (column == 0)[:, None], last[parent[row]], hidden[row, (column - 1).clamp(min=0)]
        )
        token_scores = token_log_probabilities(model, states, response_ids[row, column])
        sums = torch.zeros(len(owners), dtype=torch.float64, device=device)
        sums.index_add_(0, row, token_scores.double())
        scores[[i for _, i in owners]] = sums.cpu().numpy()
    return scores


def response_log_likelihoods(
    loaded, spec: Tokenisation, prompts, responses, batch_size: int, device, shots=None
) -> np.ndarray:
    """The score of each (prompt, response) text after its shots, if any (see the module
    docstring), in order."""
    rows = encode(loaded.tokenizer, spec, prompts, responses, shots)
    return log_likelihoods(loaded.model, rows, loaded.tokenizer.pad_token_id, batch_size, device)


def pair_probabilities(data: PairData, recorded: dict, shots=None) -> np.ndarray:
    """P(chosen) of each pair of `data`, after `shots` (a tuple of texts per pair), if any.

    `recorded` is the tokenisation the method's state was fitted with; it must be the model's."""
    spec = tokenisation(data.model, data.settings["max_length"])
    if spec.info() != recorded:
        raise GeniesError(
            f"model {data.model.manifest['name']}: tokenisation {spec.info()} differs from "
            f"{recorded} recorded when the method was fitted; fit it again"
        )
    shots = shots or [()] * len(data.pairs)
    return scored_pairs(
        data.pairs,
        list(zip(shots, data.pairs.prompt, strict=True)),
        lambda contexts, responses: response_log_likelihoods(
            data.model,
            spec,
            [prompt for _, prompt in contexts],
            responses,
            data.settings["batch_size"],
            data.device,
            [row for row, _ in contexts],
        ),
    )


def scored_pairs(pairs, prompts: list, score) -> np.ndarray:
    """P(chosen) = sigmoid(score of the chosen text - score of the rejected one) of each pair,
    `prompts` one per pair (any hashable); `score(prompts, responses)` runs on each distinct
    text once (a preferred response appears in every pair of its example)."""
    texts = list(zip(prompts * 2, [*pairs.chosen, *pairs.rejected], strict=True))
    unique: dict[tuple[str, str], int] = {}
    codes = [unique.setdefault(text, len(unique)) for text in texts]
    scores = score([prompt for prompt, _ in unique], [response for _, response in unique])[codes]
    difference = scores[: len(pairs)] - scores[len(pairs) :]
    return 0.5 * (1.0 + np.tanh(difference / 2))  # sigmoid, without overflow for large |x|
