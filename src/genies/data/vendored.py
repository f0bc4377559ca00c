"""The vendored upstream material under `data/raw/`, checked against its sha256 manifest.

Layout (written once by `genies vendor`, committed to git):

    data/raw/SHA256SUMS                       `sha256sum` format, paths relative to data/raw
    data/raw/distributions/<id>/{train,test,metadata}.json.xz
    data/raw/distribution_shifts/**/*.json
    data/raw/published/evaluations.tar.xz                 upstream's per-example evaluations
    data/raw/published/target_tuned_capability/<model>/<target>.json
    data/raw/published/generalization_metrics/<model>/<intervention>/{GENIES,all}.csv

Every read goes through `read_verified`, so a corrupt or edited file is reported by name before
anything is built from it. The manifest can also be checked by hand:
`cd data/raw && sha256sum -c SHA256SUMS`.
"""

import hashlib
import io
import json
import lzma
import os
import tarfile
from pathlib import Path

from genies.errors import GeniesError
from genies.files.atomic import write_atomic, write_text_atomic

MANIFEST = "SHA256SUMS"
SPLITS = ("train", "test")
# The only files of an upstream distribution folder that are data; everything else there
# (extra.json, *-copy.json, "test copy.json", swap files, the alpaca_mmlu/hps/ folder) is not.
DISTRIBUTION_FILES = ("train.json", "test.json", "metadata.json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(raw_dir: str | os.PathLike) -> dict[str, str]:
    path = Path(raw_dir) / MANIFEST
    if not path.is_file():
        raise GeniesError(f"{path}: manifest not found; is {raw_dir} the vendored data/raw folder?")
    entries = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise GeniesError(f"{path}: line {lineno}: expected '<sha256>  <path>', got {line!r}")
        entries[name] = digest
    return entries


def read_verified(raw_dir: str | os.PathLike, relpath: str) -> bytes:
    """The content of a vendored file, decompressed if it is .xz, after checking its sha256."""
    path = Path(raw_dir) / relpath
    expected = read_manifest(raw_dir).get(relpath)
    if expected is None:
        raise GeniesError(f"{path}: not listed in {Path(raw_dir) / MANIFEST}")
    if not path.is_file():
        raise GeniesError(f"{path}: file missing (listed in the manifest)")
    data = path.read_bytes()
    actual = sha256_bytes(data)
    if actual != expected:
        raise GeniesError(
            f"{path}: sha256 mismatch (manifest {expected[:12]}…, file {actual[:12]}…): "
            "the file is corrupt or was edited; restore it with git"
        )
    return decompress(path, data)


def decompress(path: Path, data: bytes) -> bytes:
    if path.suffix != ".xz":
        return data
    try:
        return lzma.decompress(data)
    except lzma.LZMAError as exc:
        raise GeniesError(f"{path}: not a valid xz file ({exc})") from exc


class RepeatedKey(dict):
    """A JSON object whose text repeats a key: the dict keeps the last value (as json does), and
    `repeated` names the first key that repeats, at its first position (`position`), so that a
    record repeating a response text can be refused instead of losing one silently."""

    repeated: str
    position: int


def keep_repeats(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) == len(keys):
        return dict(pairs)
    marked = RepeatedKey(pairs)
    marked.repeated = next(key for i, key in enumerate(keys) if key in keys[:i])
    marked.position = keys.index(marked.repeated)
    return marked


def parse_json(path: str | os.PathLike, data: bytes):
    try:
        return json.loads(data, object_pairs_hook=keep_repeats)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GeniesError(f"{path}: invalid JSON ({exc})") from exc


def read_json_file(path: str | os.PathLike):
    """A JSON file outside the manifest (a user's folder in the upstream layout), .xz or plain."""
    path = Path(path)
    if not path.is_file():
        raise GeniesError(f"{path}: file not found")
    return parse_json(path, decompress(path, path.read_bytes()))


def load_vendored_json(raw_dir: str | os.PathLike, relpath: str):
    return parse_json(Path(raw_dir) / relpath, read_verified(raw_dir, relpath))


def distribution_file(distribution: str, name: str) -> str:
    """Manifest path of one file of a vendored distribution, e.g. ('math', 'train')."""
    return f"distributions/{distribution}/{name}.json.xz"


def vendored_distributions(raw_dir: str | os.PathLike) -> list[str]:
    names = {
        parts[1]
        for parts in (name.split("/") for name in read_manifest(raw_dir))
        if parts[0] == "distributions"
    }
    return sorted(names)


def vendor_upstream(upstream_dir: str | os.PathLike, raw_dir: str | os.PathLike) -> dict[str, str]:
    """Copy what the project needs from the upstream material into `raw_dir`, with a manifest.

    Distribution files are recompressed one by one (xz), so that each split is a separate input
    of the pipeline; stray upstream files are left behind. Shift specifications, target-tuned
    capabilities and published metric tables stay plain (small, and read by people); the
    published per-example evaluations stay the upstream archive, byte for byte.
    """
    upstream_dir, raw_dir = Path(upstream_dir), Path(raw_dir)
    published = upstream_dir / "published-results"
    sources = [
        (upstream_dir / "distributions.tar.xz", "distributions", None),
        (upstream_dir / "distribution_shifts", "distribution_shifts", "*.json"),
        (published / "evaluations.tar.xz", "published/evaluations.tar.xz", None),
        (published / "target_tuned_capability", "published/target_tuned_capability", "*.json"),
        (published / "generalization_metrics", "published/generalization_metrics", "*.csv"),
    ]
    for path, _, _ in sources:
        if not path.exists():
            raise GeniesError(f"{path}: not found; expected the genies-upstream folder")
    manifest = vendor_distributions(sources[0][0], raw_dir)
    for source, relroot, pattern in sources[1:]:
        files = [source] if pattern is None else sorted(source.rglob(pattern))
        for path in files:
            relpath = relroot if pattern is None else f"{relroot}/{path.relative_to(source)}"
            manifest[relpath] = copy_bytes(path.read_bytes(), raw_dir / relpath)
    write_manifest(raw_dir, manifest)
    return manifest


def copy_bytes(content: bytes, dest: Path) -> str:
    write_atomic(dest, lambda tmp: tmp.write_bytes(content))
    return sha256_bytes(content)


def vendor_distributions(archive: Path, raw_dir: Path) -> dict[str, str]:
    manifest = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 3 or parts[0] != "distributions":
                continue
            if parts[2] not in DISTRIBUTION_FILES:
                continue
            content = tar.extractfile(member).read()
            relpath = f"distributions/{parts[1]}/{parts[2]}.xz"
            packed = lzma.compress(content, preset=9 | lzma.PRESET_EXTREME)
            manifest[relpath] = copy_bytes(packed, raw_dir / relpath)
    return manifest


def write_manifest(raw_dir: Path, entries: dict[str, str]) -> None:
    """Merge `entries` into the manifest (other areas of data/raw keep their lines)."""
    merged = read_manifest(raw_dir) if (raw_dir / MANIFEST).is_file() else {}
    merged.update(entries)
    lines = io.StringIO()
    for name in sorted(merged):
        lines.write(f"{merged[name]}  {name}\n")
    write_text_atomic(raw_dir / MANIFEST, lines.getvalue())
