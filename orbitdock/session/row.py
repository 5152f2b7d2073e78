"""What a session's row in the sessions table holds, and which of it an event changed."""

from __future__ import annotations

from typing import Any

import msgspec

from orbitdock.protocol.models import SessionState

# Columns of the sessions table that mirror SessionState fields one to one.
PERSISTED_FIELDS = (
    "provider", "status", "work_status", "attention_reason", "integration_mode", "display_name",
    "custom_name", "summary", "first_prompt", "last_message", "project_path", "project_name",
    "git_branch", "model", "approval_policy", "sandbox_mode", "prompt_count", "tool_count",
    "last_tool", "started_at", "last_activity_at", "ended_at", "end_reason", "revision",
    "current_turn_id", "turn_count", "current_plan", "plan_explanation", "current_diff",
    "last_error", "thread_id", "transcript_path", "total_message_count", "is_archived",
    "effort", "forked_from_session_id", "mcp_servers", "mcp_server_count", "mcp_failed_count",
)


class SessionRow:
    """The sessions-table values as last written by one ``SessionCore``.

    Most events (a streamed delta) move only the revision and the activity time;
    writing the full row per event was a fifth of the per-event cost. The first
    write of a core (new, restored or restarted actor) is the full row.
    """

    def __init__(self) -> None:
        self._written: dict[str, Any] = {}
        self._usage: Any = None

    def changes(self, state: SessionState) -> dict[str, Any]:
        """The fields that differ from the last write (and remember them as written)."""
        written, fields = self._written, {}
        for name in PERSISTED_FIELDS:
            value = getattr(state, name)
            if name not in written or written[name] != value:
                fields[name] = written[name] = value
        if state.token_usage is not self._usage:  # replaced on change, never mutated
            self._usage = state.token_usage
            fields["token_usage"] = msgspec.structs.asdict(state.token_usage)
        return fields
