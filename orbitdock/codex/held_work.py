"""HeldWork: recovered sessions' commands, held per process while it still resumes.

After a crash the pool resumes a dead process's sessions a few to a process; a session
resumed first would start its next turn at once, on the CPU the process's remaining
resumes need. So the pool holds those sessions' commands here, in arrival order, until
the process's last resume is done or ``hold_s`` has passed, whichever comes first.

Owned by the codex pool's actor thread (``actors.codex_pool``). The one other thread is
each holding process's timer, which only calls ``on_expiry(proc, timer)``: the pool
turns that into a message to itself and asks ``is_current`` before it acts, since a
timer cancelled too late still fires.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)
O = TypeVar("O")


class HeldWork(Generic[P, O]):
    """Ops held per process, each process's hold bounded by its own timer."""

    def __init__(self, hold_s: float, on_expiry: Callable[[P, threading.Timer], None]):
        self.hold_s = hold_s  # 0 turns holding off
        self._on_expiry = on_expiry
        self._ops: dict[P, list[O]] = {}
        self._timers: dict[P, threading.Timer] = {}

    def hold(self, proc: P, op: O) -> None:
        """Keep ``op`` for ``proc``; the first op held starts the process's timer."""
        ops = self._ops.setdefault(proc, [])
        ops.append(op)
        if len(ops) == 1:
            timer = threading.Timer(self.hold_s, lambda: self._on_expiry(proc, timer))
            timer.daemon = True
            self._timers[proc] = timer
            timer.start()

    def is_current(self, proc: P, timer: threading.Timer) -> bool:
        """Whether ``timer`` still bounds ``proc``'s hold (not an earlier, cancelled one)."""
        return self._timers.get(proc) is timer

    def take(self, proc: P) -> list[O]:
        """End ``proc``'s hold: its ops, oldest first (none if it holds nothing)."""
        timer = self._timers.pop(proc, None)
        if timer is not None:
            timer.cancel()
        return self._ops.pop(proc, [])

    def holding(self) -> list[P]:
        return list(self._ops)
