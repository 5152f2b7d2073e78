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

from typing import Annotated, Any, ClassVar, Literal

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
    StorageState,
)

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
SessionId = msgspec.Meta(pattern=SESSION_ID_PATTERN)


# Values the ``example``s below share (docs/PROTOCOL.md renders and checks every example).
EXAMPLE_SESSION_ID = _SID = "od-5f0c1d2e-8a4b-4c3d-9e1f-0a1b2c3d4e5f"
_EPOCH = "9f2c4e1a7b3d5e60"
_APPROVAL = f"{_SID}:a3-9f2c4e1a"
_MESSAGE = {"id": f"{_SID}:m7", "seq": 7, "type": "assistant", "turn_id": "turn-2",
            "content": "The tests pass.", "timestamp": 1765130000.5}
_SUMMARY = {"id": _SID, "provider": "codex", "work_status": "permission",
            "attention_reason": "awaitingPermission", "display_name": "fix the flaky test",
            "first_prompt": "fix the flaky test", "project_path": "/home/ada/src/app",
            "project_name": "app", "git_branch": "main", "model": "gpt-5.5",
            "pending_approvals": 1, "prompt_count": 1, "tool_count": 4, "last_tool": "Shell",
            "started_at": 1765129900.0, "last_activity_at": 1765130000.5}
_APPROVAL_REQUEST = {"id": _APPROVAL, "session_id": _SID, "type": "exec",
                     "method": "item/commandExecution/requestApproval", "turn_id": "turn-2",
                     "command": "pytest -q tests/test_flaky.py", "cwd": "/home/ada/src/app",
                     "available_decisions": ["accept", "accept_for_session", "decline", "cancel"],
                     "created_at": 1765130001.0}


class Wire(msgspec.Struct, tag_field="type", kw_only=True):
    v: int = PROTOCOL_VERSION
    id: str | None = None
    kind: ClassVar[str] = "event"  # "request" | "reply" | "event"
    # Field values of an example message (docs/PROTOCOL.md shows it, a test decodes it);
    # a class whose fields all have defaults may leave it out.
    example: ClassVar[dict[str, Any]] = {}

Sid = Annotated[str, SessionId]


# ------------------------------------------------------------------ replies
class Reply(Wire, kw_only=True):
    kind: ClassVar[str] = "reply"


class Ack(Reply, tag="ack", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "result": {"turn_id": "turn-3"}}
    session_id: str | None = None
    result: dict[str, Any] = {}


class Error(Reply, tag="error", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"code": "not_found", "session_id": _SID,
                                         "message": f"no such session: {_SID}"}
    code: str
    message: str
    session_id: str | None = None


class ServerStatus(Reply, tag="server_status", kw_only=True):
    example: ClassVar[dict[str, Any]] = {
        "epoch": _EPOCH, "version": "0.1.0", "pid": 41250, "uptime_s": 3600.2, "actors": 9,
        "sessions": 3, "sessions_active": 2, "sessions_needing_attention": 1, "subscribers": 4,
        "frames_rejected": 0, "rss_bytes": 88_473_600, "storage": "degraded",
        "storage_cause": "disk full (database or disk is full)",
        "storage_since": 1765130000.5, "unsaved_commands": 412}
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
    storage: StorageState = "ok"  # database writes: ok | degraded | full
    storage_cause: str = ""  # why writes fail (empty while ok)
    storage_since: float = 0.0  # when the current storage state began (0 while ok)
    unsaved_commands: int = 0  # writes kept in memory until the database takes them
    dropped_commands: int = 0  # writes dropped past the bound (persistence.drop_when_full)


class SessionsList(Reply, tag="sessions_list", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"epoch": _EPOCH, "revision": 42, "sessions": [_SUMMARY]}
    epoch: str
    revision: int  # list revision: list-topic events above it follow
    sessions: list[SessionSummary]


class SessionsPage(Reply, tag="sessions_page", kw_only=True):
    """One page of the session history, newest activity first (from the database)."""

    example: ClassVar[dict[str, Any]] = {"sessions": [_SUMMARY], "has_more": True}
    sessions: list[SessionSummary]
    has_more: bool  # ask again with the last row's last_activity_at and id as the cursor


class SessionSnapshot(Reply, tag="session_snapshot", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"epoch": _EPOCH, "session": {
        **_SUMMARY, "revision": 57, "current_turn_id": "turn-2", "turn_count": 2,
        "thread_id": "0199a7c4-5b1e-7d20-9c3f-2e4b6a8d0f11", "messages": [_MESSAGE],
        "total_message_count": 7, "approvals": [_APPROVAL_REQUEST]}}
    epoch: str
    session: SessionState


