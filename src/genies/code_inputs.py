"""The library files a job runs, derived from imports, so that editing one reruns its jobs.

Snakemake does not see edits to an installed package, so every rule lists the files its command
runs as inputs. The list is computed, not kept by hand: a rule names the `genies` subcommand of its
shell line. The command line (the package `genies.cli`) keeps each group of commands in a module of
its own, which defines their functions `cmd_<name>`; the subcommand's files are the command line's
modules but the other groups', with their module-level imports, the imports inside the
subcommand's function, then (transitively, at module level or inside functions) every `genies`
module those import, and the packages' `__init__.py` files that importing them executes. So
editing one group's module reruns only its commands' jobs, and a module every command loads (the
parser's plumbing, the one-line errors) reruns them all.

A job takes them as one input, a stamp file holding their sha256 sums: Snakemake stats every input
of every ready job on each scheduling pass, and about 30 files a job made that most of its cost.
"""

import ast
import functools
import hashlib
import os
import tempfile
from pathlib import Path

PACKAGE = "genies"
CLI = "genies.cli"
STAMPS = Path(".snakemake", "genies", "code")  # bookkeeping of the workdir, like Snakemake's own


def module_path(src: Path, module: str) -> Path | None:
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(nodes) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from genies.x import y` imports genies.x, and genies.x.y if y is a module
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")}


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def cli_functions(src: Path) -> dict[str, dict[str, ast.FunctionDef]]:
    """Every module of the command line (the package itself as `genies.cli`), parsed once, with
    its top-level functions by name."""
    modules = {}
    for path in sorted(module_path(src, CLI).parent.glob("*.py")):
        name = CLI if path.stem == "__init__" else f"{CLI}.{path.stem}"
        body = parsed(path).body
        modules[name] = {node.name: node for node in body if isinstance(node, ast.FunctionDef)}
    return modules


def command_function(cli: dict, command: str) -> tuple[str, ast.FunctionDef]:
    """The group module that defines `genies <command>`, and the command's function."""
    function = f"cmd_{command.replace('-', '_')}"
    defined = [(module, found[function]) for module, found in cli.items() if function in found]
    if len(defined) != 1:
        where = ", ".join(module for module, _ in defined) or f"no module of {CLI}"
        raise ValueError(f"`genies {command}`: function {function} in {where}")
    return defined[0]


def with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def library_files(src: str | Path, command: str, *modules: str) -> list[str]:
    """Sorted paths (under `src`) of what `genies <command>` runs, plus `modules` it loads by name
    (a registered intervention), and all they import."""
    src = Path(src)
    # Snakemake asks once per job, with a few distinct arguments: parsing every module each time
    # would be most of the DAG's build time; the key holds each file's mtime and size, so that an
    # edited module is parsed again
    stamp = tuple((str(p), file_stamp(p.stat())) for p in src.rglob("*.py"))
    return list(derived_files(src, command, modules, stamp))


def file_stamp(status: os.stat_result) -> tuple[int, int]:
    return status.st_mtime_ns, status.st_size


@functools.cache
def derived_files(src: Path, command: str, modules: tuple[str, ...], stamp) -> tuple[str, ...]:
    cli = cli_functions(src)
    group, function = command_function(cli, command)
    groups = {name for name, found in cli.items() if any(f.startswith("cmd_") for f in found)}
    other_groups = groups - {group}
    # every other cli module is the parser's plumbing, which every command loads; of its own
    # group, the command and the helpers it may call (not the group's other commands)
    plumbing = [name for name in cli if name not in groups]
    runs = [function, *(f for name, f in cli[group].items() if not name.startswith("cmd_"))]
    called = [name for node in runs for name in imported_modules(ast.walk(node))]
    seen: dict[str, Path] = {}
    pending = [CLI, *plumbing, group, *called, *modules]
    while pending:
        for name in with_parents(pending.pop()):
            if name in seen or name in other_groups or (path := module_path(src, name)) is None:
                continue
            seen[name] = path
            tree = parsed(path)
            # of the command line's modules, only what importing them runs: of their functions
            # the command runs its own, whose imports are pending already
            in_cli = name == CLI or name.startswith(CLI + ".")
            pending.extend(imported_modules(tree.body if in_cli else ast.walk(tree)))
    return tuple(sorted(str(path) for path in seen.values()))


def code_stamp(src: str | Path, command: str, *modules: str) -> str:
    """The path of one file standing for `library_files(src, command, *modules)`: their sha256
    sums, written only when those change, dated like the newest of the files. So Snakemake reruns
    a job when, and only when, it would have for the files themselves."""
    files = library_files(src, command, *modules)
    sums = "".join(f"{file_sha256(path, file_stamp(os.stat(path)))}  {path}\n" for path in files)
    newest = max(os.stat(path).st_mtime_ns for path in files)
    stamp = STAMPS / ("+".join((command, *modules)) + ".sha256")
    write_stamp(stamp, sums, newest)
    return str(stamp)


@functools.cache
def file_sha256(path: str, stamp: tuple[int, int]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@functools.cache
def write_stamp(stamp: Path, sums: str, mtime_ns: int) -> None:
    """Write `sums` to `stamp` unless it holds them already; once per process for each content.
    Other processes may write the same stamp at once (jobs that parse the workflow on a cluster):
    each writes a temporary of its own and renames it."""
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == sums:
        return
    stamp.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{stamp.name}.", suffix=".tmp", dir=stamp.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(sums)
    os.utime(tmp, ns=(mtime_ns, mtime_ns))
    os.replace(tmp, stamp)
