"""The activation cache: one safetensors file per (model, template, distribution, split).

Rows are the split's (example, response) pairs in order. For the last token of each text the file
holds, in the storage dtype (float16 by default):
- `residual` [rows, len(residual_layers), hidden]: hidden-state index i of the decoder, as
  transformers numbers `output_hidden_states` (0 = embeddings, i = output of decoder layer i,
  the last index = after the final norm); the layer-wise methods (LAT, CCS, probes) read it;
- `heads` [rows, len(head_layers), heads, head_dim]: the per-head attention outputs before the
  output projection (`o_proj`; GPT-NeoX's `dense`: genies.models.families) of each listed
  decoder layer, for MMS and CRA;
- `example_index`, `response_index` [rows]: where each row comes from.
The safetensors metadata (and a JSON sidecar beside the file) names the model and the sha256 of
its weights, the tokenizer, dtypes, layers, token position, template, row count and a checksum of
the metadata and the tensors, which `read_activations` verifies, with the sidecar equal to the
header.

Extraction runs the decoder stack only (no vocabulary logits), without gradients, on batches of
length-sorted texts padded to the longest text of the batch.
"""

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from genies.data.splits import read_examples
from genies.errors import GeniesError
from genies.files.atomic import write_atomic, write_text_atomic
from genies.files.hashing import checksum_refused, sha256_file
from genies.models.families import DecoderParts
from genies.models.hooks import register_hooks
from genies.models.packing import extract_packed, packing_refusal
from genies.models.templates import render

METADATA_KEY = "genies"
STORAGE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class ExtractionSpec:
    template: str
    residual_layers: tuple[int, ...]
    head_layers: tuple[int, ...]
    storage_dtype: str = "float16"
    batch_size: int = 16
    max_length: int = 512
    padding_side: str = "left"

    def __post_init__(self):
        if self.storage_dtype not in STORAGE_DTYPES:
            raise GeniesError(
                f"storage_dtype {self.storage_dtype!r}: expected one of {', '.join(STORAGE_DTYPES)}"
            )
        if self.padding_side not in ("left", "right"):
            raise GeniesError(f"padding side {self.padding_side!r}: expected left or right")
        if self.batch_size < 1 or self.max_length < 1:
            raise GeniesError(f"batch_size and max_length must be positive: {self}")


def resolve_layers(value, count: int, what: str) -> tuple[int, ...]:
    """'all', 'none' or a list of indices (negative ones count from the end) -> sorted indices."""
    if value == "all":
        return tuple(range(count))
    if value in ("none", None):
        return ()
    indices = []
    for index in value:
        if not -count <= index < count:
            raise GeniesError(f"{what} layer {index} out of range for {count} layers")
        indices.append(index % count)
    return tuple(sorted(set(indices)))


def split_texts(split: pd.DataFrame, template: str):
    """One text per (example, response) of a split, in order, with the row's origin."""
    texts, examples, responses = [], [], []
    for example, row in enumerate(split.itertuples(index=False)):
        for position, response in enumerate(row.responses):
            texts.append(render(template, row.prompt, response))
            examples.append(example)
            responses.append(position)
    return texts, np.array(examples, dtype=np.int64), np.array(responses, dtype=np.int64)


