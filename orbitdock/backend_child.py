"""What the threads owning a backend child process share (a codex app-server's reader,
a claude session's driver): the pipe that wakes them, and how a child's exit is told.

``WakePipe``: a self-pipe that wakes a thread blocked in ``select`` on its child's
stdout. The thread that owns a backend process (a codex app-server's reader, a claude
session's driver) sleeps in ``select`` on the child's stdout; other threads queue
work for it and call ``wake``. The pipe's write end is non-blocking, so a pipe full
of wake-ups costs nothing (the owner will look anyway). ``close`` may race with a
late ``wake`` from another thread: a lock guards only the two descriptors, so a
closed number is never written to after the OS has reused it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterable


class WakePipe:
    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._lock = threading.Lock()  # guards only the fds against use after close

    def fileno(self) -> int:
        """The read end, for ``select`` (-1 once closed)."""
        return self._r

    def wake(self) -> None:
        """From any thread."""
        with self._lock:
            if self._w >= 0:
                try:
                    os.write(self._w, b"x")
                except BlockingIOError:  # already full of wake-ups: the owner will look
                    pass

    def drain(self) -> None:
        """By the owner, when ``select`` says the pipe is readable."""
        os.read(self._r, 4096)

    def close(self) -> None:
        """Idempotent."""
        with self._lock:
            if self._w >= 0:
                os.close(self._r)
                os.close(self._w)
                self._r = self._w = -1


def describe_exit(code: int | None, stderr_tail: Iterable[str], what: str = "") -> str | None:
    """How the child ended, for logs and ``last_error``: killed by which signal, or its
    exit code with its last stderr lines when it failed; None while it runs."""
    prefix = f"{what} " if what else ""
    if code is None:
        return None
    if code < 0:
        try:
            return f"{prefix}killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"{prefix}killed by signal {-code}"
    tail = " | ".join(list(stderr_tail)[-3:]) if code else ""
    return f"{prefix}exited with code {code}" + (f": {tail}" if tail else "")
