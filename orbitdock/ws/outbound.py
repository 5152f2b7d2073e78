"""Daemon state and events -> upstream OrbitDock server messages (plain dicts, pure).

Upstream shapes (docs/WS_PROTOCOL.md): session times are ``"<unix seconds>Z"`` strings,
message times ISO-8601; ``provider`` is ``codex`` or ``claude`` (a scripted session shows
as ``codex``, its own backend in ``backend``); streamed text is sent whole in
``message_updated`` (upstream clients replace, they do not append); a token change is a
``tokens_updated`` of its own. Fields upstream does not know (``attention_reason``,
``display_name``, the approval queue ``approvals`` ...) ride along: upstream clients
ignore unknown fields. Every session-scoped frame carries ``revision`` (the daemon's
revision of that session, upstream's replay field) and ``last_activity_at``, so a client
can resume with ``since_revision`` and keep its copy exact.

One field transform (``_field``) serves snapshots, list rows and deltas alike, so a
client that applies deltas to a snapshot ends where a fresh snapshot would.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import msgspec
from msgspec import UNSET

from orbitdock.claude.modes import permission_mode_for
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import (
    ApprovalRequest,
    Message,
    SessionState,
    SessionSummary,
    TokenUsage,
)

UPSTREAM_MESSAGE_TYPES = ("user", "assistant", "thinking", "tool", "tool_result", "steer",
                          "shell")
UPSTREAM_APPROVAL_TYPES = ("exec", "patch", "question")
_SESSION_TIMES = ("started_at", "last_activity_at", "ended_at")
FIELD_LIMIT = 16_000  # upstream's: longer message text is cut, "\n\n[truncated]" appended
SNAPSHOT_TARGET_BYTES = 262_144  # upstream's snapshot target (ws.snapshot_target_bytes)
SNAPSHOT_FIELD_STEPS = (4_000, 1_000, 250)  # harder cuts, in turn, for a snapshot over it
SNAPSHOT_MIN_MESSAGES = 20  # the newest messages a snapshot keeps however large they are
TRUNCATED = "\n\n[truncated]"
_INTERNAL_ONLY = ("messages", "approvals", "integration_mode", "provider",
                  "token_usage", "current_plan", "pending_approvals", "project_path")


def unix_z(ts: float | None) -> str | None:
    """Upstream's session-time format: whole seconds with a ``Z``."""
    if ts is None:
        return None
    return f"{int(ts)}Z"


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def upstream_provider(provider: str) -> str:
    return "claude" if provider == "claude" else "codex"


def token_usage(usage: TokenUsage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens, "context_window": usage.context_window,
            "reasoning_tokens": usage.reasoning_tokens, "total_tokens": usage.total_tokens}


def snapshot_kind(integration_mode: str) -> str:
    # direct sessions report the last turn's usage, passive ones lifetime totals (upstream)
    return "lifetime_totals" if integration_mode == "passive" else "context_turn"


def _plan_text(plan: list[dict[str, Any]] | None) -> str | None:
    # upstream's current_plan is a string: the plan's JSON
    return None if plan is None else msgspec.json.encode(plan).decode()


def _field(name: str, value: Any, out: dict[str, Any]) -> None:
    """One daemon state field into its upstream field(s)."""
    if name in _SESSION_TIMES:
        out[name] = unix_z(value)
    elif name == "current_plan":
        out["current_plan"] = _plan_text(value)
        out["plan"] = value
    elif name == "project_path":
        out["project_path"] = value
        out["current_cwd"] = value
    elif name == "pending_approvals":
        out["pending_approvals"] = value
        out["has_pending_approval"] = value > 0
    elif name == "token_usage":
        out["token_usage"] = token_usage(value)
    else:
        out[name] = msgspec.to_builtins(value) if isinstance(value, msgspec.Struct) else value


