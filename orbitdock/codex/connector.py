"""CodexConnector: a direct session driven through a pooled ``codex app-server``.

Two objects per session, split by thread:
- ``CodexConnector`` (here) is what the session actor calls (on its own thread).
  It holds no backend state: each call becomes a ``SinkOp`` told to the pool
  actor, which forwards it to the app-server process currently hosting the session.
- ``ThreadSink`` (``orbitdock.codex.sink``) is that session's backend state, owned
  by the reader thread of its hosting process (by the pool while a crashed process
  is being replaced).

Going through the pool (not straight to a process) is what makes a crash
race-free: the pool is the only poster to a process, so after the process exits
it can collect every op that never ran and re-post it to the replacement.
"""

from __future__ import annotations

from typing import Any

import pykka

from orbitdock.codex.pool_messages import Attach, Command, Detach
from orbitdock.codex.sink import SinkOp, ThreadSink
from orbitdock.config import CodexConfig
from orbitdock.connectors.base import Connector, ConnectorError, Emit
from orbitdock.protocol.errors import ErrorCode


class CodexConnector(Connector):
    """The session actor's handle on a pooled codex thread (see module docstring)."""

    provider = "codex"

    def __init__(self, pool: pykka.ActorRef, *, cwd: str, model: str | None = None,
                 approval_policy: str | None = None, sandbox_mode: str | None = None,
                 resume_thread_id: str | None = None, session_id: str | None = None,
                 config: CodexConfig | None = None, archived: bool = False,
                 effort: str | None = None):
        self._pool = pool
        self._settings = dict(cwd=cwd, model=model, approval_policy=approval_policy,
                              sandbox_mode=sandbox_mode, effort=effort)
        self._resume_thread_id = resume_thread_id
        self._archived = archived
        self._session_id = session_id
        self._config = config or CodexConfig()
        self._sink: ThreadSink | None = None

    def start(self, emit: Emit, *, resume_thread_id: str | None = None,
              fork_thread_id: str | None = None) -> None:
        if self._sink is not None:
            raise ConnectorError(ErrorCode.INVALID_STATE, "codex connector already started")
        self._sink = ThreadSink(emit, **self._settings,
                                resume_thread_id=resume_thread_id or self._resume_thread_id,
                                fork_thread_id=fork_thread_id, archived=self._archived,
                                config=self._config, pool=self._pool, session_id=self._session_id)
        self._tell(Attach(self._sink))

    def call(self, operation: str, token: Any, **fields: Any) -> None:
        """Any operation the sink has a ``cmd_<operation>`` for runs there, on the reader
        thread of the process hosting the session."""
        if not callable(getattr(ThreadSink, f"cmd_{operation}", None)):
            raise ConnectorError(ErrorCode.UNSUPPORTED, f"codex sessions do not support {operation}")
        self._op(operation, token, **fields)

    def respond(self, token: Any, key: Any, *, decision: str | None,
                answers: dict[str, list[str]] | None) -> None:
        self._op("respond", token, key=key, decision=decision, answers=answers)

    def rename(self, token: Any, name: str | None) -> None:
        self._op("rename", token, name=name)

    def set_config(self, token: Any, *, approval_policy: str | None,
                   sandbox_mode: str | None, model: str | None) -> None:
        self._op("set_config", token, approval_policy=approval_policy,
                 sandbox_mode=sandbox_mode, model=model)

    def stop(self) -> None:
        if self._sink is not None:
            try:
                self._pool.tell(Detach(self._sink))
            except pykka.ActorDeadError:  # pool already shut down: nothing to release
                pass

    def _op(self, command: str, token: Any, /, **kwargs: Any) -> None:
        if self._sink is None:
            raise ConnectorError(ErrorCode.INVALID_STATE, "codex connector not started")
        self._tell(Command(SinkOp(self._sink, command, token, kwargs)))

    def _tell(self, message: Any) -> None:
        try:
            self._pool.tell(message)
        except pykka.ActorDeadError as exc:
            raise ConnectorError(ErrorCode.UNAVAILABLE, "the codex pool is not running") from exc
