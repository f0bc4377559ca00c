"""A killed run's lock is cleared by the next run; a live run's lock and an unowned lock are not."""

import signal
import subprocess
import sys

from genies import run_lock

HOLDER = """
import sys, time
from genies import run_lock
run_lock.hold(sys.argv[1:])
print("held", flush=True)
time.sleep(600)
"""


def start_holder(*lock_files):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *map(str, lock_files)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def test_only_the_lock_files_of_a_dead_owner_are_removed(tmp_path):
    lock_dir = tmp_path / ".snakemake" / "locks"
    lock_dir.mkdir(parents=True)
    live = [lock_dir / "0.input.lock", lock_dir / "0.output.lock"]
    killed = [lock_dir / "1.input.lock", lock_dir / "1.output.lock"]
    unowned = lock_dir / "2.output.lock"  # e.g. a run killed between locking and recording
    for path in (*live, *killed, unowned):
        path.write_text("results/genies_table.csv\n")
    alive, dying = start_holder(*live), start_holder(*killed)
    try:
        assert run_lock.clear_stale(lock_dir) == []  # both owners alive: nothing goes
        dying.send_signal(signal.SIGKILL)
        dying.wait()
        assert sorted(run_lock.clear_stale(lock_dir)) == ["1.input.lock", "1.output.lock"]
        assert all(path.exists() for path in (*live, unowned))
        assert not any(path.exists() for path in killed)
        assert len(list(lock_dir.glob("owner-*.json"))) == 1  # the live owner's record stays
    finally:
        alive.kill()
        alive.wait()
    assert sorted(run_lock.clear_stale(lock_dir)) == ["0.input.lock", "0.output.lock"]
    assert [path.name for path in lock_dir.iterdir()] == [unowned.name]