def permission_mode(provider: str, integration_mode: str,
                    approval_policy: str | None) -> str | None:
    """Upstream's ``permission_mode`` of a session: a Claude session's Claude permission
    mode (its approval policy, Codex-style values mapped as the direct connector maps
    them; a direct one with none runs ``default``; a passive one's is what its hooks
    report); None for Codex, and for a passive Claude session no hook told yet."""
    if provider != "claude" or (approval_policy is None and integration_mode == "passive"):
        return None
    return permission_mode_for(approval_policy)


def summary(row: SessionSummary) -> dict[str, Any]:
    """A list row (upstream SessionSummary)."""
    out: dict[str, Any] = {"id": row.id, "provider": upstream_provider(row.provider),
                           "backend": row.provider}
    mode_key = "claude_integration_mode" if row.provider == "claude" else "codex_integration_mode"
    out[mode_key] = row.integration_mode
    if row.provider == "claude":
        out["permission_mode"] = permission_mode(row.provider, row.integration_mode,
                                                 row.approval_policy)
    out["token_usage_snapshot_kind"] = snapshot_kind(row.integration_mode)
    out["is_worktree"] = False
    out["unread_count"] = 0
    for name in SessionSummary.__struct_fields__:
        if name not in ("id", "provider", "integration_mode"):
            _field(name, getattr(row, name), out)
    return out


def cut(text: str | None, limit: int) -> str | None:
    """Upstream's compaction of message text (snapshots and events alike, so a client that
    applies events ends where a snapshot would); ``limit`` 0: no limit."""
    if text is None or not limit or len(text) <= limit:
        return text
    return text[:limit] + TRUNCATED


def message(msg: Message, session_id: str, limit: int = FIELD_LIMIT) -> dict[str, Any]:
    """Upstream Message; our ``error`` rows are assistant messages with ``is_error``."""
    kind = msg.type if msg.type in UPSTREAM_MESSAGE_TYPES else "assistant"
    out: dict[str, Any] = {
        "id": msg.id, "session_id": session_id, "sequence": msg.seq, "message_type": kind,
        "content": cut(msg.content, limit), "tool_name": msg.tool_name,
        "tool_input": cut(msg.tool_input, limit), "tool_output": cut(msg.tool_output, limit),
        "is_error": msg.is_error or msg.type == "error",
        "timestamp": iso(msg.timestamp), "duration_ms": msg.duration_ms,
        "turn_id": msg.turn_id}
    if msg.is_in_progress:
        out["is_in_progress"] = True
    return out


def approval(req: ApprovalRequest) -> dict[str, Any]:
    """Upstream ApprovalRequest (``type`` exec | patch | question; ours beyond those show as
    exec with the backend's request kind as ``tool_name``)."""
    kind = req.type if req.type in UPSTREAM_APPROVAL_TYPES else "exec"
    first = req.questions[0].question if req.questions else None
    out: dict[str, Any] = {
        "id": req.id, "session_id": req.session_id, "type": kind,
        "command": req.command, "file_path": req.file_path, "diff": req.diff,
        "question": first, "orbitdock_type": req.type, "cwd": req.cwd, "reason": req.reason,
        "turn_id": req.turn_id, "available_decisions": list(req.available_decisions),
        "created_at": unix_z(req.created_at)}
    if req.type not in UPSTREAM_APPROVAL_TYPES:
        out["tool_name"] = req.method or req.type
    elif req.type == "exec":
        out["tool_name"] = "Bash"
    elif req.type == "patch":
        out["tool_name"] = "Edit"
    if req.questions:
        out["question_prompts"] = [{
            "id": q.id, "header": q.header, "question": q.question,
            "options": [{"label": o.get("label", ""), "description": o.get("description")}
                        for o in q.options],
            "allows_other": q.is_other, "is_secret": q.is_secret} for q in req.questions]
    return out


def _approval_fields(approvals: list[ApprovalRequest]) -> dict[str, Any]:
    """The pending-approval fields upstream shows (the head of the FIFO) plus the queue."""
    head = approvals[0] if approvals else None
    return {
        "pending_approval": approval(head) if head else None,
        "pending_approval_id": head.id if head else None,
        "pending_tool_name": (approval(head).get("tool_name") if head else None),
        "pending_question": (head.questions[0].question if head and head.questions else None),
        "approvals": [approval(a) for a in approvals],
    }


