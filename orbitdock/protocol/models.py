"""Shared data shapes carried inside wire messages (names follow upstream OrbitDock).

Fields of a ``*Changes`` struct are tri-state: ``UNSET`` (absent on the wire) =
unchanged, ``None`` (nil) = cleared, a value = set.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType

# The session status fields, as msgspec-checked Literal types (a decoded value outside them
# is a validation error). What moves a session between them is documented in one place,
# orbitdock/session/core.py ("Status rules"); the reducer ends a session (SessionEnded).
Status = Literal["active", "ended"]
WorkStatus = Literal["working", "reviewing", "waiting", "permission", "question", "reply",
                     "ended"]
AttentionReason = Literal["none", "awaitingReply", "awaitingPermission", "awaitingQuestion"]
STATUSES: tuple[str, ...] = get_args(Status)
WORK_STATUSES: tuple[str, ...] = get_args(WorkStatus)
ATTENTION_REASONS: tuple[str, ...] = get_args(AttentionReason)
# "review": content is codex's text; tool_output the JSON {verdict, explanation, findings:
# [{title, body, priority, confidence, file, line_start, line_end}]} a client lists.
MESSAGE_TYPES = ("user", "assistant", "thinking", "tool", "tool_result", "steer", "error",
                 "compaction", "review")
APPROVAL_TYPES = ("exec", "patch", "question", "permissions", "elicitation", "generic")


class Base(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class TokenUsage(Base, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    context_window: int = 0
    cost_usd: float = 0.0  # the session's cost so far, as the backend reports it (Claude)


class Message(Base, kw_only=True):
    id: str
    seq: int
    type: str
    content: str = ""
    turn_id: str | None = None
    tool_name: str | None = None
    tool_input: str | None = None
    tool_output: str | None = None
    is_error: bool = False
    is_in_progress: bool = False
    duration_ms: int | None = None
    timestamp: float = 0.0


class MessageChanges(Base, kw_only=True):
    """Changes to one message; the ``*_append`` fields extend text instead of resending it."""

    content: str | UnsetType = UNSET
    content_append: str | UnsetType = UNSET
    tool_output: str | None | UnsetType = UNSET
    tool_output_append: str | UnsetType = UNSET
    is_error: bool | UnsetType = UNSET
    is_in_progress: bool | UnsetType = UNSET
    duration_ms: int | None | UnsetType = UNSET


class Question(Base, kw_only=True):
    id: str
    question: str
    header: str | None = None
    options: list[dict[str, Any]] = []
    is_other: bool = False
    is_secret: bool = False


class ApprovalRequest(Base, kw_only=True):
    """One entry of a session's FIFO approval queue."""

    id: str  # "<session_id>:a<n>"; the session is recoverable from the id
    session_id: str
    type: str  # one of APPROVAL_TYPES
    method: str | None = None  # the backend's request kind, e.g. item/fileChange/requestApproval
    turn_id: str | None = None
    command: str | None = None
    cwd: str | None = None
    file_path: str | None = None
    diff: str | None = None
    reason: str | None = None
    questions: list[Question] = []
    available_decisions: list[str] = []
    payload: dict[str, Any] = {}  # the backend's raw params, for generic approvals
    created_at: float = 0.0


class McpServer(Base, kw_only=True):
    """One MCP server the backend started for the session."""

    name: str
    state: str = "starting"  # starting | ready | failed | cancelled (codex's words)
    tools: list[str] = []
    tool_count: int = 0
    error: str | None = None


# ok: writes succeed; degraded: writes fail and are kept for retry (new sessions and
# turns are refused); full: as degraded, and the unsaved commands reached
# persistence.max_unsaved_commands.
StorageState = Literal["ok", "degraded", "full"]


class StorageHealth(Base, kw_only=True):
    """The persistence actor's write state, as it tells the gateway on every change."""

    state: StorageState = "ok"
    cause: str = ""  # why writes fail, e.g. "disk full (database or disk is full)"
    since: float = 0.0  # wall-clock time the current state began (0 while ok)
    unsaved_commands: int = 0  # commands kept in memory, not yet in the database
    dropped_commands: int = 0  # dropped past the bound (persistence.drop_when_full only)
    refuse_new_work: bool = False  # the gateway answers storage_unavailable to new work


