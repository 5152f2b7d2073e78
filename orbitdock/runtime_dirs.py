"""The runtime dir's life: held while the daemon runs, removed by a clean stop, and
swept at start when a daemon died without removing it.

Each runtime dir holds ``orbitdockd.lock``, flock-held by its daemon for its whole
life, so "is its daemon gone?" is answered by the kernel: a lock that can be taken
belongs to no live process. A dir without that file is never removed (it may be a
daemon just starting, or one of a version that did not write it).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from pathlib import Path

from orbitdock.locks import HeldLock, LockHeld, read_holder, try_acquire
from orbitdock.paths import Layout, runtime_base

logger = logging.getLogger(__name__)

RUNTIME_LOCK = "orbitdockd.lock"
HOLD_RETRY_S = 0.05  # a sweeping daemon holds a dead dir's lock only while removing it


def hold(lay: Layout, wait_s: float) -> HeldLock:
    """Create the 0700 runtime dir (again, if a sweep just removed it) and lock it,
    trying for ``wait_s``; LockHeld when a live daemon holds it."""
    lock_path = lay.runtime_dir / RUNTIME_LOCK
    deadline = time.monotonic() + wait_s
    while True:
        lay.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(lay.runtime_dir, 0o700)
        try:
            held = try_acquire(lock_path)
        except FileNotFoundError:  # removed between our mkdir and our open
            held = None
        if held is not None:
            return held
        if time.monotonic() >= deadline:
            raise LockHeld(lock_path, read_holder(lock_path))
        time.sleep(HOLD_RETRY_S)


def remove(lay: Layout, held: HeldLock) -> None:
    """On a clean stop: the sockets, the lock, then the dir itself if nothing else is in it."""
    for endpoint in (lay.request_endpoint, lay.event_endpoint):
        if endpoint.startswith("ipc://"):
            sock = Path(endpoint[len("ipc://"):])
            if sock.parent == lay.runtime_dir:
                sock.unlink(missing_ok=True)
    held.release(unlink=True)
    try:
        lay.runtime_dir.rmdir()
    except OSError as exc:
        logger.warning("runtime dir %s not removed: %s", lay.runtime_dir, exc.strerror)


def sweep_stale(own: Path) -> list[Path]:
    """Remove this user's runtime dirs whose daemon is gone; returns the removed dirs."""
    removed = []
    base = runtime_base()
    try:
        candidates = list(base.glob(f"orbitdock-{os.getuid()}-*"))
    except OSError:
        return removed
    for path in candidates:
        if path == own:
            continue
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        lock_path = path / RUNTIME_LOCK
        if not lock_path.exists():
            continue
        try:
            held = try_acquire(lock_path, write_pid=False)
        except OSError:
            continue
        if held is None:  # its daemon is alive
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            held.release()
        removed.append(path)
        logger.info("removed the stale runtime dir %s (its orbitdockd, pid %s, is gone)",
                    path, held.previous_pid or "unknown")
    return removed
