"""The daemon's replies in upstream terms (pure): error codes, decision results, HTTP bodies.

A connection's request goes to the daemon as its ZeroMQ request (``orbitdock.ws.inbound``);
what comes back is told to that connection as upstream tells it: an ``error`` with
upstream's code (the daemon's rides along as ``orbitdock_code``), an
``approval_decision_result``, a ``models_list``, a ``thread_rolled_back``. ``/health`` and the messages page are
the HTTP side of the same replies.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from orbitdock.protocol import messages as m
from orbitdock.ws import inbound, outbound

# daemon error code -> upstream's, per request (default: the provider's error)
_ERRORS = {"not_found": "not_found", "invalid_field": "invalid_argument",
           "invalid_argument": "invalid_argument", "unsupported": "unsupported",
           "timeout": "timeout", "wrong_verb": "invalid_argument", "too_large": "too_large",
           "bad_frame": "parse_error", "unknown_type": "parse_error", "internal": "internal"}
_FAILED = {inbound.InterruptSession: "interrupt_failed", inbound.ResumeSession: "resume_failed",
           inbound.ForkSession: "fork_failed", inbound.RollbackTurns: "rollback_failed",
           inbound.UndoLastTurn: "rollback_failed"}
_HTTP_STATUS = {"not_found": 404, "invalid_field": 400, "invalid_argument": 400}


def upstream_error(code: str, msg: inbound.Upstream | None, provider: str = "codex") -> str:
    if code in _ERRORS:
        if code == "wrong_verb" and isinstance(msg, inbound.AnswerQuestion):
            return "invalid_answer_payload"
        return _ERRORS[code]
    if code == "invalid_state" and isinstance(msg, inbound.ResumeSession):
        return "already_active"
    failed = _FAILED.get(type(msg))
    if failed:
        return failed
    if isinstance(msg, inbound.ClaudeHookMessage):
        provider = "claude"
    return "claude_error" if provider == "claude" else "codex_error"


def question_ids(state: Any, request_id: str) -> list[str]:
    """The question ids of a pending question (``state``: the session's mirror, or None)."""
    if state is None:
        return []
    for request in state.approvals:
        if request.id == request_id:
            return [q.id for q in request.questions]
    return []


def decision_result(msg: Any, state: Any, outcome: str) -> dict[str, Any]:
    head = state.approvals[0].id if state is not None and state.approvals else None
    return {"type": "approval_decision_result", "session_id": msg.session_id,
            "request_id": msg.request_id, "outcome": outcome,
            "active_request_id": head,
            "approval_version": state.revision if state is not None else 0}


def reply_frame(msg: inbound.Upstream, reply: m.Wire, state: Any,
                provider: str) -> dict[str, Any] | None:
    """The frame that tells the connection the daemon's ``reply`` to its ``msg`` (None:
    nothing to tell). ``state``: the mirror of the session ``msg`` names (or None);
    ``provider``: that session's. A created or resumed session is not told here: its
    connection follows it from its snapshot."""
    sid = getattr(msg, "session_id", None)
    if isinstance(reply, m.Error):
        if reply.code == "stale_approval" and isinstance(
                msg, (inbound.ApproveTool, inbound.AnswerQuestion)):
            return decision_result(msg, state, "stale")
        code = upstream_error(reply.code, msg, provider)
        return outbound.error(code, reply.message, reply.session_id or sid,
                              orbitdock_code=reply.code)
    if isinstance(msg, (inbound.ApproveTool, inbound.AnswerQuestion)):
        return decision_result(msg, state, "applied")
    if isinstance(msg, (inbound.RollbackTurns, inbound.UndoLastTurn)):
        # upstream's word that the turns went; the session's reset (a fresh snapshot)
        # reaches every follower on its own
        result = getattr(reply, "result", None) or {}
        turns = result.get("turns_dropped", getattr(msg, "num_turns", 1))
        return {"type": "thread_rolled_back", "session_id": sid, "num_turns": turns,
                "messages_dropped": result.get("messages_dropped"),
                "files_reverted": result.get("files_reverted", False)}
    if isinstance(reply, m.ModelsList):
        models = [dict(msgspec.to_builtins(o), supports_reasoning_summaries=False)
                  for o in reply.models]
        return {"type": "models_list", "models": models}
    return None


def status_body(reply: m.Wire, clients: int) -> tuple[int, Any]:
    """``/health``: the daemon's status (200), or why not (503)."""
    if not isinstance(reply, m.ServerStatus):
        return 503, {"status": "error", "error": getattr(reply, "message", str(reply))}
    body = {k: v for k, v in msgspec.to_builtins(reply).items() if k not in ("type", "v", "id")}
    body.update(status="ok", bridge_clients=clients, bridge_pid=os.getpid())
    return 200, body


def page_body(reply: m.Wire, limit: int) -> tuple[int, Any]:
    """A page of stored messages (upstream's REST paging)."""
    if isinstance(reply, m.Error):
        return _HTTP_STATUS.get(reply.code, 503), outbound.error(
            upstream_error(reply.code, None), reply.message, reply.session_id)
    assert isinstance(reply, m.MessagesPage)
    messages = [outbound.message(x, reply.session_id, limit) for x in reply.messages]
    return 200, {"session_id": reply.session_id, "messages": messages,
                 "has_more_before": reply.has_more_before,
                 "oldest_sequence": messages[0]["sequence"] if messages else None}
