"""A job's code inputs: what its `genies` subcommand imports, transitively, and nothing else."""

import hashlib
import os
import re
from pathlib import Path

import pytest

from genies.code_inputs import code_stamp, imported_modules, library_files
from genies.dvc_stages import rule_commands
from tests.helpers import REPO


def write(root, relpath, text=""):
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_files_are_the_imports_of_the_command_followed_transitively(tmp_path):
    write(tmp_path, "genies/__init__.py")
    write(tmp_path, "genies/errors.py")
    # the command line: a command takes its own group's module and the shared ones, no other's
    write(
        tmp_path,
        "genies/cli/__init__.py",
        "import json\nfrom genies.cli import chores, stats\n"
        "from genies.cli.plumbing import parser\n",
    )
    write(tmp_path, "genies/cli/plumbing.py", "from genies.errors import Oops\n")
    # shared plumbing that only another group imports is still loaded by every command
    write(tmp_path, "genies/cli/options.py", "from genies.catalog import NAMES\n")
    write(tmp_path, "genies/catalog.py")
    write(
        tmp_path,
        "genies/cli/stats.py",
        "from genies.cli.plumbing import parser\n\n"
        "def cmd_run_it(args):\n    from genies.stats.mean import mean\n\n"
        "def cmd_other(args):\n    import genies.unused\n\n"
        "def prepared(args):\n    import genies.helped\n",
    )
    write(
        tmp_path, "genies/cli/chores.py", "import genies.tidy\n\ndef cmd_tidy_up(args):\n    pass\n"
    )
    write(tmp_path, "genies/tidy.py")
    write(tmp_path, "genies/stats/__init__.py")
    # an import inside a function counts; `from genies.stats import helper` names a module
    write(tmp_path, "genies/stats/mean.py", "def mean():\n    from genies.stats import helper\n")
    write(tmp_path, "genies/stats/helper.py", "import numpy\n")
    write(tmp_path, "genies/unused.py")
    write(tmp_path, "genies/helped.py")  # imported by a helper a command of its group may call
    write(tmp_path, "genies/extra.py", "from genies.deep.leaf import x\n")
    write(tmp_path, "genies/deep/__init__.py")
    write(tmp_path, "genies/deep/leaf.py")
    command_line = {
        "genies/__init__.py",
        "genies/cli/__init__.py",
        "genies/cli/plumbing.py",
        "genies/cli/options.py",
        "genies/catalog.py",
    }
    expected = command_line | {
        "genies/cli/stats.py",
        "genies/helped.py",
        "genies/errors.py",
        "genies/stats/__init__.py",
        "genies/stats/mean.py",
        "genies/stats/helper.py",
    }
    prefix = f"{tmp_path}/"
    found = {path.removeprefix(prefix) for path in library_files(tmp_path, "run-it")}
    assert found == expected
    with_extra = {p.removeprefix(prefix) for p in library_files(tmp_path, "run-it", "genies.extra")}
    assert with_extra == expected | {
        "genies/extra.py",
        "genies/deep/__init__.py",
        "genies/deep/leaf.py",
    }
    found = {path.removeprefix(prefix) for path in library_files(tmp_path, "tidy-up")}
    assert found == command_line | {"genies/errors.py", "genies/cli/chores.py", "genies/tidy.py"}


def test_a_group_module_imports_at_its_top_only_what_every_command_loads_anyway():
    """Every command imports every group module (the parser lists them all), but its code stamp
    holds only its own group's: so no group module may import a library module at its top."""
    import ast

    shared = ("genies.cli", "genies.errors", "genies.job_clock")
    for path in sorted((REPO / "src/genies/cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        if not any(getattr(node, "name", "").startswith("cmd_") for node in tree.body):
            continue  # plumbing, in every command's stamp
        for name in imported_modules(tree.body):
            allowed = name == "genies" or any(name == s or name.startswith(s + ".") for s in shared)
            assert allowed, (path.name, name)


def test_a_command_is_defined_in_exactly_one_group_module(tmp_path):
    write(tmp_path, "genies/__init__.py")
    write(tmp_path, "genies/cli/__init__.py")
    write(tmp_path, "genies/cli/one.py", "def cmd_twice(args):\n    pass\n")
    write(tmp_path, "genies/cli/two.py", "def cmd_twice(args):\n    pass\n")
    with pytest.raises(ValueError, match="genies.cli.one, genies.cli.two"):
        library_files(tmp_path, "twice")
    with pytest.raises(ValueError, match="cmd_never in no module of genies.cli"):
        library_files(tmp_path, "never")


def test_every_rule_takes_the_code_of_the_command_its_shell_runs():
    shell_commands = rule_commands(REPO / "rules")
    for path in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", path.read_text()):
            rule = re.match(r"rule (\w+):", block)
            named = re.findall(r'code=(?:intervention_)?code\("([\w-]+)"', block)
            if rule and rule.group(1) in shell_commands:
                assert named == [shell_commands[rule.group(1)][1]], (path.name, rule.group(1))
            else:
                assert named == [], (path.name, block.splitlines()[0])
    assert len(shell_commands) == 19  # every rule that runs a genies command, claims included


def test_a_job_takes_one_stamp_rewritten_only_when_its_files_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "src/genies/__init__.py")
    write(tmp_path, "src/genies/cli/__init__.py")
    write(tmp_path, "src/genies/cli/jobs.py", "def cmd_go(args):\n    from genies import work\n")
    write(tmp_path, "src/genies/work.py", "X = 1\n")
    write(tmp_path, "src/genies/other.py")
    files = [
        "src/genies/__init__.py",
        "src/genies/cli/__init__.py",
        "src/genies/cli/jobs.py",
        "src/genies/work.py",
    ]
    for age, path in enumerate(files):  # the newest, work.py, dates the stamp
        os.utime(path, ns=(10**18 + age, 10**18 + age))
    stamp = Path(code_stamp("src", "go"))
    sums = [f"{hashlib.sha256(Path(p).read_bytes()).hexdigest()}  {p}" for p in files]
    assert stamp.read_text().splitlines() == sums
    assert stamp.stat().st_mtime_ns == 10**18 + 3
    # a file the command does not run, and a touch, leave the stamp as it was
    write(tmp_path, "src/genies/other.py", "Y = 2\n")
    os.utime("src/genies/work.py", ns=(10**18 + 5, 10**18 + 5))
    assert code_stamp("src", "go") == str(stamp) and stamp.stat().st_mtime_ns == 10**18 + 3
    # an edit rewrites it, dated like the edited file
    write(tmp_path, "src/genies/work.py", "X = 2\n")
    os.utime("src/genies/work.py", ns=(10**18 + 9, 10**18 + 9))
    code_stamp("src", "go")
    edited = hashlib.sha256(b"X = 2\n").hexdigest()
    assert stamp.read_text().splitlines()[3] == f"{edited}  src/genies/work.py"
    assert stamp.stat().st_mtime_ns == 10**18 + 9
    # a method loaded by name gets a stamp of its own
    assert code_stamp("src", "go", "genies.other").endswith("go+genies.other.sha256")
