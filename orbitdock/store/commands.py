"""Write commands sent (by ``tell``) to the persistence actor.

Commands are plain data. The actor batches them (by count or interval) into one
transaction; each runs inside its own SAVEPOINT so a failing command is logged
and skipped without losing the rest of the batch. Commands with a ``key``
coalesce inside a batch: a later command with the same key replaces (for
messages) or merges into (for sessions) the pending one, so a streamed message
is written once per batch, not once per delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SaveSession:
    """Upsert the sessions row; ``fields`` are column -> value (merged when coalesced)."""

    session_id: str
    fields: dict[str, Any]

    @property
    def key(self) -> tuple:
        return ("session", self.session_id)


@dataclass(slots=True)
class SaveMessage:
    """Upsert one message by (session_id, seq); ``message`` is a protocol Message."""

    session_id: str
    message: Any

    @property
    def key(self) -> tuple:
        return ("message", self.session_id, self.message.seq)


@dataclass(slots=True)
class SaveApproval:
    """Insert an approval request into the history (``request`` is a protocol ApprovalRequest)."""

    session_id: str
    request: Any
    key = None


@dataclass(slots=True)
class DecideApproval:
    session_id: str
    approval_id: str
    decision: str  # accept | accept_for_session | decline | cancel | answered | expired | withdrawn
    decided_at: float
    key = None


@dataclass(slots=True)
class SaveTurn:
    """Upsert a turn row: status, started_at, ended_at, plan (JSON), diff, error."""

    session_id: str
    turn_id: str
    fields: dict[str, Any]

    @property
    def key(self) -> tuple:
        return ("turn", self.session_id, self.turn_id)


@dataclass(slots=True)
class SaveTokenUsage:
    session_id: str
    usage: dict[str, int]  # input/output/cached/reasoning/total tokens, context_window
    observed_at: float
    key = None


@dataclass(slots=True)
class SetConfigValue:
    key_name: str
    value: str

    @property
    def key(self) -> tuple:
        return ("config", self.key_name)


@dataclass(slots=True)
class SaveRolloutOffset:
    """Where the watcher has read a rollout file up to (bytes consumed, complete lines only)."""

    path: str
    offset: int
    session_id: str | None = None
    size: int | None = None
    mtime: float | None = None
    ignore_existing: bool = False

    @property
    def key(self) -> tuple:
        return ("rollout", self.path)


@dataclass(slots=True)
class DropMessagesFrom:
    """A rollback: delete the session's messages from ``seq`` on and the turns ``turn_ids``.

    Sent inside an ``Atomic`` so no later SaveMessage of a reused seq coalesces into a
    write queued before the deletion."""

    session_id: str
    seq: int
    turn_ids: list[str] = field(default_factory=list)
    key = None


@dataclass(slots=True)
class CopyMessages:
    """A fork: copy ``source``'s messages up to ``upto_seq`` into ``target`` (ids renamed)."""

    source: str
    target: str
    upto_seq: int
    key = None

    @property
    def session_id(self) -> str:  # for log context
        return self.target


@dataclass(slots=True)
class Atomic:
    """Commands committed all-or-nothing, never split across batches.

    The watcher sends the rows derived from some lines together with the new
    file offset as one Atomic, so a crash can neither lose nor duplicate lines.
    """

    commands: list[Any] = field(default_factory=list)
    key = None


Command = (
    SaveSession | SaveMessage | SaveApproval | DecideApproval | SaveTurn | SaveTokenUsage
    | SetConfigValue | SaveRolloutOffset | DropMessagesFrom | CopyMessages | Atomic
)
