"""The library files a job runs, derived from imports, so that editing one reruns its jobs.

Snakemake does not see edits to an installed package, so every rule lists the files of the
modules its command runs as inputs. The list is computed, not kept by hand: the named modules, the
`genies` modules they import (at module level or inside functions, transitively), the packages'
`__init__.py` files that importing them executes, and the command line itself.
"""

import ast
from pathlib import Path

PACKAGE = "genies"
CLI = "genies.cli"  # its commands import their modules lazily: the rule names the one it runs


def module_path(src: Path, module: str) -> Path | None:
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from genies.x import y` imports genies.x, and genies.x.y if y is a module
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")}


def with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def library_files(src: str | Path, *modules: str) -> list[str]:
    """Sorted paths (under `src`) of `modules`, the command line, and all they import."""
    src = Path(src)
    seen: dict[str, Path] = {}
    pending = [CLI, *modules]
    while pending:
        for name in with_parents(pending.pop()):
            if name in seen or (path := module_path(src, name)) is None:
                continue
            seen[name] = path
            pending.extend(imported_modules(path, top_level_only=name == CLI))
    return sorted(str(path) for path in seen.values())
