import pytest

from tests.helpers import copy_workflow


@pytest.fixture
def workflow_copy(tmp_path):
    """A copy of the workflow (Snakefile, rules, profile, schemas, configs, vendored data)."""
    return copy_workflow(tmp_path)
