"""The messages between a session's connector, its sink and ``actors.codex_pool``.

They live in the core (not in actors/) so this package never imports the actors
layer. They are plain data and import nothing of the codex package: the sink
(``orbitdock.codex.sink``) owns its ops (``SinkOp``), and names are only types here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from orbitdock.protocol.models import ModelOption

ThreadSink = Any  # orbitdock.codex.sink.ThreadSink (which imports this module)
SinkOp = Any  # orbitdock.codex.sink.SinkOp
ModelsReply = Callable[[list[ModelOption] | None, str | None], None]  # (models, error)


@dataclass(slots=True)
class Attach:  # host this session: thread/start, or thread/resume if it has a thread id
    sink: ThreadSink


@dataclass(slots=True)
class Command:  # run one connector command on the session's current process
    op: SinkOp


@dataclass(slots=True)
class Detach:  # the session stopped: unsubscribe its thread, free its slot
    sink: ThreadSink


@dataclass(slots=True)
class ThreadBound:  # from a sink: its thread is loaded in its process (resume affinity)
    sink: ThreadSink
    thread_id: str


@dataclass(slots=True)
class Release:  # from a sink that failed for good: free its slot
    sink: ThreadSink


@dataclass(slots=True)
class ListModels:
    """``reply(models, None)`` or ``reply(None, error)``, called from a reader thread."""

    reply: ModelsReply


@dataclass(slots=True)
class Describe:
    """With ``ask`` and no reply: the process rows (``pool_report.process_rows``), for
    tests. With ``reply``: the whole ``pool_report`` passed to it on the pool's thread."""

    reply: Callable[[dict[str, Any]], None] | None = None
