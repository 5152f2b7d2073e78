"""HeldWork: recovered sessions' commands, held per process while it still resumes.

After a crash the pool resumes a dead process's sessions a few to a process; a session
resumed first would start its next turn at once, on the CPU the process's remaining
resumes need. So the pool holds those sessions' commands here, in arrival order, until
the process's last resume is done or ``hold_s`` has passed, whichever comes first.

Owned by the codex pool's actor thread (``actors.codex_pool``). Each hold's end is a
one-shot on the pool's ``ActorTimer``, whose thread only tells the pool the message
``expiry(proc, hold_id)`` makes; the pool asks ``is_current`` before it acts, since a
hold ended too late for its cancel still has its message told.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from orbitdock.timers import ActorTimer, Pending

P = TypeVar("P", bound=Hashable)
O = TypeVar("O")


class HeldWork(Generic[P, O]):
    """Ops held per process, each process's hold bounded by a one-shot on ``timer``.

    ``expiry(proc, hold_id)``: the message the timer tells the owner when a hold ends.
    """

    def __init__(self, hold_s: float, timer: ActorTimer, expiry: Callable[[P, int], Any]):
        self.hold_s = hold_s  # 0 turns holding off
        self._timer = timer
        self._expiry = expiry
        self._ops: dict[P, list[O]] = {}
        self._holds: dict[P, tuple[int, Pending]] = {}
        self._ids = itertools.count(1)

    def hold(self, proc: P, op: O) -> None:
        """Keep ``op`` for ``proc``; the first op held starts the process's hold."""
        ops = self._ops.setdefault(proc, [])
        ops.append(op)
        if len(ops) == 1:
            hold_id = next(self._ids)
            self._holds[proc] = (hold_id, self._timer.after(self.hold_s,
                                                            self._expiry(proc, hold_id)))

    def is_current(self, proc: P, hold_id: int) -> bool:
        """Whether ``hold_id`` is ``proc``'s hold still (not an earlier, ended one)."""
        hold = self._holds.get(proc)
        return hold is not None and hold[0] == hold_id

    def take(self, proc: P) -> list[O]:
        """End ``proc``'s hold: its ops, oldest first (none if it holds nothing)."""
        hold = self._holds.pop(proc, None)
        if hold is not None:
            self._timer.cancel(hold[1])
        return self._ops.pop(proc, [])

    def holding(self) -> list[P]:
        return list(self._ops)
