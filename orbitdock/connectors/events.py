"""What a backend reports to its session actor, independent of the backend kind.

Direct Codex (app-server notifications), passive Codex (rollout lines), Claude
hooks and the scripted test backend all translate into these, so one reducer in
the session actor turns every backend into the same revisioned wire events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable

from orbitdock.protocol.errors import ErrorCode


@dataclass(slots=True)
class ThreadStarted:
    """The backend thread exists (created, resumed or discovered)."""

    thread_id: str
    model: str | None = None
    cwd: str | None = None
    transcript_path: str | None = None
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    git_branch: str | None = None
    name: str | None = None
    started_at: float | None = None
    effort: str | None = None


@dataclass(slots=True)
class TurnStarted:
    turn_id: str


@dataclass(slots=True)
class TurnCompleted:
    turn_id: str | None
    status: str  # completed | interrupted | failed
    error: str | None = None
    # completed with the agent asking the person something (work status question, not reply)
    asks: bool = False


@dataclass(slots=True)
class UserMessage:
    text: str
    item_id: str | None = None
    turn_id: str | None = None


@dataclass(slots=True)
class AgentMessageDelta:
    item_id: str
    delta: str
    turn_id: str | None = None


@dataclass(slots=True)
class AgentMessage:
    """A finished assistant message; replaces the streamed text of the same item."""

    item_id: str
    text: str
    turn_id: str | None = None


@dataclass(slots=True)
class ReasoningDelta:
    item_id: str
    delta: str
    turn_id: str | None = None


@dataclass(slots=True)
class Reasoning:
    item_id: str
    text: str
    turn_id: str | None = None


@dataclass(slots=True)
class ToolStarted:
    item_id: str
    tool_name: str  # Shell | Edit | MCP:<server>/<tool> | WebSearch | <raw name>
    tool_input: str | None = None  # JSON text or the command line
    turn_id: str | None = None


@dataclass(slots=True)
class ToolOutputDelta:
    item_id: str
    delta: str


@dataclass(slots=True)
class ToolCompleted:
    item_id: str
    output: str | None = None
    is_error: bool = False
    duration_ms: int | None = None
    status: str = "completed"  # completed | failed | declined
    tool_name: str | None = None  # set when no ToolStarted preceded it
    tool_input: str | None = None


@dataclass(slots=True)
class ApprovalRequest:
    """The backend is blocked until a client decides; ``key`` answers it via respond()."""

    key: Hashable
    type: str  # exec | patch | question | permissions | elicitation | generic
    method: str | None = None
    turn_id: str | None = None
    command: str | None = None
    cwd: str | None = None
    file_path: str | None = None
    diff: str | None = None
    reason: str | None = None
    questions: list[dict[str, Any]] = field(default_factory=list)
    available_decisions: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ApprovalCleared:
    """The backend resolved or withdrew a request (e.g. serverRequest/resolved)."""

    key: Hashable


@dataclass(slots=True)
class TokenUsageUpdated:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    context_window: int = 0
    cost_usd: float = 0.0  # the session's cost so far (Claude's total_cost_usd); 0: unknown


@dataclass(slots=True)
class RateLimitsUpdated:
    payload: dict[str, Any]


@dataclass(slots=True)
class PlanUpdated:
    plan: list[dict[str, Any]]
    explanation: str | None = None
    turn_id: str | None = None


@dataclass(slots=True)
class DiffUpdated:
    diff: str
    turn_id: str | None = None


@dataclass(slots=True)
class NameUpdated:
    name: str | None


@dataclass(slots=True)
class ContextCompaction:
    """The backend compacts the conversation's context (started, then completed)."""

    item_id: str
    completed: bool


@dataclass(slots=True)
class ReviewStarted:
    """The backend entered review mode (what it reviews, in its words)."""

    item_id: str
    description: str = ""


@dataclass(slots=True)
class ReviewFinished:
    """The review's result: codex's text and, when known, ``result`` = {verdict,
    explanation, findings: [{title, body, priority, confidence, file, line_start, line_end}]}."""

    item_id: str
    text: str
    result: dict[str, Any] | None = None


@dataclass(slots=True)
class McpServersUpdated:
    """MCP servers' start-up states, by name: dicts with name, state, and when known
    tools (names) and error; servers not named keep what was known of them."""

    servers: list[dict[str, Any]]


@dataclass(slots=True)
class ThreadArchived:
    """The backend archived (or unarchived) the session's thread."""

    archived: bool


@dataclass(slots=True)
class ConfigApplied:
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    model: str | None = None
    effort: str | None = None


@dataclass(slots=True)
class ProjectInfo:
    cwd: str | None = None
    git_branch: str | None = None
    project_name: str | None = None
    model: str | None = None


@dataclass(slots=True)
class BackendError:
    """A non-fatal error worth showing (e.g. an `error` notification)."""

    message: str


@dataclass(slots=True)
class BackendLost:
    """The backend process died; the connector is recovering (or gave up when fatal)."""

    reason: str
    fatal: bool = False


@dataclass(slots=True)
class BackendRecovered:
    detail: str = ""


@dataclass(slots=True)
class BackendEnded:
    reason: str


@dataclass(slots=True)
class CommandResult:
    """Completion of a connector command, correlated by the token the actor passed in."""

    token: Any
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error_code: ErrorCode | None = None
    error_message: str | None = None


BackendEvent = (
    ThreadStarted | TurnStarted | TurnCompleted | UserMessage | AgentMessageDelta
    | AgentMessage | ReasoningDelta | Reasoning | ToolStarted | ToolOutputDelta
    | ToolCompleted | ApprovalRequest | ApprovalCleared | TokenUsageUpdated
    | RateLimitsUpdated | PlanUpdated | DiffUpdated | NameUpdated | ThreadArchived | ContextCompaction
    | ReviewStarted | ReviewFinished | McpServersUpdated | ConfigApplied
    | ProjectInfo | BackendError | BackendLost | BackendRecovered | BackendEnded
    | CommandResult
)
