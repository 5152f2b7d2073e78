"""A self-pipe that wakes a thread blocked in ``select`` on its child's stdout.

The thread that owns a backend process (a codex app-server's reader, a claude
session's driver) sleeps in ``select`` on the child's stdout; other threads queue
work for it and call ``wake``. The pipe's write end is non-blocking, so a pipe full
of wake-ups costs nothing (the owner will look anyway). ``close`` may race with a
late ``wake`` from another thread: a lock guards only the two descriptors, so a
closed number is never written to after the OS has reused it.
"""

from __future__ import annotations

import os
import threading


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