class SessionSummary(Base, kw_only=True):
    """A row of the session list: what a dashboard needs to answer "who waits on me?"."""

    id: str
    provider: str
    status: Status = "active"
    work_status: WorkStatus = "waiting"
    attention_reason: AttentionReason = "awaitingReply"  # a new session waits for its first prompt
    integration_mode: str = "direct"  # direct (we drive it) | passive (watched)
    display_name: str = ""
    custom_name: str | None = None
    summary: str | None = None
    first_prompt: str | None = None
    last_message: str | None = None
    project_path: str | None = None
    project_name: str | None = None
    git_branch: str | None = None
    model: str | None = None
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    effort: str | None = None  # reasoning effort of the next turn (None: the model's default)
    pending_approvals: int = 0
    prompt_count: int = 0
    tool_count: int = 0
    last_tool: str | None = None
    token_usage: TokenUsage = msgspec.field(default_factory=TokenUsage)
    started_at: float = 0.0
    last_activity_at: float = 0.0
    ended_at: float | None = None
    end_reason: str | None = None
    is_archived: bool = False  # the backend thread is archived: out of the default list
    forked_from_session_id: str | None = None  # the session this one was forked from
    mcp_server_count: int = 0  # MCP servers the backend started (mcp_servers in the snapshot)
    mcp_failed_count: int = 0  # of them, failed to start


class SessionState(SessionSummary, kw_only=True):
    """A session snapshot: summary plus the conversation window and live turn state."""

    revision: int = 0
    current_turn_id: str | None = None
    turn_count: int = 0
    is_compacting: bool = False  # a context compaction runs (not persisted: ends with its turn)
    is_reviewing: bool = False  # in review mode (work_status "reviewing" while its turn runs)
    mcp_servers: list[McpServer] = []
    current_plan: list[dict[str, Any]] | None = None
    plan_explanation: str | None = None
    current_diff: str | None = None
    last_error: str | None = None
    rate_limits: dict[str, Any] | None = None  # the backend's latest limits (not persisted)
    thread_id: str | None = None
    transcript_path: str | None = None
    messages: list[Message] = []
    message_limit: int = 200
    total_message_count: int = 0
    approvals: list[ApprovalRequest] = []


class StateChanges(Base, kw_only=True):
    status: Status | UnsetType = UNSET
    work_status: WorkStatus | UnsetType = UNSET
    attention_reason: AttentionReason | UnsetType = UNSET
    display_name: str | UnsetType = UNSET
    custom_name: str | None | UnsetType = UNSET
    summary: str | None | UnsetType = UNSET
    first_prompt: str | None | UnsetType = UNSET
    last_message: str | None | UnsetType = UNSET
    project_path: str | None | UnsetType = UNSET
    project_name: str | None | UnsetType = UNSET
    git_branch: str | None | UnsetType = UNSET
    model: str | None | UnsetType = UNSET
    approval_policy: str | None | UnsetType = UNSET
    sandbox_mode: str | None | UnsetType = UNSET
    effort: str | None | UnsetType = UNSET
    prompt_count: int | UnsetType = UNSET
    tool_count: int | UnsetType = UNSET
    last_tool: str | None | UnsetType = UNSET
    token_usage: TokenUsage | UnsetType = UNSET
    last_activity_at: float | UnsetType = UNSET
    ended_at: float | None | UnsetType = UNSET
    end_reason: str | None | UnsetType = UNSET
    current_turn_id: str | None | UnsetType = UNSET
    turn_count: int | UnsetType = UNSET
    is_compacting: bool | UnsetType = UNSET
    is_reviewing: bool | UnsetType = UNSET
    current_plan: list[dict[str, Any]] | None | UnsetType = UNSET
    plan_explanation: str | None | UnsetType = UNSET
    current_diff: str | None | UnsetType = UNSET
    last_error: str | None | UnsetType = UNSET
    rate_limits: dict[str, Any] | None | UnsetType = UNSET
    thread_id: str | None | UnsetType = UNSET
    transcript_path: str | None | UnsetType = UNSET
    is_archived: bool | UnsetType = UNSET
    forked_from_session_id: str | None | UnsetType = UNSET
    mcp_server_count: int | UnsetType = UNSET
    mcp_failed_count: int | UnsetType = UNSET
    mcp_servers: list[McpServer] | UnsetType = UNSET


class ModelOption(Base, kw_only=True):
    id: str
    model: str
    display_name: str = ""
    description: str = ""
    is_default: bool = False
    supported_reasoning_efforts: list[str] = []


SUMMARY_FIELDS = tuple(f for f in SessionSummary.__struct_fields__)
CHANGE_FIELDS = frozenset(StateChanges.__struct_fields__)


def attention_for(work_status: WorkStatus) -> AttentionReason:
    """Upstream's derivation: what a session's work status asks of the user."""
    return {
        "waiting": "awaitingReply",
        "reply": "awaitingReply",
        "permission": "awaitingPermission",
        "question": "awaitingQuestion",
    }.get(work_status, "none")
