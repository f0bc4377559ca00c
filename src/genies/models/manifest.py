"""A materialised model folder's manifest, `genies_model.json`: name, loader, dtype, weights path
and hashes, architecture and tokenizer facts. Reading it needs no deep-learning library, so jobs
that only check which weights an artifact came from stay light."""

import json
from pathlib import Path

from genies.errors import GeniesError

MANIFEST = "genies_model.json"
MANIFEST_KEYS = {"name", "loader", "dtype", "path", "weight_files"}  # what load_model reads


def read_manifest(model_dir: Path) -> dict:
    path = model_dir / MANIFEST
    rebuild = "delete the folder and materialise the model again"
    if not path.is_file():
        raise GeniesError(f"{model_dir}: no {MANIFEST}, not a complete model folder; {rebuild}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GeniesError(f"{model_dir}: corrupt {MANIFEST} ({exc}); {rebuild}") from exc
    if not isinstance(manifest, dict):
        raise GeniesError(f"{model_dir}: corrupt {MANIFEST} (not an object); {rebuild}")
    if missing := sorted(MANIFEST_KEYS - manifest.keys()):
        raise GeniesError(f"{model_dir}: corrupt {MANIFEST} (no {', '.join(missing)}); {rebuild}")
    return manifest