class MessagesPage(Reply, tag="messages_page", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "messages": [_MESSAGE],
                                         "has_more_before": True}
    session_id: str
    messages: list[Message]
    has_more_before: bool


class ApprovalDecisionResult(Reply, tag="approval_decision_result", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "approval_id": _APPROVAL,
                                         "outcome": "applied"}
    session_id: str
    approval_id: str
    outcome: str  # applied


class ModelsList(Reply, tag="models_list", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"models": [{
        "id": "gpt-5.5", "model": "gpt-5.5", "display_name": "GPT-5.5", "is_default": True,
        "supported_reasoning_efforts": ["low", "medium", "high"]}]}
    models: list[ModelOption]


class RolloutsReport(Reply, tag="rollouts_report", kw_only=True):
    """The watcher's status (files followed, offsets, lag, errors) or an import's counters."""

    example: ClassVar[dict[str, Any]] = {"report": {
        "codex_home": "/home/ada/.codex", "observing": True, "files_followed": 1,
        "files_unknown": 0, "sessions": 1, "sessions_idle": 0, "lag_bytes": 0,
        "lines_parsed": 120, "malformed_lines": 0, "errors": 0}}
    report: dict[str, Any]


class CodexStatus(Reply, tag="codex_status", kw_only=True):
    """``orbitdock.codex.pool_report``'s report: binary, processes, recoveries, login shell."""

    example: ClassVar[dict[str, Any]] = {"report": {
        "binary": "/home/ada/.local/bin/codex", "version": "0.169.0",
        "processes": [{"proc_id": 1, "pid": 41300, "state": "serving", "load": 2}],
        "recoveries": {"processes_lost": 0, "resumed": 0, "failed": 0}, "login_shell": None}}
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
    # New durable state (a session, a turn): refused with storage_unavailable while the
    # database cannot be written, rather than accepted and lost.
    creates_durable: ClassVar[bool] = False
    client: str | None = None  # who sends it (e.g. "orbitdock-mcp (codex)"): logged by the daemon


class GetStatus(Request, tag="get_status", kw_only=True):
    reply: ClassVar[type[Reply]] = ServerStatus


class SubscribeList(Request, tag="subscribe_list", kw_only=True):
    """The live list, for a Clone-pattern mirror: every session not ended (list events on
    ``l|`` upsert it; an upsert saying ``ended`` is its last: mirrors drop it, as the
    daemon does). The history, ended sessions too, is ``list_sessions``."""

    reply: ClassVar[type[Reply]] = SessionsList


class ListSessions(Request, tag="list_sessions", kw_only=True):
    """A page of every session the database holds (ended ones too), filtered: answered
    by the persistence actor, so it costs no session an actor."""

    example: ClassVar[dict[str, Any]] = {"status": "all", "search": "flaky test", "limit": 20}
    scope: ClassVar[Scope] = Scope.PERSISTENCE
    reply: ClassVar[type[Reply]] = SessionsPage
    errors: ClassVar[tuple[E, ...]] = (E.INVALID_FIELD,)
    status: Literal["active", "ended", "all"] = "all"  # active: not ended
    since: float | None = None  # last activity at or after this (unix seconds)
    provider: str | None = None
    project: str | None = None  # project path or project name, exactly
    search: str | None = None  # in the name or the first prompt, case-insensitive
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50
    before_activity: float | None = None  # cursor: the previous page's last row's
    before_id: str | None = None  # last_activity_at and id (both, or neither)


class SubscribeSession(Request, tag="subscribe_session", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID}
    scope: ClassVar[Scope] = Scope.SESSION
    reply: ClassVar[type[Reply]] = SessionSnapshot
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND, E.SESSION_START_FAILED)
    session_id: Sid


class GetMessages(Request, tag="get_messages", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "before_seq": 7, "limit": 50}
    scope: ClassVar[Scope] = Scope.PERSISTENCE
    reply: ClassVar[type[Reply]] = MessagesPage
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND,)
    session_id: Sid
    before_seq: int | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class CreateSession(Request, tag="create_session", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"provider": "codex", "cwd": "/home/ada/src/app",
                                         "model": "gpt-5.5", "approval_policy": "on-request",
                                         "sandbox_mode": "workspace-write"}
    scope: ClassVar[Scope] = Scope.SUPERVISOR
    reply: ClassVar[type[Reply]] = SessionSnapshot
    creates_durable: ClassVar[bool] = True
    errors: ClassVar[tuple[E, ...]] = (E.INVALID_FIELD, E.INVALID_ARGUMENT, E.UNAVAILABLE,
                                       E.BACKEND_ERROR, E.SESSION_START_FAILED,
                                       E.STORAGE_UNAVAILABLE)
    provider: str
    cwd: str
    model: str | None = None
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    name: str | None = None
    script: list[dict[str, Any]] | None = None  # for the scripted provider only


