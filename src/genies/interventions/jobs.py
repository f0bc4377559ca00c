"""The two generic jobs every intervention runs through: fit on a source's training pairs, and
evaluate on every pair of a test split. Neither names a method: what to load comes from the
method's `reads`.

A state is `<name>.safetensors` (tensors, with the facts in its metadata) and `<name>.json` beside
it: method, hyper-parameters, seed, model and weights hash, the hashes of the data it was fitted
on, and what the method recorded. An evaluation is one Parquet file per fitted state (or per
untrained method) scoring every distribution that state is evaluated on, one row per pair
(`distribution`, `pair_id`, `example_id`, `probability` = P(preferred)), with the same facts in
its metadata: one job loads the model and the state once for all of them. Evaluating refuses a
state fitted by another method, with other hyper-parameters or on another base model.

Both record the compute dtype and device type they were made with (`computed_with`): those of the
cache files they read, of the model they ran, and of the state they score. A job whose inputs were
computed in different dtypes (a state fitted on bfloat16 caches scored on float32 ones, caches of
both in one fit) is refused before it writes anything: the difference would pass for a shift.
"""

import json
import os
import shutil
from contextlib import ExitStack
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from genies import interventions
from genies.data.mixing import draw_mixed
from genies.data.pairs import evaluation_pairs, training_pairs
from genies.data.splits import read_examples
from genies.errors import GeniesError
from genies.files.atomic import write_atomic, write_text_atomic
from genies.files.hashing import checksum_refused, sha256_file
from genies.files.parquet import read_parquet, read_table, write_parquet
from genies.interventions.base import PairData, State
from genies.paths import fit_work_dir, state_info_path

EVALUATION_SCHEMA = pa.schema(
    [
        ("distribution", pa.string()),
        ("pair_id", pa.string()),
        ("example_id", pa.string()),
        ("probability", pa.float64()),
    ]
)
FACTS_KEY = b"genies"


def model_manifest(model_dir) -> dict:
    from genies.models.manifest import read_manifest

    return read_manifest(Path(model_dir))


def load_activations(paths: dict[str, str], split_path, examples: pd.DataFrame, manifest) -> dict:
    """The cache files a method reads, checked against the split and model they must come from."""
    from genies.models.activations import read_activations

    split_sha256 = sha256_file(split_path)
    loaded = {}
    for template, path in paths.items():
        tensors, metadata = read_activations(path)
        if metadata.get("split_sha256") != split_sha256:
            raise GeniesError(f"{path}: extracted from another version of {split_path}; rebuild it")
        if metadata.get("example_ids") != list(examples.example_id):
            raise GeniesError(
                f"{path}: extracted from other examples of {split_path} "
                f"({metadata.get('examples')} drawn with seed {metadata.get('sample_seed')}; this "
                f"job reads {len(examples)}); rebuild it"
            )
        if metadata.get("weights_sha256") != manifest["weights_sha256"]:
            raise GeniesError(f"{path}: extracted with other weights than {manifest['name']}")
        loaded[template] = (tensors, metadata)
    return loaded


def load_model_read(method, job: str, model_dir, settings: dict, stack) -> tuple:
    """(model, device) for a method whose `job` runs the model, loaded once; (None, "cpu")
    otherwise."""
    if not method.reads.runs_model(job):
        return None, "cpu"
    missing = [key for key in ("dtype", "max_length") if key not in settings]
    if missing:
        raise GeniesError(f"{method.name} runs the model: its settings need {', '.join(missing)}")
    from genies.models.devices import claim_devices, compute_dtype
    from genies.models.loading import load_model

    devices = stack.enter_context(claim_devices(settings.get("gpus", 1)))
    # inputs go to the first device; a spread model returns states on the last
    dtype = compute_dtype(settings["dtype"], devices[0])
    return load_model(model_dir, devices, dtype), devices[0]


def pair_data(method, split_path, pairs, examples, activation_paths, manifest, settings, model):
    """The PairData of one split: the cache files the method reads, and the loaded model."""
    missing = sorted(set(method.reads.templates) - set(activation_paths))
    if missing:
        raise GeniesError(f"{method.name} reads templates {missing}: no activation file given")
    return PairData(
        pairs=pairs,
        activations=load_activations(activation_paths, split_path, examples, manifest),
        manifest=manifest,
        settings=settings,
        model=model[0],
        device=model[1],
    )


