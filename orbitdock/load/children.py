"""Starting the tool's helper processes: spawned (no forked zmq contexts), each with a
pipe back to its parent, and optionally each in a session of its own.

Why the session matters: Linux's autogroup scheduler (on by default on most distributions)
shares the CPU between sessions first and weighs processes by nice value only inside
one. By default the helpers (the load model, the subscribers) run in the tool's session,
which is also the daemon's, so under saturation they compete with the daemon and its
app-servers on equal terms. In real use the model is remote and the clients run in
other terminals or in an app, that is, in sessions of their own: ``own_session`` gives
that arrangement. Measured: it made no difference to recovery from a killed app-server
(docs/RELIABILITY.md, "Are the tool's own processes in the way?").
"""

from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any, Callable

SPAWN = mp.get_context("spawn")


def start_child(target: Callable[..., None], *args: Any, daemon: bool = True,
                own_session: bool = False) -> tuple[Any, Any]:
    """Start ``target(*args, conn)`` in a spawned process; returns (process, parent end)."""
    parent, child = SPAWN.Pipe()
    proc = SPAWN.Process(target=_enter, args=(target, own_session, *args, child),
                         daemon=daemon)
    proc.start()
    child.close()
    return proc, parent


def _enter(target: Callable[..., None], own_session: bool, *args: Any) -> None:
    if own_session:
        os.setsid()  # a new session, so a new autogroup (see the module docstring)
    target(*args)
