"""One lock file per training run, so that shards never train the same run at once.

``vtsnn reproduce`` may run as several processes, on one machine or on many sharing a
disk. Whoever trains a run holds ``<run>.lock``: a small JSON naming its process, host
and boot, which it touches every :data:`HEARTBEAT_SECONDS` while it trains.

A lock is taken over only when its owner is known to be gone:

- it names a process of this very boot of this machine that no longer exists, or
- nobody touched it for :data:`STALE_SECONDS` (its machine crashed, rebooted or lost
  the disk, or its process hung).

A host name alone does not tell machines apart (cloud machines made from one image
often share it; ours are all called ``vm``), so "this machine" is the host name and the
kernel's boot id together. Where there is no boot id (not Linux), the host name alone.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

HEARTBEAT_SECONDS = 60.0
# Ten missed heartbeats: a loaded machine or a slow shared disk may delay a few.
STALE_SECONDS = 600.0
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class RunBusy(RuntimeError):
    """Another process holds the run's lock."""


def lock_path(run_dir: Path) -> Path:
    return Path(run_dir).with_name(Path(run_dir).name + ".lock")


def this_process() -> dict:
    """What a lock records about its owner."""
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        boot = None
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot": boot}


def read_holder(path: Path) -> dict:
    """The owner a lock file names; ``{}`` when it is unreadable (half-written or damaged)."""
    try:
        holder = json.loads(Path(path).read_text() or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def seconds_since_touched(path: Path) -> float:
    return max(0.0, time.time() - Path(path).stat().st_mtime)


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                # alive, owned by someone else
        return True
    return True


def _owner_gone(holder: dict, idle_seconds: float, me: dict) -> bool:
    if idle_seconds > STALE_SECONDS:
        return True
    same_boot = (holder.get("host"), holder.get("boot")) == (me["host"], me["boot"])
    try:
        pid = int(holder.get("pid", -1))
    except (TypeError, ValueError):
        return False
    return same_boot and not _process_alive(pid)


def describe(run_dir: Path) -> str | None:
    """Who holds the run's lock and when it last showed life; ``None`` when nobody does."""
    path = lock_path(run_dir)
    try:
        idle = seconds_since_touched(path)
    except FileNotFoundError:
        return None
    holder = read_holder(path)
    state = "stale, the next run takes it over" if _owner_gone(holder, idle, this_process()) else "held"
    return (f"lock {path} {state}: process {holder.get('pid')} on {holder.get('host')}, "
            f"last touched {idle:.0f} s ago")


def _keep_touching(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            os.utime(path)
        except OSError:                    # removed by hand: nothing left to keep alive
            return


def _create(path: Path, me: dict) -> bool:
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w") as file:
        json.dump(me, file)
    return True


@contextmanager
def run_lock(run_dir: Path):
    """Hold the run's lock for the ``with`` block; :class:`RunBusy` if its owner is alive."""
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = this_process()
    for _ in range(2):
        if _create(path, me):
            break
        try:
            idle = seconds_since_touched(path)
        except FileNotFoundError:          # released between our two looks
            continue
        holder = read_holder(path)
        if not _owner_gone(holder, idle, me):
            raise RunBusy(f"{run_dir} is being trained by process {holder.get('pid')} on {holder.get('host')}, "
                          f"which touched its lock {idle:.0f} s ago (remove {path} if that process is gone; "
                          f"a lock untouched for {STALE_SECONDS:.0f} s is taken over)")
        path.unlink(missing_ok=True)       # its owner is gone: the run's checkpoint is still consistent
    else:
        raise RunBusy(f"could not take the lock {path}")
    stop = threading.Event()
    heartbeat = threading.Thread(target=_keep_touching, args=(path, stop), daemon=True,
                                 name=f"heartbeat {path.name}")
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join()
        if read_holder(path) == me:        # not a lock taken over while this process hung
            path.unlink(missing_ok=True)