class ForkSession(Request, tag="fork_session", kw_only=True):
    """A new direct session continuing ``session_id``'s conversation (codex ``thread/fork``):
    it carries the parent's messages, new ones go to the fork only, the parent is untouched.
    A passive (terminal) session forks into a direct one. Answered once the backend made
    the thread; a thread the backend no longer has is backend_error, and no session."""

    scope: ClassVar[Scope] = Scope.SUPERVISOR
    reply: ClassVar[type[Reply]] = SessionSnapshot
    creates_durable: ClassVar[bool] = True
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND, E.INVALID_STATE, E.INVALID_ARGUMENT,
                                       E.UNAVAILABLE, E.BACKEND_ERROR, E.STORAGE_UNAVAILABLE)
    session_id: Sid
    model: str | None = None
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    name: str | None = None


class SendMessage(Request, tag="send_message", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "content": "fix the flaky test"}
    scope: ClassVar[Scope] = Scope.SESSION
    creates_durable: ClassVar[bool] = True
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS + (E.INVALID_ARGUMENT,
                                                        E.STORAGE_UNAVAILABLE)
    forward: ClassVar[str | None] = "send_message"
    session_id: Sid
    content: Annotated[str, msgspec.Meta(min_length=1)]
    # Per-turn overrides; they stick for later turns. An effort the model does not offer
    # (model/list) or an unknown sandbox / approval policy is invalid_argument, unsent.
    model: str | None = None
    effort: str | None = None
    sandbox_mode: str | None = None
    approval_policy: str | None = None


class SteerTurn(Request, tag="steer_turn", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "content": "only touch tests/"}
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "steer"
    session_id: Sid
    content: Annotated[str, msgspec.Meta(min_length=1)]


class ApproveTool(Request, tag="approve_tool", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"approval_id": _APPROVAL, "decision": "accept"}
    scope: ClassVar[Scope] = Scope.SESSION
    reply: ClassVar[type[Reply]] = ApprovalDecisionResult
    errors: ClassVar[tuple[E, ...]] = APPROVAL_ERRORS + (E.WRONG_VERB,)
    approval_id: str
    decision: str  # accept | accept_for_session | decline | cancel (upstream names accepted too)
    message: str | None = None


class AnswerQuestion(Request, tag="answer_question", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"approval_id": _APPROVAL, "answers": {"q1": ["Blue"]}}
    scope: ClassVar[Scope] = Scope.SESSION
    reply: ClassVar[type[Reply]] = ApprovalDecisionResult
    errors: ClassVar[tuple[E, ...]] = APPROVAL_ERRORS + (E.WRONG_VERB,)
    approval_id: str
    answers: dict[str, list[str]]


class InterruptSession(Request, tag="interrupt_session", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID}
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "interrupt"
    session_id: Sid


class EndSession(Request, tag="end_session", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID}
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND,)
    session_id: Sid


class ResumeSession(Request, tag="resume_session", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID}
    scope: ClassVar[Scope] = Scope.SESSION
    reply: ClassVar[type[Reply]] = SessionSnapshot
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND, E.INVALID_STATE, E.UNAVAILABLE,
                                       E.SESSION_START_FAILED)
    session_id: Sid


class RenameSession(Request, tag="rename_session", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "name": "flaky test"}
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND,)
    session_id: Sid
    name: str | None


class UpdateSessionConfig(Request, tag="update_session_config", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "approval_policy": "never"}
    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = (E.NOT_FOUND, E.INVALID_ARGUMENT)
    session_id: Sid
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    model: str | None = None


class ArchiveSession(Request, tag="archive_session", kw_only=True):
    """Archive the session's backend thread (codex ``thread/archive``: its rollout moves to
    ``archived_sessions/``). Refused while a turn runs; an archived session takes no
    prompt until it is unarchived."""

    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "archive"
    session_id: Sid


class UnarchiveSession(Request, tag="unarchive_session", kw_only=True):
    """Bring an archived thread back (codex ``thread/unarchive``); the next prompt resumes it."""

    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "unarchive"
    session_id: Sid


