"""Restart policy for crashed actors: exponential backoff, give up when flapping.

Pure and clock-injected (supervisor's and circus's flapping rules): at most
``max_restarts`` crashes within ``window_s``; the n-th crash inside the window
waits ``backoff_s * 2**(n-1)``.
"""

from __future__ import annotations

from collections import deque


class RestartPolicy:
    def __init__(self, max_restarts: int, window_s: float, backoff_s: float):
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.backoff_s = backoff_s
        self._crashes: deque[float] = deque()

    def next_delay(self, now: float) -> float | None:
        """Record a crash at ``now``; the delay before restarting, or None to give up."""
        while self._crashes and now - self._crashes[0] > self.window_s:
            self._crashes.popleft()
        self._crashes.append(now)
        if len(self._crashes) > self.max_restarts:
            return None
        return self.backoff_s * (2 ** (len(self._crashes) - 1))
