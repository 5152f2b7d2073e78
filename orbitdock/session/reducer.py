"""Applying revisioned session events to a SessionState — the one reducer.

The server applies every event it publishes with these functions, and clients
apply the same events to their snapshot copy; equal inputs in equal order give
equal states, which is what lets a late joiner end exactly where the server is.
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from orbitdock.protocol import messages as m
from orbitdock.protocol.models import Message, MessageChanges, SessionState, SessionSummary


def apply_changes(target: msgspec.Struct, changes: msgspec.Struct) -> None:
    for name in changes.__struct_fields__:
        value = getattr(changes, name)
        if value is not UNSET:
            setattr(target, name, value)


def apply_message_changes(msg: Message, changes: MessageChanges) -> None:
    for name in changes.__struct_fields__:
        value = getattr(changes, name)
        if value is UNSET:
            continue
        if name == "content_append":
            msg.content += value
        elif name == "tool_output_append":
            msg.tool_output = (msg.tool_output or "") + value
        else:
            setattr(msg, name, value)


def _trim(state: SessionState) -> None:
    excess = len(state.messages) - state.message_limit
    if excess > 0:
        del state.messages[:excess]


def _find_message(state: SessionState, message_id: str) -> Message | None:
    # Updates almost always hit the newest messages: search from the end.
    for msg in reversed(state.messages):
        if msg.id == message_id:
            return msg
    return None


def apply_event(state: SessionState, event: m.SessionEvent) -> None:
    """Apply one session event (already known to be the next revision)."""
    if isinstance(event, m.SessionDelta):
        apply_changes(state, event.changes)
    elif isinstance(event, m.MessageAppended):
        state.messages.append(msgspec.structs.replace(event.message))
        state.total_message_count += 1
        _trim(state)
    elif isinstance(event, m.MessageUpdated):
        msg = _find_message(state, event.message_id)
        if msg is not None:
            apply_message_changes(msg, event.changes)
    elif isinstance(event, m.ApprovalRequested):
        state.approvals.append(event.request)
        state.pending_approvals = len(state.approvals)
    elif isinstance(event, m.ApprovalResolved):
        state.approvals = [a for a in state.approvals if a.id != event.approval_id]
        state.pending_approvals = len(state.approvals)
    elif isinstance(event, m.SessionEnded):
        state.status = "ended"
        state.work_status = "ended"
        state.attention_reason = "none"
        state.end_reason = event.reason
    state.revision = event.rev
    # Activity time rides on every event instead of costing a delta of its own.
    if event.ts > state.last_activity_at:
        state.last_activity_at = event.ts


def summary_of(state: SessionState) -> SessionSummary:
    return SessionSummary(**{f: getattr(state, f) for f in SessionSummary.__struct_fields__})