def data_hashes(data: PairData, activation_paths: dict, files: list) -> dict[str, str]:
    """sha256 of the small input files; a cache file by the tensor checksum its read verified
    (hashing a multi-GB file again would read it twice)."""
    hashes = {str(path): sha256_file(path) for path in files}
    for template, path in activation_paths.items():
        hashes[str(path)] = data.activations[template][1]["checksum"]
    return hashes


def input_records(data: PairData, activation_paths: dict, model_dir) -> dict[str, dict]:
    """What each input of one split records of how it was computed: its cache files' metadata,
    and the model the job runs (if it runs one)."""
    from genies.models.activations import computed_with as model_computed_with

    records = {
        str(path): data.activations[template][1] for template, path in activation_paths.items()
    }
    if data.model is not None:
        records[f"the model run from {model_dir}"] = model_computed_with(data.model.model)
    return records


def computed_with(records: dict[str, dict]) -> dict:
    """The compute dtype and device type(s) ("cpu+cuda" for several) of what a job combines,
    from what each input records (an input that computed nothing records neither); refuses
    inputs computed in different dtypes, naming two of them."""
    dtypes = {name: record.get("compute_dtype") for name, record in records.items()}
    dtypes = {name: dtype for name, dtype in dtypes.items() if dtype}
    if len(set(dtypes.values())) > 1:
        (first, dtype), *others = dtypes.items()
        other, other_dtype = next((n, d) for n, d in others if d != dtype)
        raise GeniesError(
            f"{first} was computed in {dtype} but {other} in {other_dtype}: a job never mixes "
            "compute dtypes; rebuild one of them in the other's dtype"
        )
    kinds = {
        kind
        for record in records.values()
        for kind in (record.get("device_type") or "").split("+")
        if kind
    }
    return {
        "compute_dtype": next(iter(dtypes.values()), None),
        "device_type": "+".join(sorted(kinds)) or None,
    }


def fitted_with(name: str, hyperparameters, seed: int, manifest, settings: dict) -> dict:
    """What a state records of its method and inputs, and an evaluation must share with it: the
    method, hyper-parameters, seed, base weights and, for a method that runs the model, where its
    texts were cut (a cache reader's cache files record that)."""
    return {
        "intervention": name,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "weights_sha256": manifest["weights_sha256"],
        **({"max_length": settings["max_length"]} if "max_length" in settings else {}),
    }


def facts(method, hyperparameters, seed: int, manifest, settings: dict, hashes, made) -> dict:
    """What an artifact was computed from."""
    return {
        **made,
        **fitted_with(method.name, hyperparameters, seed, manifest, settings),
        "model": manifest["name"],
        "data_sha256": hashes,
        "genies_version": version("genies"),
    }


def fit(
    name: str,
    hyperparameters: dict,
    seed: int,
    split_path,
    activation_paths: dict[str, str],
    model_dir,
    settings: dict,
    out,
    max_examples: int | None = None,
    mix: dict | None = None,
) -> dict:
    """Fit `name` on one training pair per example of `split_path` (and, given `mix`, of a
    fraction of another split's examples: {"split", "activations", "fraction"}, see
    genies.data.mixing); write the state to `out`."""
    method = interventions.get(name)
    manifest = model_manifest(model_dir)
    with ExitStack() as stack:
        model = load_model_read(method, "fit", model_dir, settings, stack)
        inputs = (method, manifest, settings, model, model_dir, max_examples, seed)
        data, examples, records, hashes = training_data(*inputs, split_path, activation_paths)
        data.shots, mixed = examples, {}
        if mix:
            more, target, more_records, more_hashes = training_data(
                *inputs, mix["split"], mix["activations"], mix["fraction"]
            )
            data = followed_by(data, more, len(examples))
            data.shots = pd.concat([examples, target], ignore_index=True)
            records, hashes = records | more_records, hashes | more_hashes
            mixed = {k: mix[k] for k in ("split", "fraction")} | {
                "example_ids": list(target.example_id)
            }
        made = computed_with(records)
        data.work_dir = Path(fit_work_dir(out))
        state = method.fit(data, hyperparameters, seed)
    info = facts(method, hyperparameters, seed, manifest, settings, hashes, made)
    info |= {"pairs": len(data.pairs), "max_examples": max_examples, "fitted": state.info}
    info |= {"mixed": mixed} if mixed else {}
    write_state(out, state, info)
    shutil.rmtree(data.work_dir, ignore_errors=True)
    return info


