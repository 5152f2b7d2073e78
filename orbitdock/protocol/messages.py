"""Every wire message, one typed definition each (requests, replies, events).

A frame is a msgpack map: ``{"v": <protocol version>, "type": <name>, "id":
<request id or nil>, ...fields}``. Requests come in on the ROUTER; a reply
echoes the request's ``id``; events go out on the PUB and every session event
carries the session's ``rev`` (gap-free per session) and ``ts`` (when the
backend produced it). Names follow the upstream OrbitDock protocol.

Each request declares who answers it (``scope``, see ``orbitdock.protocol.routing``),
the reply it gets (``reply``) and the error codes it may get besides the ones any
frame may (``errors``). A session request a provider forwards unchanged names the
provider operation in ``forward``: the session actor hands its fields to the
connector, which needs a method of that name, and answers ``reply`` (``Ack`` with
the backend's result). ``docs/PROTOCOL.md`` is generated from these classes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from orbitdock import PROTOCOL_VERSION
from orbitdock.protocol.errors import ErrorCode as E
from orbitdock.protocol.scopes import Scope
from orbitdock.protocol.models import (
    ApprovalRequest,
    Message,
    MessageChanges,
    ModelOption,
    SessionState,
    SessionSummary,
    StateChanges,
)

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
SessionId = msgspec.Meta(pattern=SESSION_ID_PATTERN)


class Wire(msgspec.Struct, tag_field="type", kw_only=True):
    v: int = PROTOCOL_VERSION
    id: str | None = None
    kind: ClassVar[str] = "event"  # "request" | "reply" | "event"

Sid = Annotated[str, SessionId]


# ------------------------------------------------------------------ replies
class Reply(Wire, kw_only=True):
    kind: ClassVar[str] = "reply"


class Ack(Reply, tag="ack", kw_only=True):
    session_id: str | None = None
    result: dict[str, Any] = {}


class Error(Reply, tag="error", kw_only=True):
    code: str
    message: str
    session_id: str | None = None


class ServerStatus(Reply, tag="server_status", kw_only=True):
    epoch: str
    version: str
    pid: int
    uptime_s: float
    actors: int
    sessions: int
    sessions_active: int
    sessions_needing_attention: int
    subscribers: int
    frames_rejected: int
    rss_bytes: int = 0


class SessionsList(Reply, tag="sessions_list", kw_only=True):
    epoch: str
    revision: int  # list revision: list-topic events above it follow
    sessions: list[SessionSummary]


class SessionSnapshot(Reply, tag="session_snapshot", kw_only=True):
    epoch: str
    session: SessionState


class MessagesPage(Reply, tag="messages_page", kw_only=True):
    session_id: str
    messages: list[Message]
    has_more_before: bool


class ApprovalDecisionResult(Reply, tag="approval_decision_result", kw_only=True):
    session_id: str
    approval_id: str
    outcome: str  # applied


class ModelsList(Reply, tag="models_list", kw_only=True):
    models: list[ModelOption]


class RolloutsReport(Reply, tag="rollouts_report", kw_only=True):
    """The watcher's status (files followed, offsets, lag, errors) or an import's counters."""

    report: dict[str, Any]


class CodexStatus(Reply, tag="codex_status", kw_only=True):
    """``orbitdock.codex.pool_report``'s report: binary, processes, recoveries, login shell."""

    report: dict[str, Any]


# ----------------------------------------------------------------- requests
SESSION_ERRORS = (E.NOT_FOUND, E.INVALID_STATE, E.BACKEND_ERROR, E.UNAVAILABLE, E.TIMEOUT)
APPROVAL_ERRORS = (E.NOT_FOUND, E.STALE_APPROVAL, E.INVALID_FIELD, E.BACKEND_ERROR,
                   E.UNAVAILABLE, E.TIMEOUT)


