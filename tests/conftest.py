import pytest

from genies.models.catalog import resolve_model
from genies.models.loading import materialise_model
from tests.helpers import copy_workflow


@pytest.fixture
def workflow_copy(tmp_path):
    """A copy of the workflow (Snakefile, rules, profile, schemas, configs, vendored data)."""
    return copy_workflow(tmp_path)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """The tiny random model's folder, materialised once per test module."""
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    materialise_model("tiny-llama", resolve_model("tiny-llama", {}), folder)
    return folder
