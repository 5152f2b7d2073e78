"""Turning stored rows back into a SessionState (restoration after a restart or crash)."""

from __future__ import annotations

from typing import Any

import msgspec

from orbitdock.protocol.models import (
    ApprovalRequest,
    McpServer,
    Message,
    SessionState,
    TokenUsage,
)
from orbitdock.session.row import PERSISTED_FIELDS

TOKEN_FIELDS = tuple(TokenUsage.__struct_fields__)
BOOL_FIELDS = ("is_archived",)


def state_from_row(row: dict[str, Any], messages: list[Message],
                   approvals: list[ApprovalRequest], message_limit: int) -> SessionState:
    fields = {k: row[k] for k in PERSISTED_FIELDS if k in row and row[k] is not None}
    fields.setdefault("provider", row.get("provider") or "codex")
    for name in BOOL_FIELDS:  # SQLite stores them as 0/1
        if name in fields:
            fields[name] = bool(fields[name])
    if "mcp_servers" in fields:  # JSON column: back to structs
        fields["mcp_servers"] = msgspec.convert(fields["mcp_servers"], list[McpServer])
    usage = row.get("token_usage")
    if not isinstance(usage, dict):
        usage = {k: row.get(k) or 0 for k in TOKEN_FIELDS}
    return SessionState(id=row["id"], **fields, token_usage=TokenUsage(**usage),
                        messages=list(messages[-message_limit:]), message_limit=message_limit,
                        approvals=list(approvals), pending_approvals=len(approvals))
