"""Upstream OrbitDock client messages -> daemon requests (pure).

``parse`` checks a text frame in order: JSON object (``parse_error``), a ``type`` upstream
defines (``parse_error``, as upstream's serde would say; one this bridge does not serve:
``unsupported``), its fields (``parse_error`` naming the field). Unknown fields are
ignored, as upstream does. ``to_request`` then turns the message into the daemon request
that serves it, or raises ``Refused`` (e.g. an option the daemon cannot honour) before
anything is sent. Upstream's ``permission_mode`` is a Claude session's ``approval_policy``;
upstream's Claude hook messages (``claude_*``) become the daemon's ``claude_hook`` with
Claude's own hook payload rebuilt. Upstream's ``undo_last_turn`` is a rollback of one turn;
``archive_session``, ``unarchive_session`` and ``review_session`` are ours (upstream has
no such messages): the daemon's requests of those names, with their fields.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from orbitdock.claude.modes import PERMISSION_MODES
from orbitdock.protocol import messages as m


class Refused(Exception):
    """A message this bridge answers with an ``error`` frame; nothing was done."""

    def __init__(self, code: str, message: str, session_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.session_id = code, message, session_id


class Upstream(msgspec.Struct, tag_field="type", kw_only=True):
    """Base of the client messages this bridge serves (field names are upstream's)."""

    session_id: ClassVar[str | None] = None


class SubscribeList(Upstream, tag="subscribe_list", kw_only=True):
    pass


class SubscribeSession(Upstream, tag="subscribe_session", kw_only=True):
    session_id: str
    since_revision: int | None = None
    include_snapshot: bool = True
    since_epoch: str | None = None  # ours: revisions compare only within one daemon life


class UnsubscribeSession(Upstream, tag="unsubscribe_session", kw_only=True):
    session_id: str


class CreateSession(Upstream, tag="create_session", kw_only=True):
    provider: str
    cwd: str
    model: str | None = None
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    permission_mode: str | None = None
    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    effort: str | None = None
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    name: str | None = None  # ours


class SendMessage(Upstream, tag="send_message", kw_only=True):
    session_id: str
    content: str
    model: str | None = None
    effort: str | None = None
    skills: list[Any] | None = None
    images: list[Any] | None = None
    mentions: list[Any] | None = None


class SteerTurn(Upstream, tag="steer_turn", kw_only=True):
    session_id: str
    content: str
    images: list[Any] | None = None
    mentions: list[Any] | None = None


class ApproveTool(Upstream, tag="approve_tool", kw_only=True):
    session_id: str
    request_id: str
    decision: str
    message: str | None = None
    interrupt: bool | None = None
    updated_input: Any = None


class AnswerQuestion(Upstream, tag="answer_question", kw_only=True):
    session_id: str
    request_id: str
    answer: str = ""
    question_id: str | None = None
    answers: dict[str, list[str]] | None = None


class InterruptSession(Upstream, tag="interrupt_session", kw_only=True):
    session_id: str


class EndSession(Upstream, tag="end_session", kw_only=True):
    session_id: str


class ResumeSession(Upstream, tag="resume_session", kw_only=True):
    session_id: str


class RenameSession(Upstream, tag="rename_session", kw_only=True):
    session_id: str
    name: str | None = None


class UpdateSessionConfig(Upstream, tag="update_session_config", kw_only=True):
    session_id: str
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    permission_mode: str | None = None
    model: str | None = None  # ours


class ForkSession(Upstream, tag="fork_session", kw_only=True):
    source_session_id: str
    nth_user_message: int | None = None
    model: str | None = None
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    cwd: str | None = None
    permission_mode: str | None = None
    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    name: str | None = None  # ours

    @property
    def session_id(self) -> str:  # the session the request is about (errors name it)
        return self.source_session_id


class ListModels(Upstream, tag="list_models", kw_only=True):
    pass


class CompactContext(Upstream, tag="compact_context", kw_only=True):
    session_id: str


class RollbackTurns(Upstream, tag="rollback_turns", kw_only=True):
    session_id: str
    num_turns: int  # >= 1, checked by to_request (invalid_argument, as the daemon's)


class UndoLastTurn(Upstream, tag="undo_last_turn", kw_only=True):
    session_id: str  # upstream's undo of the last turn: a rollback of one


# Ours (upstream has no such messages): the daemon's own session operations.
class ArchiveSession(Upstream, tag="archive_session", kw_only=True):
    session_id: str


class UnarchiveSession(Upstream, tag="unarchive_session", kw_only=True):
    session_id: str


class ReviewSession(Upstream, tag="review_session", kw_only=True):
    session_id: str
    target: str = "uncommitted"  # checked by the daemon's message (invalid_argument)
    value: str | None = None


# ------------------------------------------------------------ Claude hook messages
# What upstream's hook forwarder sends (its ``hook-forward <type>``: Claude's hook JSON
# with ``type`` injected). Field names are Claude's own, so the payload orbitdock's
# hooks take (``orbitdock.claude.hooks.parse_hook``) is the message less ``type`` and
# its nulls, with ``hook_event_name`` set.
class ClaudeHookMessage(Upstream, kw_only=True):
    session_id: str
    hook_event_name: str | None = None
    cwd: str | None = None
    transcript_path: str | None = None
    permission_mode: str | None = None

    EVENTS: ClassVar[tuple[str, ...]] = ()  # the hook events the message carries
    IGNORED: ClassVar[tuple[str, ...]] = ()  # upstream's, that orbitdock only logs

    def event(self) -> str:
        return self.hook_event_name or ""


class ClaudeSessionStart(ClaudeHookMessage, tag="claude_session_start", kw_only=True):
    cwd: str
    model: str | None = None
    source: str | None = None
    context_label: str | None = None
    agent_type: str | None = None
    terminal_session_id: str | None = None
    terminal_app: str | None = None

    def event(self) -> str:
        return "SessionStart"


class ClaudeSessionEnd(ClaudeHookMessage, tag="claude_session_end", kw_only=True):
    reason: str | None = None

    def event(self) -> str:
        return "SessionEnd"


class ClaudeStatusEvent(ClaudeHookMessage, tag="claude_status_event", kw_only=True):
    hook_event_name: str
    notification_type: str | None = None
    tool_name: str | None = None
    stop_hook_active: bool | None = None
    prompt: str | None = None
    message: str | None = None
    title: str | None = None
    trigger: str | None = None
    custom_instructions: str | None = None
    last_assistant_message: str | None = None
    error: str | None = None  # StopFailure's (ours: Claude's own field)
    teammate_name: str | None = None
    team_name: str | None = None
    task_id: str | None = None
    task_subject: str | None = None
    task_description: str | None = None
    source: str | None = None
    file_path: str | None = None

    EVENTS: ClassVar[tuple[str, ...]] = ("UserPromptSubmit", "Stop", "StopFailure",
                                         "Notification", "PreCompact")
    IGNORED: ClassVar[tuple[str, ...]] = ("TeammateIdle", "TaskCompleted", "ConfigChange")


class ClaudeToolEvent(ClaudeHookMessage, tag="claude_tool_event", kw_only=True):
    hook_event_name: str
    cwd: str
    tool_name: str
    tool_input: Any = None
    tool_response: Any = None
    tool_use_id: str | None = None
    error: str | None = None
    is_interrupt: bool | None = None
    permission_suggestions: Any = None
    reason: str | None = None  # PermissionDenied's (ours: Claude's own field)
    duration_ms: float | None = None

    EVENTS: ClassVar[tuple[str, ...]] = ("PreToolUse", "PostToolUse", "PostToolUseFailure",
                                         "PermissionRequest", "PermissionDenied")


class ClaudeSubagentEvent(ClaudeHookMessage, tag="claude_subagent_event", kw_only=True):
    hook_event_name: str
    agent_id: str
    agent_type: str | None = None
    agent_transcript_path: str | None = None
    stop_hook_active: bool | None = None
    last_assistant_message: str | None = None

    EVENTS: ClassVar[tuple[str, ...]] = ("SubagentStart", "SubagentStop")


HOOK_MESSAGES = (ClaudeSessionStart, ClaudeSessionEnd, ClaudeStatusEvent, ClaudeToolEvent,
                 ClaudeSubagentEvent)
# A Claude session start upstream leaves alone: Codex's own claude-compatible hook.
CODEX_CONTEXT_LABEL = "codex_cli_rs"


SERVED: dict[str, type[Upstream]] = {
    cls.__struct_config__.tag: cls for cls in (
        SubscribeList, SubscribeSession, UnsubscribeSession, CreateSession, SendMessage,
        SteerTurn, ApproveTool, AnswerQuestion, InterruptSession, EndSession, ResumeSession,
        RenameSession, UpdateSessionConfig, ForkSession, ListModels, CompactContext,
        RollbackTurns, UndoLastTurn, ArchiveSession, UnarchiveSession, ReviewSession,
        *HOOK_MESSAGES)}

# Every other ClientMessage upstream defines (HEAD 0075373): answered ``unsupported``.
NOT_SERVED = frozenset((
    "takeover_session", "fork_session_to_worktree",
    "fork_session_to_existing_worktree", "list_approvals", "delete_approval",
    "list_claude_models", "codex_account_read", "codex_login_chatgpt_start",
    "codex_login_chatgpt_cancel", "codex_account_logout", "list_skills", "list_remote_skills",
    "download_remote_skill", "list_mcp_tools", "refresh_mcp_servers", "set_open_ai_key",
    "set_server_role", "set_client_primary_claim", "check_open_ai_key", "fetch_codex_usage",
    "fetch_claude_usage", "stop_task",
    "rewind_files", "create_review_comment", "update_review_comment", "delete_review_comment",
    "list_review_comments", "get_subagent_tools", "execute_shell", "cancel_shell",
    "browse_directory", "list_recent_projects", "list_worktrees", "create_worktree", "remove_worktree",
    "discover_worktrees"))

# upstream approve_tool decisions -> the daemon's
DECISIONS = {
    "approved": "accept",
    "approved_for_session": "accept_for_session",
    "approved_always": "accept_for_session",  # nearest: the daemon keeps no exec-policy rule
    "denied": "decline",
    "deny": "decline",
    "abort": "cancel",
}

_decode_json = msgspec.json.Decoder()


def parse(text: str | bytes) -> Upstream:
    """One text frame -> the message it carries; raises Refused."""
    try:
        obj = _decode_json.decode(text)
    except msgspec.DecodeError as exc:
        raise Refused("parse_error", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Refused("parse_error", "a message is a JSON object with a \"type\" field")
    kind = obj.get("type")
    sid = obj.get("session_id") if isinstance(obj.get("session_id"), str) else None
    if not isinstance(kind, str):
        raise Refused("parse_error", "missing \"type\" field", sid)
    cls = SERVED.get(kind)
    if cls is None:
        if kind in NOT_SERVED:
            raise Refused("unsupported", f"orbitdock-ws does not serve {kind!r}", sid)
        raise Refused("parse_error", f"unknown message type {kind!r}", sid)
    try:
        return msgspec.convert(obj, cls)
    except msgspec.ValidationError as exc:
        raise Refused("parse_error", f"{kind}: {exc}", sid) from None


def _refuse_set(msg: Any, names: tuple[str, ...]) -> None:
    """Options the daemon cannot honour: refused (never silently dropped)."""
    given = [n for n in names if getattr(msg, n) not in (None, [], {})]
    if given:
        raise Refused("unsupported", f"{type(msg).__struct_config__.tag}: orbitdock does not "
                      f"support {', '.join(given)}", getattr(msg, "session_id", None))


def to_request(msg: Upstream, *, question_ids: list[str] | None = None,
               provider: str | None = None) -> m.Request | None:
    """The daemon request serving ``msg`` (subscriptions are the link's own business);
    None: nothing to do (a hook upstream ignores too).

    ``question_ids``: the pending question's ids, for an ``answer_question`` that gives a
    bare ``answer``. ``provider``: the provider of the session ``msg`` names, when the
    bridge knows it (``update_session_config`` and ``fork_session`` read
    ``permission_mode`` by it).
    """
    if isinstance(msg, CreateSession):
        _refuse_set(msg, ("allowed_tools", "disallowed_tools", "effort", "system_prompt",
                          "append_system_prompt"))
        return m.CreateSession(provider=msg.provider, cwd=msg.cwd, model=msg.model,
                               approval_policy=_autonomy(msg, msg.provider),
                               sandbox_mode=msg.sandbox_mode, name=msg.name)
    if isinstance(msg, SendMessage):
        _refuse_set(msg, ("skills", "images", "mentions"))
        _nonempty(msg.content, msg.session_id)
        return m.SendMessage(session_id=msg.session_id, content=msg.content, model=msg.model,
                             effort=msg.effort)
    if isinstance(msg, SteerTurn):
        _refuse_set(msg, ("images", "mentions"))
        _nonempty(msg.content, msg.session_id)
        return m.SteerTurn(session_id=msg.session_id, content=msg.content)
    if isinstance(msg, ApproveTool):
        _refuse_set(msg, ("updated_input",))
        decision = DECISIONS.get(msg.decision)
        if decision is None:
            raise Refused("invalid_argument", f"unknown decision {msg.decision!r} (one of "
                          f"{', '.join(DECISIONS)})", msg.session_id)
        if decision == "decline" and msg.interrupt:
            decision = "cancel"  # deny and stop the turn
        return m.ApproveTool(approval_id=msg.request_id, decision=decision,
                             message=msg.message)
    if isinstance(msg, AnswerQuestion):
        return m.AnswerQuestion(approval_id=msg.request_id,
                                answers=_answers(msg, question_ids or []))
    if isinstance(msg, InterruptSession):
        return m.InterruptSession(session_id=msg.session_id)
    if isinstance(msg, EndSession):
        return m.EndSession(session_id=msg.session_id)
    if isinstance(msg, ResumeSession):
        return m.ResumeSession(session_id=msg.session_id)
    if isinstance(msg, RenameSession):
        return m.RenameSession(session_id=msg.session_id, name=msg.name)
    if isinstance(msg, UpdateSessionConfig):
        return m.UpdateSessionConfig(session_id=msg.session_id,
                                     approval_policy=_autonomy(msg, provider),
                                     sandbox_mode=msg.sandbox_mode, model=msg.model)
    if isinstance(msg, ForkSession):
        _refuse_set(msg, ("nth_user_message", "cwd", "allowed_tools", "disallowed_tools"))
        return m.ForkSession(session_id=msg.source_session_id, model=msg.model,
                             approval_policy=_autonomy(msg, provider),
                             sandbox_mode=msg.sandbox_mode, name=msg.name)
    if isinstance(msg, ClaudeHookMessage):
        return claude_hook(msg)
    if isinstance(msg, ListModels):
        return m.ListModels(provider="codex")
    if isinstance(msg, CompactContext):
        return m.CompactSession(session_id=msg.session_id)
    if isinstance(msg, RollbackTurns):
        if msg.num_turns < 1:
            raise Refused("invalid_argument", f"rollback_turns: num_turns must be at least 1, "
                          f"not {msg.num_turns}", msg.session_id)
        return m.RollbackSession(session_id=msg.session_id, turns=msg.num_turns)
    if isinstance(msg, UndoLastTurn):
        return m.RollbackSession(session_id=msg.session_id, turns=1)
    if isinstance(msg, ArchiveSession):
        return m.ArchiveSession(session_id=msg.session_id)
    if isinstance(msg, UnarchiveSession):
        return m.UnarchiveSession(session_id=msg.session_id)
    if isinstance(msg, ReviewSession):
        return _review(msg)
    raise Refused("unsupported", f"{type(msg).__struct_config__.tag} is not a daemon request")


def _autonomy(msg: CreateSession | UpdateSessionConfig | ForkSession,
              provider: str | None) -> str | None:
    """The daemon's ``approval_policy`` for ``msg``: upstream's ``permission_mode`` is
    Claude's, so for a Claude session it is the policy (the daemon takes Claude's modes
    there); a Codex session has none (refused, as upstream's Codex connector ignores it).
    ``provider`` None: the session's provider is not known here; the daemon checks the
    value against the session's backend."""
    mode = msg.permission_mode
    if mode is None:
        return msg.approval_policy
    tag = type(msg).__struct_config__.tag
    sid = getattr(msg, "session_id", None)
    if provider is not None and provider != "claude":
        raise Refused("unsupported", f"{tag}: permission_mode is Claude's; a {provider} "
                      f"session takes approval_policy and sandbox_mode", sid)
    if mode not in PERMISSION_MODES:
        raise Refused("invalid_argument", f"{tag}: permission_mode {mode!r} is not one of "
                      f"{', '.join(PERMISSION_MODES)}", sid)
    if msg.approval_policy is not None and msg.approval_policy != mode:
        raise Refused("invalid_argument", f"{tag}: approval_policy {msg.approval_policy!r} "
                      f"and permission_mode {mode!r} disagree; give one", sid)
    return mode


def claude_hook(msg: ClaudeHookMessage) -> m.ClaudeHook | None:
    """An upstream Claude hook message as the ``claude_hook`` request orbitdock's own
    forwarder sends: Claude's hook payload rebuilt (the message's fields, nulls dropped,
    ``hook_event_name`` set). None: a hook upstream ignores too."""
    tag = type(msg).__struct_config__.tag
    event = msg.event()
    if event in msg.IGNORED:
        return None  # upstream only logs these
    if msg.EVENTS and event not in msg.EVENTS:
        raise Refused("invalid_argument", f"{tag}: hook_event_name {event!r} is not one of "
                      f"{', '.join(msg.EVENTS + msg.IGNORED)}", msg.session_id)
    if isinstance(msg, ClaudeSessionStart) and msg.context_label == CODEX_CONTEXT_LABEL:
        return None
    payload = {name: value for name, value in msgspec.structs.asdict(msg).items()
               if value is not None}
    payload["hook_event_name"] = event
    # upstream's forwarder adds the terminal's ids; Claude's hook has no such fields
    payload.pop("terminal_session_id", None)
    payload.pop("terminal_app", None)
    return m.ClaudeHook(event=event, payload=msgspec.json.encode(payload).decode())


def _review(msg: ReviewSession) -> m.ReviewSession:
    """The daemon's review request; a target it does not know is refused here, unsent."""
    try:
        return msgspec.convert({"session_id": msg.session_id, "target": msg.target,
                                "value": msg.value}, m.ReviewSession)
    except msgspec.ValidationError as exc:
        raise Refused("invalid_argument", f"review_session: {exc}", msg.session_id) from None


def _nonempty(content: str, session_id: str) -> None:
    if not content.strip():
        raise Refused("invalid_argument", "content is empty", session_id)


def _answers(msg: AnswerQuestion, question_ids: list[str]) -> dict[str, list[str]]:
    if msg.answers:
        return msg.answers
    if msg.question_id:
        return {msg.question_id: [msg.answer]}
    if len(question_ids) == 1:
        return {question_ids[0]: [msg.answer]}
    raise Refused("invalid_answer_payload",
                  "give question_id or answers (the question is not known to the bridge "
                  "or asks several things)", msg.session_id)