def training_data(
    method, manifest, settings, model, model_dir, max_examples, seed, split_path, paths, mixed=None
):
    """(PairData, the examples trained on, what its inputs record, their hashes) of one training
    split: one pair per example of its `max_examples` sample, or of the `mixed` fraction of it."""
    examples = read_examples(split_path, max_examples, seed)
    pairs = training_pairs(examples, seed)
    trained = examples
    if mixed is not None:  # its pairs keep their rows in the whole sample's cache
        trained = draw_mixed(examples, mixed, seed, split_path)
        pairs = pairs[pairs.example_id.isin(trained.example_id)].reset_index(drop=True)
    data = pair_data(method, split_path, pairs, examples, paths, manifest, settings, model)
    records = input_records(data, paths, model_dir)
    return data, trained, records, data_hashes(data, paths, [split_path])


def followed_by(data: PairData, more: PairData, offset: int) -> PairData:
    """`data`'s pairs and cache rows followed by `more`'s, whose example indices are shifted by
    `offset` (the examples of `data`'s cache) so that every pair still finds its own rows."""
    import torch

    shifted = more.pairs.assign(example_index=more.pairs.example_index + offset)
    activations = {}
    for template, (tensors, metadata) in data.activations.items():
        extra, extra_metadata = more.activations[template]
        for key in ("residual_layers", "head_layers"):
            if metadata[key] != extra_metadata[key]:
                raise GeniesError(
                    f"{extra_metadata['split']}: its {template} cache holds {key} "
                    f"{extra_metadata[key]}, {metadata['split']} {metadata[key]}; rebuild one"
                )
        extra = extra | {"example_index": extra["example_index"] + offset}
        joined = {name: torch.cat([tensors[name], extra[name]]) for name in tensors}
        activations[template] = (joined, metadata)
    return replace(
        data,
        pairs=pd.concat([data.pairs, shifted], ignore_index=True),
        activations=activations,
    )


def write_state(path, state: State, info: dict) -> None:
    from safetensors.torch import save_file

    from genies.models.activations import tensor_checksum

    tensors = {name: tensor.contiguous() for name, tensor in state.tensors.items()}
    info = info | {"checksum": tensor_checksum(tensors, info)}
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    # the JSON first: the state file, the job's declared output, appears last and whole
    write_text_atomic(state_info_path(path), text)
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata={"genies": text}))


def read_state(path) -> tuple[State, dict]:
    """A fitted state and its facts, its checksum (facts and tensors) verified, and the JSON
    beside it the same as the facts in its header."""
    from safetensors import SafetensorError, safe_open

    from genies.models.activations import tensor_checksum

    path = Path(path)
    if not path.is_file():
        raise GeniesError(f"{path}: fitted state not found; build it with snakemake {path}")
    try:
        with safe_open(path, framework="pt") as handle:
            text = handle.metadata()["genies"]
            info = json.loads(text)
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise GeniesError(f"{path}: corrupt or truncated state file ({exc}); delete it") from exc
    if not isinstance(info, dict):
        raise GeniesError(f"{path}: corrupt state file (its facts are not an object); delete it")
    if tensor_checksum(tensors, info) != info.get("checksum"):
        raise checksum_refused(path, "fitted state", info.get("checksum"))
    check_state_info(path, text)
    return State(tensors=tensors, info=info["fitted"]), info


def check_state_info(path, text: str) -> None:
    sidecar = Path(state_info_path(path))
    try:
        described = sidecar.read_text(encoding="utf-8")
    except OSError as exc:
        raise GeniesError(f"{sidecar}: missing or unreadable ({exc}); delete {path}") from exc
    if described != text:
        raise GeniesError(f"{sidecar}: differs from the header of {path}; delete {path}")


