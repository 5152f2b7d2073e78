"""The messages between a session's connector, its sink and ``actors.codex_pool``.

They live in the core (not in actors/) so this package never imports the actors
layer. ``SinkOp`` is also what the pool posts to a process: it runs on that process's
reader thread, which owns the sink while it hosts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the sink imports these messages; only the type goes the other way
    from orbitdock.codex.appserver import AppServerProcess
    from orbitdock.codex.pool_ops import ModelsReply
    from orbitdock.codex.sink import ThreadSink


@dataclass(slots=True)
class Attach:  # host this session: thread/start, or thread/resume if it has a thread id
    sink: "ThreadSink"


@dataclass(slots=True)
class Command:  # run one connector command on the session's current process
    op: "SinkOp"


@dataclass(slots=True)
class Detach:  # the session stopped: unsubscribe its thread, free its slot
    sink: "ThreadSink"


@dataclass(slots=True)
class ThreadBound:  # from a sink: its thread is loaded in its process (resume affinity)
    sink: "ThreadSink"
    thread_id: str


@dataclass(slots=True)
class Release:  # from a sink that failed for good: free its slot
    sink: "ThreadSink"


@dataclass(slots=True)
class ListModels:
    """``reply(models, None)`` or ``reply(None, error)``, called from a reader thread."""

    reply: "ModelsReply"


@dataclass(slots=True)
class Describe:
    """With ``ask`` and no reply: the process rows (``pool_report.process_rows``), for
    tests. With ``reply``: the whole ``pool_report`` passed to it on the pool's thread."""

    reply: Callable[[dict[str, Any]], None] | None = None


@dataclass(slots=True)
class SinkOp:
    """One connector command, run by the sink on its hosting reader thread."""

    sink: "ThreadSink"
    name: str  # a ThreadSink.cmd_<name> method
    token: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def run(self, ctx: AppServerProcess) -> None:
        self.sink.command(ctx, self)

    def fail(self, reason: str) -> None:
        self.sink.fail_op(self, "unavailable", reason)
