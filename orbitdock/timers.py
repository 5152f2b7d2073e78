"""The one timer of the daemon: tell this actor this message after N seconds.

``ActorTimer`` is one thread serving every one-shot of one actor from a heap (a thread
per timer costs a thread start per batch, per hold, per restart backoff). The owner
(the actor) creates it in ``on_start`` and stops it when it stops; stopping drops
what is still pending.

The timer's thread owns nothing but the schedule: it never reads or writes the actor's
state, it only ``tell``s the actor the message it was given. So a message the actor no
longer wants (cancelled too late, or made stale by what happened meanwhile) may still
arrive, and the actor decides on its own thread whether it is current.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Hashable
from typing import Any

import pykka

from orbitdock.threads import long_lived

STOP_JOIN_S = 5.0  # the thread wakes at once on stop; this only bounds the join


class Pending:
    """A scheduled message; ``ActorTimer.cancel`` it before it is due to drop it."""

    __slots__ = ("deadline", "message", "key", "cancelled")

    def __init__(self, deadline: float, message: Any, key: Hashable | None) -> None:
        self.deadline, self.message, self.key, self.cancelled = deadline, message, key, False


class ActorTimer:
    """One thread that tells one actor scheduled messages at their deadlines.

    Owns nothing but the schedule (the heap, under its own lock): it never touches the
    actor's state and only ``tell``s.
    """

    def __init__(self, ref: pykka.ActorRef, name: str) -> None:
        self._ref = ref
        self._heap: list[tuple[float, int, Pending]] = []
        self._keyed: dict[Hashable, Pending] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        # Long-lived: if it dies, its actor's timers stop; the daemon ends loudly instead.
        self._thread = long_lived(threading.Thread(target=self._run, name=name, daemon=True))
        self._thread.start()

    def after(self, delay: float, message: Any, *, key: Hashable | None = None) -> Pending:
        """Tell ``message`` in ``delay`` seconds.

        ``key``: at most one pending message per key; while one is pending, another
        ``after`` with its key changes nothing and returns the pending one (the earlier
        deadline serves both). The key is free again once its message is told.
        """
        with self._cond:
            if key is not None and key in self._keyed:
                return self._keyed[key]
            pending = Pending(time.monotonic() + max(0.0, delay), message, key)
            heapq.heappush(self._heap, (pending.deadline, next(self._seq), pending))
            if key is not None:
                self._keyed[key] = pending
            self._cond.notify()
            return pending

    def cancel(self, pending: Pending | None) -> None:
        """Drop ``pending`` if it is not told yet (if it is, the actor gets it anyway)."""
        if pending is None:
            return
        with self._cond:
            pending.cancelled = True
            if pending.key is not None and self._keyed.get(pending.key) is pending:
                del self._keyed[pending.key]

    def stop(self) -> None:
        """Drop everything pending and end the thread (joined unless called from it)."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._keyed.clear()
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(STOP_JOIN_S)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap
                                             or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                pending = heapq.heappop(self._heap)[2]
                if pending.cancelled:
                    continue
                if pending.key is not None:
                    del self._keyed[pending.key]
            try:
                self._ref.tell(pending.message)
            except pykka.ActorDeadError:
                return  # the actor is gone: nobody is left to tell