class LastTokenRecorder:
    """Hooks that collect, during each batch's forward pass, the last real token's residual
    states and per-head outputs; `batch_rows` stacks them into one tensor per kind.

    With left padding a hook keeps a view of its tensor's last column: no kernel launch, which
    matters for small models, whose forward pass on a GPU is bound by launch overhead. A view
    keeps its whole [batch, length, hidden] tensor alive, so once the kept tensors pass `budget`
    bytes the pending rows are stacked early. (A view is only safe because no supported decoder
    writes into a layer's output in place; the equality tests check both paths per family.) With
    right padding a hook gathers each row's last real token (a new, small tensor)."""

    def __init__(self, parts, residual_layers, head_layers, side: str, budget: int):
        self.heads_shape = parts.heads_shape()
        hidden = parts.decoder.config.hidden_size
        self.widths = {"residual": hidden, "heads": prod(self.heads_shape)}
        self.gather_last, self.budget = side == "right", budget
        self.pending = {"residual": [], "heads": []}
        self.stacked = {"residual": [], "heads": []}
        self.kept_bytes, self.last, self.rows = 0, None, None  # last, rows: right padding only
        self.handles = register_hooks(
            parts, residual_layers, head_layers, self.keep_residual, self.keep_heads
        )

    def start_batch(self, last: torch.Tensor) -> None:
        """Set where each row's last real token is, before a forward pass."""
        if self.gather_last:
            self.last, self.rows = last, torch.arange(last.shape[0], device=last.device)

    def keep(self, kind: str, states: torch.Tensor) -> None:
        if self.gather_last:  # (the indices follow the states: a spread model's differ in device)
            self.pending[kind].append(
                states[self.rows.to(states.device), self.last.to(states.device)]
            )
            return
        self.pending[kind].append(states.select(1, -1))
        self.kept_bytes += states.nbytes
        if self.kept_bytes > self.budget:
            self.stack_pending()

    def keep_residual(self, states: torch.Tensor) -> None:
        self.keep("residual", states)

    def keep_heads(self, states: torch.Tensor) -> None:
        self.keep("heads", states)

    def stack_pending(self) -> None:
        for kind, pending in self.pending.items():
            if pending:
                self.stacked[kind].append(torch.stack(pending, dim=1))
                pending.clear()
        self.kept_bytes = 0

    def batch_rows(self, rows: int, dtype: torch.dtype, device) -> dict[str, torch.Tensor]:
        """This batch's rows: residual [rows, layers, hidden], heads [rows, layers, heads, dim]."""
        self.stack_pending()
        result = {}
        for kind, parts in self.stacked.items():
            if not parts:  # no layers of this kind
                parts = [torch.empty((rows, 0, self.widths[kind]), dtype=dtype, device=device)]
            result[kind] = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
            parts.clear()
        result["heads"] = result["heads"].unflatten(-1, self.heads_shape)
        return result

    def remove(self):
        for handle in self.handles:
            handle.remove()


def truncate(ids: list[int], max_length: int) -> list[int]:
    """The tokens of a text that every method sees: its last `max_length`, BOS and any template
    counted. A long text loses the start of its prompt (BOS too) and keeps its response's end,
    where every method reads. The cache, text scoring and the reward models all cut here, so
    that methods compared on a text see the same tokens of it."""
    return ids[-max_length:]


def encode(tokenizer, texts: list[str], max_length: int) -> tuple[list[list[int]], int]:
    """Token ids per text (with the tokenizer's special tokens), truncated; how many were cut."""
    # verbose=False: the tokenizer warns of texts beyond its maximum length, which we cut here
    ids = tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
    truncated = sum(len(row) > max_length for row in ids)
    return [truncate(row, max_length) for row in ids], truncated


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[np.ndarray]:
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(ids: list[list[int]], pad_id: int, side: str, device):
    """(input_ids, attention_mask, position_ids, index of each row's last real token)."""
    width = max(len(row) for row in ids)

    def pad(row: list[int], fill: int) -> list[int]:
        filler = [fill] * (width - len(row))
        return filler + row if side == "left" else row + filler

    input_ids = torch.tensor([pad(row, pad_id) for row in ids])
    mask = torch.tensor([pad([1] * len(row), 0) for row in ids])
    # positions count real tokens only, so a padded row sees the positions it would alone
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    # one copy to the device: each copy from pageable memory waits for the device to be idle
    input_ids, mask, positions = torch.stack((input_ids, mask, positions)).to(device)
    last = mask.sum(dim=1) - 1 if side == "right" else torch.full_like(mask[:, 0], width - 1)
    return input_ids, mask, positions, last


def extract(model, tokenizer, texts: list[str], spec: ExtractionSpec, progress: bool = True):
    """The last-token activations of `texts` under `spec`, in the order of `texts`."""
    started = time.perf_counter()
    ids, truncated = encode(tokenizer, texts, spec.max_length)
    tokenize_seconds = time.perf_counter() - started
    tensors, stats = extract_ids(model, ids, tokenizer.pad_token_id, spec, progress)
    stats |= {"truncated_rows": truncated, "tokenize_seconds": tokenize_seconds}
    return tensors, stats


