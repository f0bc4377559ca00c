"""Extraction that computes each distinct token of an example once: its template texts packed
into one sequence as a prefix tree.

The texts of one example (every template, every response) share long token prefixes: the prompt,
and for `raw`, `yes` and `no` the response too. Their token ids are merged into a tree (a trie:
one node per distinct prefix), laid out in creation order so that a parent precedes its children.
Each node sits at the position its token has in its own text (its depth), and attends to its
ancestors and itself only, through a 4-D attention mask; so the hidden state of a text's last
node is the state of the text run alone, up to floating-point rounding. The tree is built from
each text's own tokenisation, so a join that tokenises differently in two texts simply branches
earlier: sharing never changes a text's tokens.

Trees of similar size are batched together; padding nodes attend to themselves only.
"""

import time

import numpy as np
import torch
from tqdm import tqdm

from genies.errors import GeniesError
from genies.models.families import DecoderParts, sliding_window, tree_packing_exact
from genies.models.hooks import register_hooks

# Attention implementations that take a custom 4-D mask: sdpa as a bool mask (True = attend),
# eager as an additive float mask.
MASK_KINDS = {"sdpa": "bool", "eager": "additive"}


def prefix_tree(token_lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(token of each node, parent of each node (-1: a root), the node where each list ends)."""
    tokens, parents, ends = [], [], []
    children: dict[tuple[int, int], int] = {}
    for ids in token_lists:
        node = -1
        for token in ids:
            child = children.get((node, token))
            if child is None:
                child = children[(node, token)] = len(tokens)
                tokens.append(token)
                parents.append(node)
            node = child
        ends.append(node)
    return np.asarray(tokens, dtype=np.int64), np.asarray(parents, dtype=np.int64), ends


def prefix_trees(token_lists: list[list[int]]) -> list[tuple[list[int], tuple]]:
    """The lists grouped by first token, one prefix tree per group: [(list indices, tree)].

    Texts with different first tokens share nothing (texts cut at `max_length` lose their
    start), and as separate sequences they skip the attention between them, which a packed
    sequence computes and masks (docs/performance.md, "Packed extraction")."""
    groups: dict[int, list[int]] = {}
    for index, ids in enumerate(token_lists):
        groups.setdefault(ids[0], []).append(index)
    return [(texts, prefix_tree([token_lists[i] for i in texts])) for texts in groups.values()]


def tree_layout(parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position of each node in its texts, [nodes, nodes] mask: node i sees node j)."""
    n = len(parents)
    positions = np.zeros(n, dtype=np.int64)
    sees = np.zeros((n, n), dtype=bool)
    for node, parent in enumerate(parents):  # parents precede their children
        if parent >= 0:
            positions[node] = positions[parent] + 1
            sees[node] = sees[parent]
        sees[node, node] = True
    return positions, sees


class PackedBatch:
    """Prefix trees padded to one length: ids, positions, 4-D mask, and for each text the
    (batch row, node) holding its last token."""

    def __init__(self, trees: list[tuple[np.ndarray, np.ndarray, list[int]]], mask_kind, dtype):
        width = max(len(tokens) for tokens, _, _ in trees)
        ids = np.zeros((len(trees), width), dtype=np.int64)
        positions = np.zeros((len(trees), width), dtype=np.int64)
        sees = np.broadcast_to(np.eye(width, dtype=bool), (len(trees), width, width)).copy()
        self.rows, self.nodes = [], []
        for row, (tokens, parents, ends) in enumerate(trees):
            n = len(tokens)
            ids[row, :n] = tokens
            positions[row, :n], sees[row, :n, :n] = tree_layout(parents)
            self.rows += [row] * len(ends)
            self.nodes += ends
        self.ids, self.positions = torch.from_numpy(ids), torch.from_numpy(positions)
        mask = torch.from_numpy(sees)[:, None]
        if mask_kind == "additive":
            mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
        self.mask = mask
        self.tokens = sum(len(tokens) for tokens, _, _ in trees)
        self.width = width


def mask_kind(model) -> str:
    implementation = getattr(model.config, "_attn_implementation", None)
    if implementation not in MASK_KINDS:
        raise GeniesError(
            f"attention implementation {implementation!r} cannot take a tree mask (packing "
            f"needs one of {', '.join(MASK_KINDS)})"
        )
    return MASK_KINDS[implementation]


def packing_refusal(model, examples: list[list[list[int]]]) -> str | None:
    """Why these examples cannot be tree-packed exactly on `model`, or None: its attention takes
    no tree mask, or one of its layers has a sliding window shorter than a tree (bounded by the
    example's token count), which the packed sequence would count in packed positions."""
    try:
        mask_kind(model)
    except GeniesError as exc:
        return str(exc)
    longest = max((sum(map(len, texts)) for texts in examples), default=0)
    if not tree_packing_exact(model.config, longest):
        return (
            f"a sliding window of {sliding_window(model.config)} tokens is shorter than a packed "
            f"tree (up to {longest} tokens)"
        )
    return None


class NodeRecorder:
    """Hooks that keep, during a packed forward pass, the residual states and per-head outputs
    of the nodes where texts end."""

    def __init__(self, parts, residual_layers, head_layers):
        self.where = None
        self.kept = {"residual": [], "heads": []}
        self.handles = register_hooks(
            parts, residual_layers, head_layers, self.keep_residual, self.keep_heads
        )

    def keep_residual(self, states: torch.Tensor) -> None:
        self.kept["residual"].append(self.gather(states))

    def keep_heads(self, states: torch.Tensor) -> None:
        self.kept["heads"].append(self.gather(states))

    def gather(self, states: torch.Tensor) -> torch.Tensor:
        # a spread model's layers sit on several devices: the indices follow the states
        return states[tuple(index.to(states.device) for index in self.where)]

    def take(self) -> dict[str, list[torch.Tensor]]:
        kept, self.kept = self.kept, {"residual": [], "heads": []}
        return kept

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def node_batches(sizes: list[int], token_budget: int, fill: float = 0.9) -> list[list[int]]:
    """Trees sorted by size, grouped so that a batch holds at most `token_budget` padded nodes
    (at least one tree) of which at least `fill` are real: on the CPU a padding node costs as
    much as a real one, and batching gains little."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    batches, batch, real = [], [], 0
    for index in order:
        width = sizes[batch[0]] if batch else sizes[index]
        count = len(batch) + 1
        if batch and (width * count > token_budget or real + sizes[index] < fill * width * count):
            batches.append(batch)
            batch, real = [], 0
        batch.append(index)
        real += sizes[index]
    return batches + ([batch] if batch else [])


@torch.no_grad()
def extract_packed(
    model, examples: list[list[list[int]]], residual_layers, head_layers, token_budget, progress
):
    """Last-token states of every text, in order (examples, then each example's texts):
    residual [texts, len(residual_layers), hidden], heads [texts, len(head_layers), heads, dim];
    and the counts of template-text tokens and of computed tokens."""
    modules, device = DecoderParts(model), model.device
    kind = mask_kind(model)
    first_text = np.cumsum([0] + [len(texts) for texts in examples])
    # (texts, tree) units: each example's trees, its text numbers made global
    units = [
        (first_text[example] + np.asarray(texts), tree)
        for example, token_lists in enumerate(examples)
        for texts, tree in prefix_trees(token_lists)
    ]
    heads_shape = modules.heads_shape()
    recorder = NodeRecorder(modules, residual_layers, head_layers)
    out = {
        "residual": torch.empty((first_text[-1], len(residual_layers), model.config.hidden_size)),
        "heads": torch.empty((first_text[-1], len(head_layers), *heads_shape)),
    }
    started, computed, padded = time.perf_counter(), 0, 0
    bar = tqdm(total=len(units), unit="tree", disable=not progress, mininterval=5)
    try:
        for batch in node_batches([len(tree[0]) for _, tree in units], token_budget):
            packed = PackedBatch([units[i][1] for i in batch], kind, model.dtype)
            rows = torch.tensor(packed.rows, device=device)
            recorder.where = (rows, torch.tensor(packed.nodes, device=device))
            modules.decoder(
                input_ids=packed.ids.to(device),
                attention_mask=packed.mask.to(device),
                position_ids=packed.positions.to(device),
                use_cache=False,
            )
            texts = torch.from_numpy(np.concatenate([units[i][0] for i in batch]))
            for name, parts in recorder.take().items():
                if parts:
                    kept = torch.stack(parts, dim=1).float().cpu()
                    out[name][texts] = kept.reshape(len(texts), len(parts), *out[name].shape[2:])
            computed += packed.tokens
            padded += packed.width * len(batch)
            bar.update(len(batch))
    finally:
        recorder.remove()
        bar.close()
    stats = {
        "template_tokens": sum(len(ids) for texts in examples for ids in texts),
        "computed_tokens": computed,
        "padding_fraction": 1 - computed / padded if padded else 0.0,
        "seconds": time.perf_counter() - started,
    }
    return out, stats