class Request(Wire, kw_only=True):
    kind: ClassVar[str] = "request"
    scope: ClassVar[Scope] = Scope.GATEWAY
    reply: ClassVar[type[Reply]] = Ack
    errors: ClassVar[tuple[E, ...]] = ()
    forward: ClassVar[str | None] = None  # provider operation this session request is
    needs_active: ClassVar[bool] = True  # forwarded only while the session is active


class GetStatus(Request, tag="get_status", kw_only=True):
    reply: ClassVar[type[Reply]] = ServerStatus


class SubscribeList(Request, tag="subscribe_list", kw_only=True):
    reply: ClassVar[type[Reply]] = SessionsList


class SubscribeSession(Request, tag="subscribe_session", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    reply: ClassVar[type[Reply]] = SessionSnapshot
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND,)
    session_id: Sid


class GetMessages(Request, tag="get_messages", kw_only=True):
    scope: ClassVar[Scope] = Scope.PERSISTENCE
    reply: ClassVar[type[Reply]] = MessagesPage
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND,)
    session_id: Sid
    before_seq: int | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class CreateSession(Request, tag="create_session", kw_only=True):
    scope: ClassVar[Scope] = Scope.SUPERVISOR
    reply: ClassVar[type[Reply]] = SessionSnapshot
    errors: ClassVar[tuple[E, ...]] = (E.INVALID_FIELD, E.INVALID_ARGUMENT, E.UNAVAILABLE,
                                       E.BACKEND_ERROR)
    provider: str
    cwd: str
    model: str | None = None
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    name: str | None = None
    script: list[dict[str, Any]] | None = None  # for the scripted provider only


