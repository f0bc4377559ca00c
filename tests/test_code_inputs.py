"""A job's code inputs: what its `genies` subcommand imports, transitively, and nothing else."""

import re

from genies.code_inputs import library_files
from genies.dvc_stages import rule_commands
from tests.helpers import REPO


def write(root, relpath, text=""):
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_files_are_the_imports_of_the_command_followed_transitively(tmp_path):
    write(tmp_path, "genies/__init__.py")
    write(tmp_path, "genies/errors.py")
    write(
        tmp_path,
        "genies/cli.py",
        "import json\nfrom genies.errors import Oops\n\n"
        "def cmd_run_it(args):\n    from genies.stats.mean import mean\n\n"
        "def cmd_other(args):\n    import genies.unused\n",
    )
    write(tmp_path, "genies/stats/__init__.py")
    # an import inside a function counts; `from genies.stats import helper` names a module
    write(tmp_path, "genies/stats/mean.py", "def mean():\n    from genies.stats import helper\n")
    write(tmp_path, "genies/stats/helper.py", "import numpy\n")
    write(tmp_path, "genies/unused.py")
    write(tmp_path, "genies/extra.py", "from genies.deep.leaf import x\n")
    write(tmp_path, "genies/deep/__init__.py")
    write(tmp_path, "genies/deep/leaf.py")
    expected = {
        "genies/__init__.py",
        "genies/cli.py",
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
    assert len(shell_commands) == 15