class CompactSession(Request, tag="compact_session", kw_only=True):
    """Compact the conversation's context now (codex ``thread/compact/start``): a turn of its
    own, shown by ``is_compacting`` and a ``compaction`` message. Refused while a turn runs."""

    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "compact"
    session_id: Sid


class RollbackSession(Request, tag="rollback_session", kw_only=True):
    """Drop the last ``turns`` turns from the conversation (codex ``thread/revert`` before the
    first of them). Their messages leave the session, the database and every client
    (``session_reset``: take a fresh snapshot). Files on disk are NOT reverted."""

    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS + (E.INVALID_ARGUMENT,)
    session_id: Sid
    turns: Annotated[int, msgspec.Meta(ge=1)] = 1


class ReviewSession(Request, tag="review_session", kw_only=True):
    """Review mode (codex ``review/start``, inline): ``target`` uncommitted | base_branch
    (``value`` the branch) | commit (``value`` the sha) | custom (``value`` the
    instructions). The session's work_status is ``reviewing`` meanwhile (steering is
    refused); the findings arrive as a ``review`` message. A cwd outside git allows only
    custom reviews (invalid_state)."""

    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS + (E.INVALID_ARGUMENT,)
    forward: ClassVar[str | None] = "review"
    session_id: Sid
    target: Literal["uncommitted", "base_branch", "commit", "custom"] = "uncommitted"
    value: str | None = None


class McpStatus(Request, tag="mcp_status", kw_only=True):
    """The MCP servers the session's backend started, asked now (codex
    ``mcpServerStatus/list``): the session's ``mcp_servers`` are refreshed and the Ack's
    result is ``{"servers": [{name, state, tools, error}]}``."""

    scope: ClassVar[Scope] = Scope.SESSION
    errors: ClassVar[tuple[E, ...]] = SESSION_ERRORS
    forward: ClassVar[str | None] = "mcp_status"
    session_id: Sid


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


class ClaudeHook(Request, tag="claude_hook", kw_only=True):
    """One Claude Code hook, from ``orbitdock-hook`` (``orbitdock.claude.forward``).

    Answered with ``Ack`` at once, except a ``PermissionRequest``: its ``Ack`` comes
    when a client decides (``result.output`` is the hook's JSON output) or, after
    ``claude.permission_wait_s``, without one."""

    scope: ClassVar[Scope] = Scope.PROVIDER
    errors: ClassVar[tuple[E, ...]] = (E.INVALID_ARGUMENT, E.UNAVAILABLE)
    provider: ClassVar[str] = "claude"
    example: ClassVar[dict[str, Any]] = {
        "event": "UserPromptSubmit", "event_id": "1733600000000000000-4242",
        "payload": '{"session_id":"3f1c…","transcript_path":"/home/u/.claude/projects/p/'
                   '3f1c….jsonl","cwd":"/home/u/p","hook_event_name":"UserPromptSubmit",'
                   '"prompt":"fix the tests"}'}
    event: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    payload: str  # the hook's stdin (JSON text)
    event_id: str = ""  # the forwarder's id for it: a spooled copy of a delivered event is dropped
    spool: bool = False  # the forwarder found spooled events: replay them before this one
    wait_s: float = 0.0  # how long the forwarder waits for a decision (PermissionRequest)


class RolloutsStatus(Request, tag="rollouts_status", kw_only=True):
    scope: ClassVar[Scope] = Scope.WATCHER
    reply: ClassVar[type[Reply]] = RolloutsReport
    errors: ClassVar[tuple[E, ...]] = (E.UNAVAILABLE,)


class ImportRollouts(Request, tag="import_rollouts", kw_only=True):
    """Import older rollouts not followed live (mtime >= since); resumable."""

    example: ClassVar[dict[str, Any]] = {"since": 1764547200.0}
    scope: ClassVar[Scope] = Scope.WATCHER
    reply: ClassVar[type[Reply]] = RolloutsReport
    errors: ClassVar[tuple[E, ...]] = (E.UNAVAILABLE,)
    since: float | None = None


# ------------------------------------------------------------------- events
class BackupDatabase(Request, tag="backup_database", kw_only=True):
    """An online copy of the database (SQLite's backup API) to ``path`` on the daemon's
    host, taken after every write told before it; the file must not exist yet."""

    example: ClassVar[dict[str, Any]] = {"path": "/home/ada/backups/orbitdock-1207.db"}
    scope: ClassVar[Scope] = Scope.PERSISTENCE
    errors: ClassVar[tuple[E, ...]] = (E.INVALID_ARGUMENT, E.STORAGE_UNAVAILABLE)
    path: Annotated[str, msgspec.Meta(min_length=1)]


