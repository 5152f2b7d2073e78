"""Exclusive ``flock`` locks held for a daemon's whole life.

The kernel releases a flock when its holder dies, even by ``kill -9``, so a lock
that can be taken is never held by a live process: no pid guessing, no timeouts.
The holder writes its pid into the file so that a refused second daemon can name
it, and so that the next holder can say whose lock it took over.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path


class LockHeld(Exception):
    """Another live process holds the lock."""

    def __init__(self, path: Path, holder_pid: int | None):
        self.path, self.holder_pid = path, holder_pid
        super().__init__(f"{path} is locked by pid {holder_pid or 'unknown'}")


@dataclass
class HeldLock:
    path: Path
    fd: int
    previous_pid: int | None  # a pid left in the file: its holder died without releasing

    def release(self, *, unlink: bool = False) -> None:
        """Empty the file (a clean stop leaves no pid behind) or remove it, then unlock."""
        if self.fd < 0:
            return
        try:
            if unlink:
                self.path.unlink(missing_ok=True)
            else:
                os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = -1


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def read_holder(path: Path) -> int | None:
    """The pid written in a lock file, without locking it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_pid(fd)
    finally:
        os.close(fd)


def try_acquire(path: Path, *, write_pid: bool = True) -> HeldLock | None:
    """Take the lock on ``path`` (created 0600) or return None when a live process holds it.

    Retries when the file was removed between our open and our lock (whoever removed
    it held the lock), so the lock we return is always on the file the path names.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        previous = _read_pid(fd)
        if write_pid:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fchmod(fd, 0o600)
        return HeldLock(path, fd, previous)


def acquire(path: Path) -> HeldLock:
    """Like ``try_acquire`` but raises ``LockHeld`` naming the holder's pid."""
    held = try_acquire(path)
    if held is None:
        raise LockHeld(path, read_holder(path))
    return held