def memory_budget(device: torch.device) -> int:
    """Bytes extraction may hold on `device` besides the model: on a GPU a quarter of its free
    memory (once for the gathered results, once for the hooks' kept tensors); on the CPU none,
    as each kept tensor makes the forward pass allocate fresh memory, while copying right away
    costs nothing measurable there (docs/performance.md)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 4
    return 0


@torch.no_grad()
def extract_ids(model, ids: list[list[int]], pad_id: int, spec: ExtractionSpec, progress=True):
    """The forward passes over token-id rows; activations in row order."""
    if spec.padding_side not in ("left", "right"):
        raise GeniesError(f"padding side {spec.padding_side!r}: expected left or right")
    parts, device = DecoderParts(model), model.device
    storage = STORAGE_DTYPES[spec.storage_dtype]
    budget = memory_budget(device)
    recorder = LastTokenRecorder(
        parts, spec.residual_layers, spec.head_layers, spec.padding_side, budget
    )
    shapes = {
        "residual": (len(ids), len(spec.residual_layers), model.config.hidden_size),
        "heads": (len(ids), len(spec.head_layers), *recorder.heads_shape),
    }
    width = torch.empty((), dtype=storage).element_size()
    nbytes = sum(prod(shape) for shape in shapes.values()) * width
    # results gather on the GPU when they fit (one copy to the host at the end), else on the host
    out = device if device.type == "cuda" and nbytes < budget else torch.device("cpu")
    tensors = {
        name: torch.empty(shape, dtype=storage, device=out) for name, shape in shapes.items()
    }
    lengths = [len(row) for row in ids]
    batches = length_sorted_batches(lengths, spec.batch_size)
    # every batch's row numbers, moved in one copy: a copy per batch would wait for the device
    row_order = torch.as_tensor(np.concatenate(batches)).to(out)
    started, done_tokens, done_rows = time.perf_counter(), 0, 0
    bar = tqdm(total=len(ids), unit="row", disable=not progress, mininterval=5)
    try:
        for batch in batches:
            rows = [ids[i] for i in batch]
            input_ids, mask, positions, last = pad_batch(rows, pad_id, spec.padding_side, device)
            recorder.start_batch(last)
            parts.decoder(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False
            )
            index = row_order[done_rows : done_rows + len(batch)]
            done_rows += len(batch)
            for name, kept in recorder.batch_rows(len(batch), model.dtype, device).items():
                tensors[name].index_copy_(0, index, kept.to(out, storage))
            done_tokens += sum(lengths[i] for i in batch)
            bar.update(len(batch))
            bar.set_postfix(tokens_per_s=f"{done_tokens / (time.perf_counter() - started):.0f}")
    finally:
        recorder.remove()
        bar.close()
    tensors = {name: tensor.cpu() for name, tensor in tensors.items()}
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    stats = {
        "tokens": sum(lengths),
        "padding_fraction": 1 - sum(lengths) / padded if padded else 0.0,
        "seconds": time.perf_counter() - started,
    }
    return tensors, stats


def tensor_checksum(tensors: dict[str, torch.Tensor], metadata: dict) -> str:
    """sha256 of the metadata (as canonical JSON, without the checksum) and of every tensor's
    name, dtype, shape and bytes: an edited header or a reshaped tensor fails it too."""
    digest = hashlib.sha256()
    described = {key: value for key, value in metadata.items() if key != "checksum"}
    digest.update(json.dumps(described, sort_keys=True).encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name} {tensor.dtype} {list(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def refuse_non_finite(path, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    """A state past the storage dtype's range is stored as inf (float16 ends at 65,504; Gemma 3's
    residual stream goes past it), and every method reading it would compute nan: refuse it."""
    for kind, chosen in (("residual", "residual_layers"), ("heads", "head_layers")):
        bad = ~torch.isfinite(tensors[kind])
        if bad.any():
            per_layer = bad.flatten(2).any(2).any(0)  # [rows, layers, ...] -> [layers]
            layers = [metadata[chosen][i] for i in per_layer.nonzero()[:, 0].tolist()]
            fix = (
                "store them as bfloat16 (activations: {storage_dtype: bfloat16} in the config)"
                if metadata["storage_dtype"] == "float16"
                else f"the model computed them so in {metadata['compute_dtype']}"
            )
            raise GeniesError(
                f"{path}: {int(bad.sum())} {kind} values of {metadata['model']} in layers "
                f"{', '.join(map(str, layers))} are not finite as {metadata['storage_dtype']}; "
                + fix
            )


def write_activations(path, tensors: dict[str, torch.Tensor], metadata: dict) -> dict:
    """Write the cache file and its JSON sidecar; returns the metadata as stored."""
    refuse_non_finite(path, tensors, metadata)
    tensors = {name: tensor.contiguous() for name, tensor in tensors.items()}
    stored = {**metadata, "checksum": tensor_checksum(tensors, metadata)}
    # one key: safetensors writes its metadata map in no fixed order, so several keys would give
    # other bytes each run
    as_text = {METADATA_KEY: json.dumps(stored, sort_keys=True)}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=as_text))
    write_text_atomic(sidecar_path(path), json.dumps(stored, indent=2) + "\n")
    return stored


def sidecar_path(path) -> Path:
    return Path(path).with_suffix(".json")


def read_activations(path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of a cache file, after checking its checksum and row count."""
    path = Path(path)
    if not path.is_file():
        raise GeniesError(f"{path}: activation file not found; build it with snakemake {path}")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = json.loads(handle.metadata()[METADATA_KEY])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise GeniesError(
            f"{path}: corrupt or truncated activation file ({exc}); delete it"
        ) from exc
    if tensor_checksum(tensors, metadata) != metadata.get("checksum"):
        raise checksum_refused(path, "activation file", metadata.get("checksum"))
    sidecar = sidecar_path(path)
    try:
        described = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise GeniesError(f"{sidecar}: missing or unreadable ({exc}); rebuild {path}") from exc
    if described != metadata:
        raise GeniesError(f"{sidecar}: differs from the header of {path}; rebuild both")
    rows = {int(tensor.shape[0]) for tensor in tensors.values()}
    if rows != {metadata.get("rows")}:
        raise GeniesError(
            f"{path}: row counts {sorted(rows)} differ from metadata {metadata.get('rows')}"
        )
    return tensors, metadata


