"""A single-node SLURM cluster from Debian's packages (slurmctld, slurmd, munge), started for a test
and stopped by the process ids its daemons wrote.

Traps met on this kind of machine: munge's socket directory and its parents must be
world-executable; the job-step plugin drops SLURM_CONF, so the configuration sits at the default
path /etc/slurm/slurm.conf (the cluster refuses to start over one it did not write); without an
accounting daemon `sacct` hangs, so the profile asks `squeue`.

The node offers GPUS stand-in GPUs: SLURM's gres plugin only needs a character device per GPU, so
each is a /dev/null look-alike; a job asking for N is granted N in CUDA_VISIBLE_DEVICES, as on a
GPU node (torch finds no CUDA device behind them, so the job computes on the CPU).
"""

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = CONF.with_name("gres.conf")
GPUS = 2
MARK = "# written by genies' tests\n"
DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_reason() -> str | None:
    """Why no cluster can start here, or None."""
    missing = [
        name for name in (*DAEMONS, "sbatch", "squeue", "sinfo", "scancel") if not find(name)
    ]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)}; Debian: slurmctld slurmd munge)"
    if os.geteuid() != 0:
        return "starting slurmd and munged needs root"
    for conf in (CONF, GRES_CONF):
        if conf.exists() and not conf.read_text().startswith(MARK):
            return f"{conf} exists and is not ours: a real cluster's configuration is left alone"
    return None


def find(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def configuration(root: Path, host: str, cpus: int, memory_mb: int) -> str:
    return MARK + "\n".join(
        [
            "ClusterName=genies-test",
            "GresTypes=gpu",
            f"SlurmctldHost={host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"AuthInfo=socket={root}/munge/munge.socket.2",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/slurmctld.pid",
            f"SlurmdPidFile={root}/slurmd.pid",
            f"SlurmctldLogFile={root}/slurmctld.log",
            f"SlurmdLogFile={root}/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "ReturnToService=2",
            "MinJobAge=3600",  # finished jobs stay in `scontrol show job` for the test to read
            f"NodeName={host} CPUs={cpus} RealMemory={memory_mb} Gres=gpu:{GPUS} State=UNKNOWN",
            f"PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def stand_in_gpus(root: Path) -> str:
    """GPUS character devices like /dev/null, and the gres.conf that offers them as GPUs."""
    lines = []
    for index in range(GPUS):
        os.mknod(root / f"gpu{index}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        lines.append(f"Name=gpu File={root}/gpu{index}\n")
    return MARK + "".join(lines)


def memory_mb() -> int:
    """The machine's memory as slurmd counts it (a node claiming more is refused)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("SLURM test cluster: no MemTotal in /proc/meminfo")


def wait_until(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"SLURM test cluster: no {what} within {timeout} s")
        time.sleep(0.5)


def node_idle() -> bool:
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == "idle"


@contextmanager
def slurm_cluster():
    """Start munged, slurmctld and slurmd on this host; at the end cancel every job and stop the
    daemons by pid, each step run even if an earlier one failed."""
    root = Path(tempfile.mkdtemp(prefix="genies-slurm-"))
    munge = root / "munge"
    munge.mkdir()
    for folder in (root, munge):
        folder.chmod(0o755)
    for name in ("state", "spool"):
        (root / name).mkdir()
    starts = {
        "munged": [
            find("munged"), f"--socket={munge}/munge.socket.2", f"--pid-file={munge}/munged.pid",
            f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed", "--force",
        ],
        "slurmctld": [find("slurmctld")],
        "slurmd": [find("slurmd")],
    }  # fmt: skip
    pid_files = {"munged": munge / "munged.pid"} | {
        name: root / f"{name}.pid" for name in ("slurmctld", "slurmd")
    }
    with ExitStack() as cleanup:  # runs its callbacks last in, first out, all of them
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        CONF.parent.mkdir(parents=True, exist_ok=True)
        for conf in (CONF, GRES_CONF):
            cleanup.callback(conf.unlink, missing_ok=True)
        GRES_CONF.write_text(stand_in_gpus(root))
        CONF.write_text(configuration(root, socket.gethostname(), os.cpu_count() or 1, memory_mb()))
        for name in DAEMONS:
            cleanup.callback(stop, pid_files[name])
            subprocess.run(starts[name], check=True, capture_output=True, timeout=60)
        cleanup.callback(cancel_all_jobs)
        wait_until(node_idle, "idle node")
        yield root


def cancel_all_jobs() -> None:
    """No job outlives the cluster (a failed or timed-out run leaves some queued or running)."""
    subprocess.run(["scancel", "--full", "--user=root"], capture_output=True, timeout=60)
    wait_until(lambda: not squeue_lines(), "empty queue", timeout=60)


def job_records() -> dict[str, dict[str, str]]:
    """What slurmctld recorded of each job it knows, by job id (`scontrol show job` fields)."""
    done = subprocess.run(
        ["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    records = [
        dict(field.split("=", 1) for field in line.split() if "=" in field)
        for line in done.stdout.splitlines()
    ]
    assert all("JobId" in record for record in records), done.stdout
    return {record["JobId"]: record for record in records}


def squeue_lines() -> list[str]:
    done = subprocess.run(["squeue", "-h"], capture_output=True, text=True, timeout=60)
    return done.stdout.splitlines()


def stop(pid_file: Path) -> None:
    """SIGTERM, then SIGKILL after 30 s; a process already gone counts as stopped."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
            wait_until(lambda: not alive(pid), f"end of {pid_file.stem} after {sig.name}", 30)
            return
        except ProcessLookupError:
            return
        except RuntimeError:
            continue
    raise RuntimeError(f"SLURM test cluster: {pid_file.stem} (pid {pid}) survived SIGKILL")


def alive(pid: int) -> bool:
    """Running, neither gone nor a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