class CheckDatabase(Request, tag="check_database", kw_only=True):
    """``PRAGMA integrity_check`` on the live database; Ack result {ok, problems}."""

    scope: ClassVar[Scope] = Scope.PERSISTENCE


class SetPageLimit(Request, tag="set_page_limit", kw_only=True):
    """Test-only: change the writer's ``PRAGMA max_page_count`` (to make the database
    fill up, or to lift that); invalid_state unless persistence.test_max_page_count is
    set in the daemon's config."""

    example: ClassVar[dict[str, Any]] = {"pages": 100000}
    scope: ClassVar[Scope] = Scope.PERSISTENCE
    errors: ClassVar[tuple[E, ...]] = (E.INVALID_STATE,)
    pages: Annotated[int, msgspec.Meta(ge=1)]


class Event(Wire, kw_only=True):
    kind: ClassVar[str] = "event"


class SessionEvent(Event, kw_only=True):
    session_id: str
    rev: int
    ts: float = 0.0


class SessionDelta(SessionEvent, tag="session_delta", kw_only=True):
    example: ClassVar[dict[str, Any]] = {
        "session_id": _SID, "rev": 58, "ts": 1765130001.0,
        "changes": {"work_status": "permission", "attention_reason": "awaitingPermission",
                    "last_error": None}}
    changes: StateChanges


class MessageAppended(SessionEvent, tag="message_appended", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "rev": 55, "ts": 1765130000.5,
                                         "message": {**_MESSAGE, "content": "The tests",
                                                     "is_in_progress": True}}
    message: Message


class MessageUpdated(SessionEvent, tag="message_updated", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "rev": 56, "ts": 1765130000.6,
                                         "message_id": f"{_SID}:m7",
                                         "changes": {"content_append": " pass."}}
    message_id: str
    changes: MessageChanges


class ApprovalRequested(SessionEvent, tag="approval_requested", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "rev": 59, "ts": 1765130001.0,
                                         "request": _APPROVAL_REQUEST}
    request: ApprovalRequest


class ApprovalResolved(SessionEvent, tag="approval_resolved", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "rev": 60, "ts": 1765130004.2,
                                         "approval_id": _APPROVAL, "decision": "accept"}
    approval_id: str
    decision: str | None = None


class SessionEnded(SessionEvent, tag="session_ended", kw_only=True):
    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "rev": 80, "ts": 1765130300.0,
                                         "reason": "user_requested"}
    reason: str


class SessionReset(SessionEvent, tag="session_reset", kw_only=True):
    """The session's actor restarted: subscribers must take a fresh snapshot."""

    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "rev": 61,
                                         "reason": "the session actor crashed; restarted"}
    reason: str


class SessionTail(Event, tag="session_tail", kw_only=True):
    """The latest revision of a recently active session, repeated on heartbeats.

    Not a revisioned event: it lets a subscriber whose queue dropped the *last*
    events of a burst notice the loss (a gap is otherwise only seen when a later
    event arrives).
    """

    example: ClassVar[dict[str, Any]] = {"session_id": _SID, "rev": 60}
    session_id: str
    rev: int


class SessionCreated(Event, tag="session_created", kw_only=True):
    """List topic: insert-or-update of one summary (upstream's upsert semantics)."""

    example: ClassVar[dict[str, Any]] = {"epoch": _EPOCH, "lrev": 43, "session": _SUMMARY}
    epoch: str
    lrev: int
    session: SessionSummary


class Heartbeat(Event, tag="heartbeat", kw_only=True):
    """Every heartbeat_interval_s, and at once when the storage state changes."""

    example: ClassVar[dict[str, Any]] = {"epoch": _EPOCH, "seq": 3600, "ts": 1765130002.0}
    epoch: str
    seq: int
    ts: float
    storage: StorageState = "ok"  # database writes: ok | degraded | full
    storage_cause: str = ""  # why writes fail (empty while ok)
    storage_since: float = 0.0  # when the current storage state began (0 while ok)


class Welcome(Event, tag="welcome", kw_only=True):
    """Sent on a topic when the XPUB sees a subscription to it: the subscription is live."""

    example: ClassVar[dict[str, Any]] = {"topic": f"s|{_SID}|", "epoch": _EPOCH}
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
