import json
import lzma
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

from genies.data.vendored import sha256_bytes, write_manifest

REPO = Path(__file__).resolve().parents[1]
RAW_DIR = REPO / "data" / "raw"
# The workflow's jobs call the `genies` console script of the interpreter running the tests.
# What `genies extract --spec` reads: one template, the last residual layer, no heads.
EXTRACTION_SPEC = {
    "templates": {"raw": {"residual": [-1], "heads": "none"}},
    "storage_dtype": "float16",
    "padding_side": "left",
    "dtype": "float32",
    "max_length": 64,
}
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def record(prompt="Say hi.\n\n### Response:\n", responses=None):
    return {"prompt": prompt, "responses": responses or {"hi": 1.0, "bye": 0.0, "no": 0.0}}


def write_vendored(raw_dir: Path, distributions: dict[str, dict[str, object]]) -> Path:
    """A data/raw folder in the vendored layout: {name: {"train": records, ...}} plus a manifest."""
    entries = {}
    for name, files in distributions.items():
        for stem, content in files.items():
            relpath = f"distributions/{name}/{stem}.json.xz"
            data = content if isinstance(content, bytes) else json.dumps(content).encode()
            packed = lzma.compress(data)
            (raw_dir / relpath).parent.mkdir(parents=True, exist_ok=True)
            (raw_dir / relpath).write_bytes(packed)
            entries[relpath] = sha256_bytes(packed)
    write_manifest(raw_dir, entries)
    return raw_dir


# What a user's checkout runs from: the workflow, its profile, configs, library and vendored data.
WORKFLOW_FILES = (
    "Snakefile",
    "environment.yml",
    "rules",
    "workflow",
    "profiles",
    "config",
    "src",
    "data/raw",
)


def copy_workflow(workdir: Path) -> Path:
    """A copy of the workflow to run Snakemake in."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_symlink():
            (workdir / name).symlink_to(os.readlink(source))
        elif source.is_dir():
            shutil.copytree(source, workdir / name)
        else:
            shutil.copy(source, workdir / name)
    return workdir


def run_snakemake(workdir: Path, *args: str, timeout: float | None = None, env=ENV):
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )


def run_genies(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "genies", *args]
    return subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)


def marker_records(count: int, seed: int, marked: str) -> list[dict]:
    """Examples whose `marked` response ("preferred" or "dispreferred") ends in a marker word,
    the other in a full stop: the last token tells them apart."""
    rng = random.Random(seed)
    words = ["apple", "river", "stone", "cloud", "green", "seven", "table", "light", "music"]
    records = []
    for index in range(count):
        prompt = f"Item {seed}-{index}: " + " ".join(rng.choices(words, k=6)) + "\n\nAnswer:\n"
        first, second = (" ".join(rng.choices(words, k=4)) for _ in range(2))
        marker, plain = f"{first} zzzz", f"{second}."
        preferred, other = (marker, plain) if marked == "preferred" else (plain, marker)
        records.append({"prompt": prompt, "responses": {preferred: 1.0, other: 0.0}})
    return records
