import shutil

import pytest

from tests.helpers import REPO


@pytest.fixture
def workflow_copy(tmp_path):
    """A copy of the workflow (Snakefile, rules, schemas, configs, vendored data) to run in."""
    for name in ("Snakefile", "environment.yml", "rules", "workflow", "config", "src", "data/raw"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path