class SendMessage(Request, tag="send_message", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "send_message"
    session_id: Sid
    content: Annotated[str, msgspec.Meta(min_length=1)]
    model: str | None = None  # this turn on (upstream's per-turn override; it sticks)
    effort: str | None = None  # reasoning effort, likewise


class SteerTurn(Request, tag="steer_turn", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "steer"
    session_id: Sid
    content: Annotated[str, msgspec.Meta(min_length=1)]


class ApproveTool(Request, tag="approve_tool", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    reply: ClassVar[type[Reply]] = ApprovalDecisionResult
    errors: ClassVar[tuple[E, ...]] = APPROVAL_ERRORS + (E.WRONG_VERB,)
    approval_id: str
    decision: str  # accept | accept_for_session | decline | cancel (upstream names accepted too)
    message: str | None = None


class AnswerQuestion(Request, tag="answer_question", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    reply: ClassVar[type[Reply]] = ApprovalDecisionResult
    errors: ClassVar[tuple[E, ...]] = APPROVAL_ERRORS + (E.WRONG_VERB,)
    approval_id: str
    answers: dict[str, list[str]]


class InterruptSession(Request, tag="interrupt_session", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "interrupt"
    session_id: Sid


class EndSession(Request, tag="end_session", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND,)
    session_id: Sid


class ResumeSession(Request, tag="resume_session", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    reply: ClassVar[type[Reply]] = SessionSnapshot
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND, E.INVALID_STATE, E.UNAVAILABLE)
    session_id: Sid


class RenameSession(Request, tag="rename_session", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND,)
    session_id: Sid
    name: str | None


class UpdateSessionConfig(Request, tag="update_session_config", kw_only=True):
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND, E.INVALID_ARGUMENT)
    session_id: Sid
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    model: str | None = None


class ListModels(Request, tag="list_models", kw_only=True):
    scope: ClassVar[Scope] = Scope.PROVIDER
    reply: ClassVar[type[Reply]] = ModelsList
    errors: ClassVar[tuple[E, ...]] = (E.INVALID_ARGUMENT, E.UNAVAILABLE, E.BACKEND_ERROR,
                                       E.UNSUPPORTED)
    provider: str = "codex"


class GetCodexStatus(Request, tag="get_codex_status", kw_only=True):
    """The codex app-servers behind direct sessions: processes, recoveries, login shell."""

    scope: ClassVar[Scope] = Scope.PROVIDER
    reply: ClassVar[type[Reply]] = CodexStatus
    errors: ClassVar[tuple[E, ...]] = (E.UNAVAILABLE,)
    provider: ClassVar[str] = "codex"


class RolloutsStatus(Request, tag="rollouts_status", kw_only=True):
    scope: ClassVar[Scope] = Scope.WATCHER
    reply: ClassVar[type[Reply]] = RolloutsReport
    errors: ClassVar[tuple[E, ...]] = (E.UNAVAILABLE,)


class ImportRollouts(Request, tag="import_rollouts", kw_only=True):
    """Import older rollouts not followed live (mtime >= since); resumable."""

    scope: ClassVar[Scope] = Scope.WATCHER
    reply: ClassVar[type[Reply]] = RolloutsReport
    errors: ClassVar[tuple[E, ...]] = (E.UNAVAILABLE,)
    since: float | None = None


# ------------------------------------------------------------------- events
class Event(Wire, kw_only=True):
    kind: ClassVar[str] = "event"


class SessionEvent(Event, kw_only=True):
    session_id: str
    rev: int
    ts: float = 0.0


class SessionDelta(SessionEvent, tag="session_delta", kw_only=True):
    changes: StateChanges


class MessageAppended(SessionEvent, tag="message_appended", kw_only=True):
    message: Message


class MessageUpdated(SessionEvent, tag="message_updated", kw_only=True):
    message_id: str
    changes: MessageChanges


class ApprovalRequested(SessionEvent, tag="approval_requested", kw_only=True):
    request: ApprovalRequest


class ApprovalResolved(SessionEvent, tag="approval_resolved", kw_only=True):
    approval_id: str
    decision: str | None = None


class SessionEnded(SessionEvent, tag="session_ended", kw_only=True):
    reason: str


class SessionReset(SessionEvent, tag="session_reset", kw_only=True):
    """The session's actor restarted: subscribers must take a fresh snapshot."""

    reason: str


class SessionTail(Event, tag="session_tail", kw_only=True):
    """The latest revision of a recently active session, repeated on heartbeats.

    Not a revisioned event: it lets a subscriber whose queue dropped the *last*
    events of a burst notice the loss (a gap is otherwise only seen when a later
    event arrives).
    """

    session_id: str
    rev: int


class SessionCreated(Event, tag="session_created", kw_only=True):
    """List topic: insert-or-update of one summary (upstream's upsert semantics)."""

    epoch: str
    lrev: int
    session: SessionSummary


class Heartbeat(Event, tag="heartbeat", kw_only=True):
    epoch: str
    seq: int
    ts: float


class Welcome(Event, tag="welcome", kw_only=True):
    """Sent on a topic when the XPUB sees a subscription to it: the subscription is live."""

    topic: str
    epoch: str = ""  # the daemon's epoch (empty from a gateway that predates the field)


def _concrete(base: type) -> tuple[type, ...]:
    """Every tagged subclass of ``base``, in definition order (the lists are derived,
    so a new message class is listed by being written)."""
    found: list[type] = []
    for cls in base.__subclasses__():
        if cls.__struct_config__.tag != cls.__name__:  # a wire name of its own, not a base
            found.append(cls)
        found.extend(c for c in _concrete(cls) if c not in found)
    return tuple(found)


REQUEST_TYPES: tuple[type[Request], ...] = _concrete(Request)
REPLY_TYPES: tuple[type[Reply], ...] = _concrete(Reply)
EVENT_TYPES: tuple[type[Event], ...] = _concrete(Event)
ALL_TYPES = REQUEST_TYPES + REPLY_TYPES + EVENT_TYPES
BY_NAME: dict[str, type[Wire]] = {t.__struct_config__.tag: t for t in ALL_TYPES}
REQUESTS_BY_NAME = {t.__struct_config__.tag: t for t in REQUEST_TYPES}
