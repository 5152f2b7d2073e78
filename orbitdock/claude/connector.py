"""The connector of a passive Claude session, and the messages of ``actors.claude_hooks``.

A Claude session started in a terminal is driven by its hooks, not by orbitdock:
prompts are typed there, so forwarded commands (send, steer, interrupt) are
``unsupported``. What orbitdock can do is answer a ``PermissionRequest`` hook that
waits for a decision: ``respond`` hands the decision to the hooks actor, which
answers the forwarder's held request and reports the outcome through ``emit``
(``CommandResult``: ok, or ``stale_approval`` when claude no longer waits).

The messages live in the core so this package never imports the actors layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from orbitdock.connectors.base import Connector, ConnectorError, Emit
from orbitdock.protocol.errors import ErrorCode

Done = Callable[[Any], None]  # hands a reply back for the forwarder's request


@dataclass(slots=True)
class HookArrived:
    """A forwarder's ``claude_hook`` request (``done`` answers it, from any thread)."""

    request: Any  # orbitdock.protocol.routing.ClientRequest
    done: Done


@dataclass(slots=True)
class Decide:
    """A client decided a Claude approval: answer the forwarder that waits for it."""

    session_id: str
    key: Any
    decision: str | None
    answers: dict[str, list[str]] | None
    token: Any
    emit: Emit


@dataclass(slots=True)
class PermissionExpired:
    """``claude.permission_wait_s`` passed with no decision for this held hook."""

    session_id: str
    key: Any
    event_id: str


@dataclass(slots=True)
class Settle:
    """``claude.transcript_settle_ms`` after a PreToolUse: read the transcript again and
    show the tools it still lacks."""

    session_id: str


@dataclass(slots=True)
class FlushWaiting:
    """The daemon stops: send every hook event still waiting for its transcript now, in
    the order it came (its forwarder was answered; kept back, it would be lost)."""


@dataclass(slots=True)
class ReplaySpool:
    """Replay the spooled events (at start; and when a forwarder found some)."""


class ClaudeHookConnector(Connector):
    provider = "claude"

    def __init__(self, hooks_actor: Callable[[], Any], session_id: str):
        """``hooks_actor()``: the hooks actor's ref once it runs (restored sessions get
        their connector before it starts)."""
        self._hooks_actor = hooks_actor
        self.session_id = session_id
        self._emit: Emit | None = None

    def start(self, emit: Emit, *, resume_thread_id: str | None = None,
              fork_thread_id: str | None = None) -> None:
        self._emit = emit

    def call(self, operation: str, token: Any, **fields: Any) -> None:
        raise ConnectorError(ErrorCode.UNSUPPORTED,
                             f"claude sessions started in a terminal take {operation} there: "
                             "orbitdock only watches them and answers their approvals")

    def respond(self, token: Any, key: Any, *, decision: str | None,
                answers: dict[str, list[str]] | None) -> None:
        actor = self._hooks_actor()
        if actor is None or self._emit is None:
            raise ConnectorError(ErrorCode.UNAVAILABLE, "claude hooks are not running")
        actor.tell(Decide(self.session_id, key, decision, answers, token, self._emit))

    def stop(self) -> None:
        self._emit = None
