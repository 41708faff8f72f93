"""The lock on a training run: who may take it over, and the heartbeat that keeps it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from vtsnn import run_lock
from vtsnn.run_lock import RunBusy, lock_path


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped), so nothing of ours runs under it."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leave_lock(run_dir, idle_seconds: float = 0.0, **holder) -> None:
    """A lock as another owner left it, last touched ``idle_seconds`` ago."""
    path = lock_path(run_dir)
    path.write_text(json.dumps(holder))
    touched = time.time() - idle_seconds
    os.utime(path, (touched, touched))


def test_the_lock_is_held_inside_the_block_and_gone_after(tmp_path):
    run_dir = tmp_path / "run"
    with run_lock.run_lock(run_dir):
        assert run_lock.read_holder(lock_path(run_dir)) == run_lock.this_process()
        with pytest.raises(RunBusy, match=f"process {os.getpid()}"):
            with run_lock.run_lock(run_dir):
                pass
    assert not lock_path(run_dir).exists()


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        with run_lock.run_lock(run_dir):
            raise KeyboardInterrupt
    assert not lock_path(run_dir).exists()


def test_a_lock_of_a_dead_process_on_this_boot_is_taken_over_at_once(tmp_path):
    run_dir = tmp_path / "run"
    leave_lock(run_dir, **{**run_lock.this_process(), "pid": dead_pid()})
    with run_lock.run_lock(run_dir):
        assert run_lock.read_holder(lock_path(run_dir))["pid"] == os.getpid()


def test_a_fresh_lock_of_another_machine_with_the_same_host_name_is_respected(tmp_path):
    # Machines made from one image share a host name; only the boot id tells them apart.
    run_dir = tmp_path / "run"
    me = run_lock.this_process()
    leave_lock(run_dir, idle_seconds=30, pid=dead_pid(), host=me["host"], boot="another-machine")
    with pytest.raises(RunBusy, match=r"touched its lock 3\d s ago"):
        with run_lock.run_lock(run_dir):
            pass
    assert run_lock.read_holder(lock_path(run_dir))["boot"] == "another-machine"


@pytest.mark.parametrize("holder", [{"pid": 1, "host": "elsewhere", "boot": "x"}, {"pid": "garbage"}, {}],
                         ids=["another machine", "damaged", "empty"])
def test_a_lock_nobody_touched_for_the_stale_time_is_taken_over_whoever_left_it(tmp_path, holder):
    run_dir = tmp_path / "run"
    leave_lock(run_dir, idle_seconds=run_lock.STALE_SECONDS + 5, **holder)
    with run_lock.run_lock(run_dir):
        assert run_lock.read_holder(lock_path(run_dir)) == run_lock.this_process()


def test_a_fresh_damaged_lock_is_respected(tmp_path):
    # A lock may be read half-written; it says nothing about its owner, so it is left alone.
    run_dir = tmp_path / "run"
    lock_path(run_dir).write_text('{"pid": 12')
    with pytest.raises(RunBusy):
        with run_lock.run_lock(run_dir):
            pass


def test_a_lock_from_before_boot_ids_were_recorded_is_taken_over_once_stale(tmp_path):
    run_dir = tmp_path / "run"
    leave_lock(run_dir, idle_seconds=10, pid=dead_pid(), host=run_lock.this_process()["host"])
    with pytest.raises(RunBusy):
        with run_lock.run_lock(run_dir):
            pass
    leave_lock(run_dir, idle_seconds=run_lock.STALE_SECONDS + 1, pid=dead_pid(),
               host=run_lock.this_process()["host"])
    with run_lock.run_lock(run_dir):
        pass


def test_the_owner_keeps_touching_its_lock_while_it_holds_it(tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "HEARTBEAT_SECONDS", 0.01)
    run_dir = tmp_path / "run"
    with run_lock.run_lock(run_dir):
        path = lock_path(run_dir)
        long_ago = time.time() - 3600
        os.utime(path, (long_ago, long_ago))
        deadline = time.monotonic() + 30
        while run_lock.seconds_since_touched(path) > 600 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run_lock.seconds_since_touched(path) < 600


def test_releasing_leaves_a_lock_another_process_took_over_in_place(tmp_path):
    run_dir = tmp_path / "run"
    with run_lock.run_lock(run_dir):
        leave_lock(run_dir, pid=1, host="elsewhere", boot="x")      # this process hung; someone else took over
    assert run_lock.read_holder(lock_path(run_dir))["host"] == "elsewhere"


def test_describe_says_who_holds_the_lock_and_whether_it_is_stale(tmp_path):
    run_dir = tmp_path / "run"
    assert run_lock.describe(run_dir) is None
    leave_lock(run_dir, idle_seconds=20, pid=4321, host="elsewhere", boot="x")
    assert re.search(r"held: process 4321 on elsewhere, last touched 2\d s ago", run_lock.describe(run_dir))
    leave_lock(run_dir, idle_seconds=run_lock.STALE_SECONDS + 60, pid=4321, host="elsewhere", boot="x")
    assert "stale" in run_lock.describe(run_dir)