def read_state_info(path) -> dict:
    """The facts of the fitted state at `path`, from the JSON beside it, checked against the
    state's header (its tensors are not read: a reader of facts only, such as the figures)."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise GeniesError(f"{path}: fitted state not found; build it with snakemake {path}")
    try:
        with safe_open(path, framework="numpy") as handle:
            text = handle.metadata()["genies"]
        info = json.loads(text)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise GeniesError(f"{path}: corrupt or truncated state file ({exc}); delete it") from exc
    check_state_info(path, text)
    return info


def check_state(path, info: dict, name: str, hyperparameters, seed: int, manifest, settings):
    expected = fitted_with(name, hyperparameters, seed, manifest, settings)
    for key, value in expected.items():
        if info.get(key) != value:
            raise GeniesError(
                f"{path}: fitted with {key} {info.get(key)!r}, but this evaluation uses "
                f"{value!r}; refit it"
            )


def evaluate(
    name: str,
    hyperparameters: dict,
    seed: int,
    state_path,
    inputs: dict[str, tuple[str, dict[str, str]]],
    model_dir,
    settings: dict,
    out,
    max_examples: int | None = None,
) -> pd.DataFrame:
    """P(preferred) of every pair of each distribution's test split by `name` (fitted at
    `state_path`, or fitted on nothing for an untrained method); `inputs` maps a distribution to
    (its test split, its cache files by template). Written to `out` as one Parquet file."""
    method = interventions.get(name)
    manifest = model_manifest(model_dir)
    tables, hashes, records = [], {}, {}
    with ExitStack() as stack:
        model = load_model_read(method, "evaluate", model_dir, settings, stack)
        if method.trained:
            state, info = read_state(state_path)
            check_state(state_path, info, name, hyperparameters, seed, manifest, settings)
            hashes[str(state_path)] = sha256_file(state_path)
            records[str(state_path)] = info
        for distribution, (split_path, activation_paths) in sorted(inputs.items()):
            examples = read_examples(split_path, max_examples, seed)
            pairs = evaluation_pairs(examples)
            data = pair_data(
                method, split_path, pairs, examples, activation_paths, manifest, settings, model
            )
            records |= input_records(data, activation_paths, model_dir)
            made = computed_with(records)  # before scoring: a refused job costs nothing
            if not method.trained:
                state = method.fit(replace(data, pairs=pairs.iloc[:0]), hyperparameters, seed)
            probability = np.asarray(method.score(data, hyperparameters, state), dtype=float)
            if probability.shape != (len(pairs),) or not np.all(
                (probability >= 0) & (probability <= 1)
            ):
                raise GeniesError(
                    f"{name} on {distribution}: score returned {probability.shape} values, some "
                    f"outside [0, 1]; expected {len(pairs)} probabilities"
                )
            tables.append(
                pd.DataFrame(
                    {
                        "distribution": distribution,
                        "pair_id": pairs.pair_id,
                        "example_id": pairs.example_id,
                        "probability": probability,
                    }
                )
            )
            hashes |= data_hashes(data, activation_paths, [split_path])
    table = pd.concat(tables, ignore_index=True)
    written = facts(method, hyperparameters, seed, manifest, settings, hashes, made) | {
        "pairs": len(table)
    }
    schema = EVALUATION_SCHEMA.with_metadata({FACTS_KEY: json.dumps(written, sort_keys=True)})
    write_parquet(pa.Table.from_pandas(table, schema=schema, preserve_index=False), out)
    return table


def read_evaluation(path: str | os.PathLike) -> pd.DataFrame:
    return read_parquet(path, EVALUATION_SCHEMA, "evaluation file")


def evaluation_facts(path: str | os.PathLike) -> dict:
    """What an evaluation file records of how it was made (`facts`), its checksum verified."""
    metadata = read_table(path, "evaluation file").schema.metadata
    try:
        return json.loads(metadata[FACTS_KEY])
    except (KeyError, TypeError, ValueError) as exc:
        raise GeniesError(f"{path}: evaluation file without its facts ({exc}); rebuild it") from exc


def distribution_rows(table: pd.DataFrame, distribution: str, path) -> pd.DataFrame:
    """The rows of `distribution` in the evaluation file at `path`, which must hold some."""
    rows = table[table.distribution == distribution].reset_index(drop=True)
    if rows.empty:
        raise GeniesError(f"{path}: no evaluation of {distribution}; rebuild it")
    return rows
