"""The documentation stays true to the repository: its relative links and anchors resolve, the
repository paths it names exist, config/README.md documents exactly the schema's keys, and the
README stays short. Each check is a small function, tested on inline inputs (so that each can be
seen to fail) and run on the real files. Fast, no network."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIG_README = ROOT / "config" / "README.md"
README_MAX_LINES = 200

# Top-level folders and files of the repository a backticked path may start with.
TOP_LEVEL = {
    ".ci",
    ".dvc",
    "bench",
    "config",
    "data",
    "docs",
    "profiles",
    "rules",
    "src",
    "tests",
    "workflow",
    "results",
    "logs",
    "models",
    ".snakemake",
}
# A path in a known folder is checked whatever it ends in; a bare file name only if it is source.
SOURCE_EXTENSIONS = (".py", ".smk", ".yaml", ".yml", ".toml", ".sh")
# What exists only after a run (or a DVC command): named in the docs, absent from a checkout.
OUTPUT_PREFIXES = (
    "results/",
    "logs/",
    "models/",
    "data/splits/",
    ".snakemake/",
    ".dvc/config.local",
)
# Names the docs use as examples of the user's own files, not as repository files.
EXAMPLE_NAMES = {"my.yaml"}


def documentation_files() -> list[Path]:
    return [ROOT / "README.md", CONFIG_README, *sorted((ROOT / "docs").glob("*.md"))]


def without_code_blocks(text: str) -> str:
    """The text with fenced code blocks blanked (their lines kept, so line counts stay)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return "\n".join(out)


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {
        slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", without_code_blocks(text), re.M)
    }


def broken_links(path: Path, text: str) -> list[str]:
    """Each relative link of a Markdown text (at `path`) whose file, or anchor, is missing."""
    broken = []
    for m in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)\)", without_code_blocks(text)):
        target = m.group(1)
        if re.match(r"[a-z]+:", target):  # http(s), mailto
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{path.name}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(f"{path.name}: {target} (no such heading)")
    return broken


def named_paths(text: str) -> set[str]:
    """The backticked spans of a text that look like repository paths."""
    found = set()
    for m in re.finditer(r"`([^`\n]+)`", text):
        span = m.group(1).strip().split("::", 1)[0]  # a test's node id names its file
        if re.search(r"[\s<>{}*$=:~\[\]]|\.\.\.|^/|^-", span):
            continue  # a command, a pattern, a placeholder, an absolute or home path
        in_a_folder = "/" in span and span.split("/", 1)[0] in TOP_LEVEL
        a_source_file = "/" not in span and span.endswith(SOURCE_EXTENSIONS)
        if in_a_folder or (a_source_file and not span.startswith(".")):
            found.add(span)
    return found


def missing_paths(names: set[str], root: Path = ROOT) -> list[str]:
    """Of the named paths, those that neither exist nor are run outputs or examples."""
    missing = []
    for name in sorted(names):
        if name in EXAMPLE_NAMES or name.startswith(OUTPUT_PREFIXES):
            continue
        if "/" in name:
            if not (root / name).exists():
                missing.append(name)
        elif not (root / name).exists() and not any(root.glob(f"*/**/{name}")):
            missing.append(name)
    return missing


def schema_keys(schema: dict, prefix: str = "") -> set[str]:
    """Every key of a JSON schema, dotted; `*` for a mapping's free keys."""
    keys = set()
    branches = [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]
    for branch in branches:
        for name, sub in branch.get("properties", {}).items():
            key = f"{prefix}{name}"
            keys.add(key)
            keys |= schema_keys(sub, f"{key}.")
        extra = branch.get("additionalProperties")
        if isinstance(extra, dict) and (extra.get("properties") or extra.get("oneOf")):
            keys |= schema_keys(extra, f"{prefix}*.")
    return keys


def documented_keys(text: str) -> set[str]:
    """The first-column keys of the tables headed `| key |`, `<placeholder>` read as `*`."""
    keys, in_table = set(), False
    for line in text.splitlines():
        cells = (
            [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        )
        if not cells:
            in_table = False
        elif cells[0] == "key":
            in_table = True
        elif in_table and not set(cells[0]) <= set("-: "):
            keys.add(re.sub(r"<[^>]+>", "*", cells[0].strip("`")))
    return keys


def key_mismatches(schema: dict, text: str) -> list[str]:
    wanted, documented = schema_keys(schema), documented_keys(text)
    return [f"undocumented: {k}" for k in sorted(wanted - documented)] + [
        f"not in the schema: {k}" for k in sorted(documented - wanted)
    ]


# The checks, on inline inputs: each goes red on a broken input.


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Some `code` heading\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#some-code-heading) [web](https://x.org/nowhere)\n"
        "[bad](docs/b.md) [bad anchor](docs/a.md#nowhere)\n"
        "```\n[in code](docs/c.md)\n```\n"
    )
    assert broken_links(page, page.read_text()) == [
        "README.md: docs/b.md (no such file)",
        "README.md: docs/a.md#nowhere (no such heading)",
    ]


def test_a_named_path_that_does_not_exist_is_found(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.py").write_text("")
    text = (
        "`src/x.py` `src/y.py` `bench/z.py` `results/genies_table.csv` `snakemake -n all` "
        "`heatmap_<model>.png` `genies.models.catalog` `seed` `x.py` `w.sh` "
        "`tests/test_a.py::test_b` `src/genies/...` `~/.cache/x` `my.yaml` `NOTES.md` `.md`"
    )
    names = named_paths(text)
    assert names == {
        "src/x.py",
        "src/y.py",
        "bench/z.py",
        "results/genies_table.csv",
        "x.py",
        "w.sh",
        "tests/test_a.py",
        "my.yaml",
    }
    assert missing_paths(names, tmp_path) == ["bench/z.py", "src/y.py", "tests/test_a.py", "w.sh"]


def test_a_key_missing_on_either_side_is_found():
    schema = {
        "properties": {
            "a": {"type": "string"},
            "b": {"properties": {"c": {}}},
            "m": {"additionalProperties": {"properties": {"d": {}}}},
            "n": {"oneOf": [{"type": "null"}, {"properties": {"e": {}}}]},
        }
    }
    assert schema_keys(schema) == {"a", "b", "b.c", "m", "m.*.d", "n", "n.e"}
    text = (
        "| key | type |\n|---|---|\n| `a` | x |\n| `b` | x |\n| `m` | x |\n| `m.<name>.d` | x |\n"
        "| `n` | x |\n| `n.e` | x |\n| `z` | x |\n\n| other | y |\n|---|---|\n| `q` | y |\n"
    )
    assert key_mismatches(schema, text) == ["undocumented: b.c", "not in the schema: z"]


# The checks, on the real files.


@pytest.mark.parametrize("path", documentation_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path, path.read_text()) == []


@pytest.mark.parametrize("path", documentation_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_repository_path_exists(path):
    assert missing_paths(named_paths(path.read_text())) == []


def test_config_readme_documents_exactly_the_schemas_keys():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert len(schema_keys(schema)) > 20
    assert key_mismatches(schema, CONFIG_README.read_text()) == []


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