# How an extraction ran, not what it computed: these go to the job's log (`run_record`), never
# into the file's header or sidecar, which the states and evaluations reading it hash.
RUN_KEYS = ("batch_size", "seconds", "tokenize_seconds", "padding_fraction", "device")


def spec_metadata(spec: ExtractionSpec) -> dict:
    return {**asdict(spec), "position": "last_token"}


def computed_with(model) -> dict[str, str]:
    """What a model computes in, as every artifact records it in its identity: the dtype, and the
    kind of device, which changes the numbers (which GPU of a node does not)."""
    return {
        "compute_dtype": str(model.dtype).removeprefix("torch."),
        "device_type": model.device.type,
    }


def cache_metadata(loaded, split_path, split, spec, rows, stats, max_examples, seed) -> dict:
    """(identity, run record) of one cache file: what it holds and how it was computed; `split`
    holds the examples drawn by (max_examples, seed)."""
    manifest = loaded.manifest
    described = {
        "model": manifest["name"],
        "weights_sha256": manifest["weights_sha256"],
        "tokenizer": manifest.get("tokenizer", {}),
        **computed_with(loaded.model),
        **spec_metadata(spec),
        "split": str(split_path),
        "split_sha256": sha256_file(split_path),
        # which examples: `max_examples` drawn with `sample_seed` (genies.data.splits), by id
        "max_examples": max_examples,
        "sample_seed": seed,
        "examples": len(split),
        "example_ids": list(split.example_id),
        "rows": rows,
        **stats,
        "device": str(loaded.model.device),
    }
    run = {key: described.pop(key) for key in RUN_KEYS if key in described}
    return described, run