def session_state(state: SessionState, limit: int = FIELD_LIMIT) -> dict[str, Any]:
    """Upstream SessionState (a snapshot), paging fields included."""
    out = summary(state)
    for name in SessionState.__struct_fields__:
        if name not in SessionSummary.__struct_fields__ and name not in _INTERNAL_ONLY:
            _field(name, getattr(state, name), out)
    _field("current_plan", state.current_plan, out)
    out["messages"] = [message(msg, state.id, limit) for msg in state.messages]
    out.update(_approval_fields(state.approvals))
    seqs = [msg.seq for msg in state.messages]
    out["oldest_sequence"] = min(seqs) if seqs else None
    out["newest_sequence"] = max(seqs) if seqs else None
    out["has_more_before"] = state.total_message_count > len(state.messages)
    return out


def session_snapshot(state: SessionState, epoch: str | None, limit: int = FIELD_LIMIT,
                     target_bytes: int = SNAPSHOT_TARGET_BYTES) -> dict[str, Any]:
    """A snapshot frame that fits ``target_bytes`` of JSON (0: no target), as upstream's:
    message text is cut harder step by step (``SNAPSHOT_FIELD_STEPS``), then the oldest
    messages are left out (``has_more_before``: the client pages them over HTTP), keeping
    at least ``SNAPSHOT_MIN_MESSAGES``. A session on a big transcript must not cost each
    new subscriber megabytes, nor exceed a client's frame limit."""
    session = session_state(state, limit)
    if not target_bytes or _json_size(session) <= target_bytes:
        return {"type": "session_snapshot", "session": session, "epoch": epoch}
    for step in SNAPSHOT_FIELD_STEPS:
        if limit and step >= limit:
            continue
        session["messages"] = [message(msg, state.id, step) for msg in state.messages]
        session["current_diff"] = cut(state.current_diff, step * 4)
        if _json_size(session) <= target_bytes:
            break
    kept = session["messages"]
    while len(kept) > SNAPSHOT_MIN_MESSAGES and _json_size(session) > target_bytes:
        kept = kept[len(kept) // 2:] if len(kept) // 2 >= SNAPSHOT_MIN_MESSAGES \
            else kept[-SNAPSHOT_MIN_MESSAGES:]
        session["messages"] = kept
    if len(kept) < len(state.messages):
        session["oldest_sequence"] = kept[0]["sequence"] if kept else None
        session["has_more_before"] = True
    return {"type": "session_snapshot", "session": session, "epoch": epoch}


def _json_size(obj: Any) -> int:
    return len(msgspec.json.encode(obj))


def sessions_list(rows: Iterable[SessionSummary]) -> dict[str, Any]:
    return {"type": "sessions_list", "sessions": [summary(r) for r in rows]}


def session_created(row: SessionSummary) -> dict[str, Any]:
    return {"type": "session_created", "session": summary(row)}


def session_forked(source_session_id: str, new: SessionState) -> dict[str, Any]:
    """Upstream ``session_forked`` (the snapshot of the new session follows it)."""
    return {"type": "session_forked", "source_session_id": source_session_id,
            "new_session_id": new.id, "forked_from_thread_id": new.thread_id}


def error(code: str, message_text: str, session_id: str | None = None,
          **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message_text, "session_id": session_id,
            **extra}


def _stamp(frame: dict[str, Any], event: m.SessionEvent) -> dict[str, Any]:
    frame["revision"] = event.rev
    if event.ts:
        frame["last_activity_at"] = unix_z(event.ts)
        frame["ts"] = event.ts  # ours: when the backend produced it (latency, ordering)
    return frame


def session_event(event: m.SessionEvent, state: SessionState,
                  limit: int = FIELD_LIMIT) -> list[dict[str, Any]]:
    """Upstream frames for one daemon event, ``state`` being the mirror *after* it.

    Streamed text (``content_append``) is resent whole from the mirror, as upstream does.
    """
    sid = event.session_id
    if isinstance(event, m.SessionDelta):
        return _delta(event, state)
    if isinstance(event, m.MessageAppended):
        return [_stamp({"type": "message_appended", "session_id": sid,
                        "message": message(event.message, sid, limit)}, event)]
    if isinstance(event, m.MessageUpdated):
        return [message_updated(event, state, limit=limit)]
    if isinstance(event, m.ApprovalRequested):
        return [_stamp({"type": "approval_requested", "session_id": sid,
                        "request": approval(event.request),
                        "approval_version": event.rev}, event),
                _stamp({"type": "session_delta", "session_id": sid,
                        "changes": _queue_changes(state)}, event)]
    if isinstance(event, m.ApprovalResolved):
        return [_stamp({"type": "session_delta", "session_id": sid,
                        "changes": _queue_changes(state)}, event)]
    if isinstance(event, m.SessionEnded):
        return [_stamp({"type": "session_ended", "session_id": sid, "reason": event.reason},
                       event)]
    return []  # session_reset: the link sends the fresh snapshot that follows


def _queue_changes(state: SessionState) -> dict[str, Any]:
    changes = _approval_fields(state.approvals)
    changes["pending_approvals"] = len(state.approvals)
    changes["has_pending_approval"] = bool(state.approvals)
    return changes


_APPENDS = {"content_append": "content", "tool_output_append": "tool_output"}


def changed_fields(changes: Any) -> set[str]:
    """The message fields a ``MessageChanges`` touches (appends name the field they grow)."""
    return {_APPENDS.get(name, name) for name in changes.__struct_fields__
            if getattr(changes, name) is not UNSET}


_TEXT_FIELDS = ("content", "tool_output")


def message_updated(event: m.MessageUpdated, state: SessionState,
                    fields: set[str] | None = None, limit: int = FIELD_LIMIT) -> dict[str, Any]:
    """Upstream ``message_updated``: every changed field with the mirror's current value.

    ``fields``: the union of the fields of several updates of this message coalesced into
    this one (the mirror already holds their result)."""
    msg = next((x for x in reversed(state.messages) if x.id == event.message_id), None)
    out: dict[str, Any] = {}
    for name in sorted(fields or changed_fields(event.changes)):
        if msg is not None:
            out[name] = getattr(msg, name)
        elif name in event.changes.__struct_fields__:
            out[name] = getattr(event.changes, name)  # trimmed away: what the event says
        if name in _TEXT_FIELDS and name in out:
            out[name] = cut(out[name], limit)
    return _stamp({"type": "message_updated", "session_id": event.session_id,
                   "message_id": event.message_id, "changes": out}, event)


def _delta(event: m.SessionDelta, state: SessionState) -> list[dict[str, Any]]:
    sid = event.session_id
    frames: list[dict[str, Any]] = []
    changes: dict[str, Any] = {}
    for name in event.changes.__struct_fields__:
        value = getattr(event.changes, name)
        if value is UNSET:
            continue
        if name == "token_usage":
            frames.append(_stamp({"type": "tokens_updated", "session_id": sid,
                                  "usage": token_usage(value),
                                  "snapshot_kind": snapshot_kind(state.integration_mode)},
                                 event))
        else:
            _field(name, value, changes)
            if name == "approval_policy" and state.provider == "claude":
                changes["permission_mode"] = permission_mode(
                    state.provider, state.integration_mode, value)
    if changes or not frames:
        frames.insert(0, _stamp({"type": "session_delta", "session_id": sid,
                                 "changes": changes}, event))
    return frames


def server_info(epoch: str | None, version: str) -> dict[str, Any]:
    return {"type": "server_info", "is_primary": True, "client_primary_claims": [],
            "epoch": epoch, "version": version}
