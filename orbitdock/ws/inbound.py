"""Upstream OrbitDock client messages -> daemon requests (pure).

``parse`` checks a text frame in order: JSON object (``parse_error``), a ``type`` upstream
defines (``parse_error``, as upstream's serde would say; one this bridge does not serve:
``unsupported``), its fields (``parse_error`` naming the field). Unknown fields are
ignored, as upstream does. ``to_request`` then turns the message into the daemon request
that serves it, or raises ``Refused`` (e.g. an option the daemon cannot honour) before
anything is sent.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

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


class ListModels(Upstream, tag="list_models", kw_only=True):
    pass


SERVED: dict[str, type[Upstream]] = {
    cls.__struct_config__.tag: cls for cls in (
        SubscribeList, SubscribeSession, UnsubscribeSession, CreateSession, SendMessage,
        SteerTurn, ApproveTool, AnswerQuestion, InterruptSession, EndSession, ResumeSession,
        RenameSession, UpdateSessionConfig, ListModels)}

# Every other ClientMessage upstream defines (HEAD 0075373): answered ``unsupported``.
NOT_SERVED = frozenset((
    "takeover_session", "fork_session", "fork_session_to_worktree",
    "fork_session_to_existing_worktree", "list_approvals", "delete_approval",
    "list_claude_models", "codex_account_read", "codex_login_chatgpt_start",
    "codex_login_chatgpt_cancel", "codex_account_logout", "list_skills", "list_remote_skills",
    "download_remote_skill", "list_mcp_tools", "refresh_mcp_servers", "set_open_ai_key",
    "set_server_role", "set_client_primary_claim", "check_open_ai_key", "fetch_codex_usage",
    "fetch_claude_usage", "compact_context", "undo_last_turn", "rollback_turns", "stop_task",
    "rewind_files", "create_review_comment", "update_review_comment", "delete_review_comment",
    "list_review_comments", "claude_session_start", "claude_session_end",
    "claude_status_event", "claude_tool_event", "claude_subagent_event",
    "get_subagent_tools", "execute_shell", "cancel_shell", "browse_directory",
    "list_recent_projects", "list_worktrees", "create_worktree", "remove_worktree",
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


def _refuse_set(msg: Upstream, names: tuple[str, ...]) -> None:
    """Options the daemon cannot honour: refused (never silently dropped)."""
    given = [n for n in names if getattr(msg, n) not in (None, [], {})]
    if given:
        raise Refused("unsupported", f"{type(msg).__struct_config__.tag}: orbitdock does not "
                      f"support {', '.join(given)}", getattr(msg, "session_id", None))


def to_request(msg: Upstream, *, question_ids: list[str] | None = None) -> m.Request:
    """The daemon request serving ``msg`` (subscriptions are the link's own business).

    ``question_ids``: the pending question's ids, for an ``answer_question`` that gives a
    bare ``answer``.
    """
    if isinstance(msg, CreateSession):
        _refuse_set(msg, ("permission_mode", "allowed_tools", "disallowed_tools", "effort",
                          "system_prompt", "append_system_prompt"))
        return m.CreateSession(provider=msg.provider, cwd=msg.cwd, model=msg.model,
                               approval_policy=msg.approval_policy,
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
        _refuse_set(msg, ("permission_mode",))
        return m.UpdateSessionConfig(session_id=msg.session_id,
                                     approval_policy=msg.approval_policy,
                                     sandbox_mode=msg.sandbox_mode, model=msg.model)
    if isinstance(msg, ListModels):
        return m.ListModels(provider="codex")
    raise Refused("unsupported", f"{type(msg).__struct_config__.tag} is not a daemon request")


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