def origin(examples: np.ndarray, responses: np.ndarray) -> dict[str, torch.Tensor]:
    return {
        "example_index": torch.from_numpy(examples),
        "response_index": torch.from_numpy(responses),
    }


def extract_split(loaded, split_path, spec: ExtractionSpec, out_path, max_examples=None, seed=0):
    """Extract one split's activations under `spec` into `out_path`, text by text (batched and
    padded), for the examples drawn by (max_examples, seed); returns (the metadata as stored, the
    run record)."""
    split = read_examples(split_path, max_examples, seed)
    texts, examples, responses = split_texts(split, spec.template)
    tensors, stats = extract(loaded.model, loaded.tokenizer, texts, spec)
    stats |= {"packed": False}
    metadata, run = cache_metadata(
        loaded, split_path, split, spec, len(texts), stats, max_examples, seed
    )
    return write_activations(out_path, tensors | origin(examples, responses), metadata), run


def layer_positions(chosen: tuple[int, ...], union: list[int]) -> list[int]:
    return [union.index(layer) for layer in chosen]


def extract_split_templates(
    loaded, split_path, specs: list[ExtractionSpec], out_paths, max_examples=None, seed=0
):
    """Every template's cache file of one split, each example's texts packed into one prefix
    tree (genies.models.packing): each distinct token computed once; text by text where packing
    would not be exact (said on stderr). Returns (metadata as stored, run record) per file."""
    split = read_examples(split_path, max_examples, seed)
    started = time.perf_counter()
    encoded = {}
    for spec in specs:
        texts, examples, responses = split_texts(split, spec.template)
        ids, truncated = encode(loaded.tokenizer, texts, spec.max_length)
        encoded[spec.template] = (ids, examples, responses, truncated)
    tokenize_seconds = time.perf_counter() - started
    # per example, the texts of every template in spec order; rows come back in that order
    starts = np.cumsum([0, *split.responses.map(len)])
    packed = [
        [ids for spec in specs for ids in encoded[spec.template][0][first:last]]
        for first, last in zip(starts[:-1], starts[1:], strict=True)
    ]
    refusal = packing_refusal(loaded.model, packed)
    if refusal:
        print(f"{refusal}; extracting text by text", file=sys.stderr)
        return [
            extract_split(loaded, split_path, spec, out, max_examples, seed)
            for spec, out in zip(specs, out_paths, strict=True)
        ]
    residual = sorted({layer for spec in specs for layer in spec.residual_layers})
    heads = sorted({layer for spec in specs for layer in spec.head_layers})
    budget = specs[0].batch_size * specs[0].max_length
    states, stats = extract_packed(loaded.model, packed, residual, heads, budget, progress=True)
    written = []
    for index, (spec, out_path) in enumerate(zip(specs, out_paths, strict=True)):
        ids, examples, responses, truncated = encoded[spec.template]
        # the rows of this template: in each example's block, after the earlier templates'
        rows = np.concatenate(
            [
                np.arange(len(specs) * first, len(specs) * first + (last - first))
                + index * (last - first)
                for first, last in zip(starts[:-1], starts[1:], strict=True)
            ]
        )
        storage = STORAGE_DTYPES[spec.storage_dtype]
        tensors = {
            "residual": states["residual"][rows][
                :, layer_positions(spec.residual_layers, residual)
            ],
            "heads": states["heads"][rows][:, layer_positions(spec.head_layers, heads)],
        }
        tensors = {name: tensor.to(storage) for name, tensor in tensors.items()}
        template_stats = stats | {
            "packed": True,
            "tokens": sum(len(row) for row in ids),
            "truncated_rows": truncated,
            "tokenize_seconds": tokenize_seconds,
        }
        metadata, run = cache_metadata(
            loaded, split_path, split, spec, len(ids), template_stats, max_examples, seed
        )
        stored = write_activations(out_path, tensors | origin(examples, responses), metadata)
        written.append((stored, run))
    return written
