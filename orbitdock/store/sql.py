"""Executing write commands against the schema, and converting rows <-> models.

Everything here runs on the persistence actor's thread with its one write
connection; the functions hold no state. ``execute`` runs one command (an
``Atomic`` runs its inner commands in order) and returns the rows it changed.
Batches with per-command failure isolation are in ``batches.py``, read queries in
``queries.py``.

Column names are never taken from data as-is: ``fields`` keys are checked
against the known column tuples before they are spliced into SQL text.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Callable

import apsw
import msgspec

from orbitdock.protocol.models import ApprovalRequest, Message, TokenUsage
from orbitdock.store.commands import (
    Atomic,
    DecideApproval,
    SaveApproval,
    SaveMessage,
    SaveRolloutOffset,
    SaveSession,
    SaveTokenUsage,
    SaveTurn,
    SetConfigValue,
    DropMessagesFrom,
    CopyMessages,
)

TOKEN_COUNT_COLUMNS = (
    "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "total_tokens",
    "context_window",
)
TOKEN_COLUMNS = (*TOKEN_COUNT_COLUMNS, "cost_usd")  # cost_usd: 0006

# Order matches 0001_initial.sql; test_schema checks the two agree.
SESSION_COLUMNS = (
    "id", "provider", "status", "work_status", "attention_reason", "integration_mode",
    "display_name", "custom_name", "summary", "first_prompt", "last_message", "project_path",
    "project_name", "git_branch", "model", "approval_policy", "sandbox_mode", "prompt_count",
    "tool_count", "last_tool", *TOKEN_COUNT_COLUMNS, "started_at", "last_activity_at", "ended_at",
    "end_reason", "revision", "current_turn_id", "turn_count", "current_plan", "plan_explanation",
    "current_diff", "last_error", "thread_id", "transcript_path", "total_message_count", "extra",
    "is_archived",  # 0002
    "effort",  # 0003
    "forked_from_session_id",  # 0004
    "mcp_servers", "mcp_server_count", "mcp_failed_count",  # 0005
    "cost_usd",  # 0006
)
SESSION_JSON_COLUMNS = frozenset({"current_plan", "extra", "mcp_servers"})
_SESSION_SETTABLE = frozenset(SESSION_COLUMNS) - {"id"}

MESSAGE_COLUMNS = (
    "session_id", "seq", "id", "type", "content", "turn_id", "tool_name", "tool_input",
    "tool_output", "is_error", "is_in_progress", "duration_ms", "timestamp",
)

APPROVAL_COLUMNS = (
    "id", "session_id", "type", "method", "turn_id", "command", "cwd", "file_path", "diff",
    "reason", "questions", "available_decisions", "payload", "created_at", "decision",
    "decided_at",
)

TURN_COLUMNS = ("status", "started_at", "ended_at", "plan", "plan_explanation", "diff", "error")
TURN_JSON_COLUMNS = frozenset({"plan"})
_TURN_SETTABLE = frozenset(TURN_COLUMNS)
_SESSION_ACCEPTED = _SESSION_SETTABLE | {"id", "token_usage"}  # what a SaveSession may carry

ROLLOUT_COLUMNS = ("path", "offset", "session_id", "size", "mtime", "ignore_existing", "updated_at")


_encode_json = msgspec.json.Encoder().encode


def to_json(value: Any) -> str | None:
    """JSON text for a JSON column (msgspec also encodes Structs such as Question)."""
    return None if value is None else _encode_json(value).decode()


def from_json(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


# ---------------------------------------------------------------- sessions


def session_columns(session_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """SaveSession.fields -> sessions column values, validated and encoded.

    ``token_usage`` (a dict with TokenUsage field names, or a TokenUsage) is
    spread onto the token columns; JSON columns are encoded; anything that is
    not a column is an error, so a typo does not silently drop data.
    """
    cols: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "token_usage":
            cols.update(token_columns(value))
        elif name in SESSION_JSON_COLUMNS:
            cols[name] = to_json(value)
        elif name in _SESSION_SETTABLE:
            cols[name] = value
        elif name == "id":
            if value != session_id:
                raise ValueError(f"fields['id'] {value!r} differs from session_id {session_id!r}")
        else:
            raise ValueError(f"unknown sessions column {name!r}")
    return cols


_SCALARS = (str, int, float, type(None))  # what SQLite stores as is (bool is an int)


def check_fields(cmd: Any) -> None:
    """Reject a SaveSession/SaveTurn that could never be written, before it is merged.

    Merged into the pending command for the same row, an unknown column or an
    unstorable value would sink that good command too; checked on arrival only
    the bad command is dropped. (Cheap: names and types, no encoding.)
    """
    if type(cmd) is SaveSession:
        allowed, json_cols = _SESSION_ACCEPTED, SESSION_JSON_COLUMNS
    elif type(cmd) is SaveTurn:
        allowed, json_cols = _TURN_SETTABLE, TURN_JSON_COLUMNS
    else:
        return
    for name, value in cmd.fields.items():
        if name not in allowed:
            raise ValueError(f"unknown column {name!r} in {type(cmd).__name__}")
        if name not in json_cols and name != "token_usage" and not isinstance(value, _SCALARS):
            raise TypeError(f"{type(cmd).__name__} {name!r}: cannot store {type(value).__name__}")


def token_columns(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    if isinstance(usage, TokenUsage):
        usage = msgspec.structs.asdict(usage)
    unknown = set(usage) - set(TOKEN_COLUMNS)
    if unknown:
        raise ValueError(f"unknown token usage keys {sorted(unknown)}")
    return dict(usage)


@lru_cache(maxsize=256)
def _session_update_sql(cols: tuple[str, ...]) -> str:
    return f"UPDATE sessions SET {', '.join(f'{c}=?' for c in cols)} WHERE id=?"


@lru_cache(maxsize=256)
def _insert_sql(table: str, cols: tuple[str, ...]) -> str:
    return f"INSERT INTO {table}({', '.join(cols)}) VALUES({', '.join('?' * len(cols))})"


def save_session(conn: apsw.Connection, cmd: SaveSession) -> int:
    """Upsert touching only the given columns.

    UPDATE first, INSERT when no row matched. (``INSERT .. ON CONFLICT DO
    UPDATE`` cannot express a partial update here: SQLite checks NOT NULL on the
    would-be-inserted row before the conflict, so an update without
    ``provider`` would fail even though the row exists.)
    """
    cols = session_columns(cmd.session_id, cmd.fields)
    if not cols:
        return 0
    names = tuple(cols)
    conn.execute(_session_update_sql(names), (*cols.values(), cmd.session_id))
    if conn.changes():
        return 1
    conn.execute(_insert_sql("sessions", ("id", *names)), (cmd.session_id, *cols.values()))
    return 1


# ---------------------------------------------------------------- messages

MESSAGE_UPSERT = (
    _insert_sql("messages", MESSAGE_COLUMNS)
    + " ON CONFLICT(session_id, seq) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in MESSAGE_COLUMNS[2:])
)


def message_row(session_id: str, m: Message) -> tuple:
    return (
        session_id, m.seq, m.id, m.type, m.content, m.turn_id, m.tool_name, m.tool_input,
        m.tool_output, int(m.is_error), int(m.is_in_progress), m.duration_ms, m.timestamp,
    )


def message_from_row(row: tuple) -> Message:
    """A messages row selected as MESSAGE_COLUMNS[1:] (no session_id)."""
    seq, mid, typ, content, turn_id, tool_name, tool_input, tool_output, err, busy, dur, ts = row
    return Message(
        id=mid, seq=seq, type=typ, content=content, turn_id=turn_id, tool_name=tool_name,
        tool_input=tool_input, tool_output=tool_output, is_error=bool(err),
        is_in_progress=bool(busy), duration_ms=dur, timestamp=ts,
    )


def save_message(conn: apsw.Connection, cmd: SaveMessage) -> int:
    message = cmd.message
    if isinstance(message, dict):
        message = msgspec.convert(message, Message)
    conn.execute(MESSAGE_UPSERT, message_row(cmd.session_id, message))
    return 1


# ---------------------------------------------------------------- approvals

_APPROVAL_REQUEST_COLUMNS = APPROVAL_COLUMNS[:14]  # everything but the decision
# A re-sent request (same id, e.g. replayed after a restart) refreshes an
# undecided row; a decided one is history and stays as decided.
_APPROVAL_UPSERT = (
    _insert_sql("approvals", _APPROVAL_REQUEST_COLUMNS)
    + " ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in _APPROVAL_REQUEST_COLUMNS[1:])
    + " WHERE approvals.decision IS NULL"
)


def approval_row(session_id: str, r: ApprovalRequest) -> tuple:
    return (
        r.id, session_id, r.type, r.method, r.turn_id, r.command, r.cwd, r.file_path, r.diff,
        r.reason, to_json(r.questions), to_json(r.available_decisions), to_json(r.payload),
        r.created_at,
    )


def approval_from_row(row: tuple) -> ApprovalRequest:
    """An approvals row selected as APPROVAL_COLUMNS[:14]."""
    values = dict(zip(_APPROVAL_REQUEST_COLUMNS, row))
    for name in ("questions", "available_decisions", "payload"):
        values[name] = from_json(values[name])
    return msgspec.convert({k: v for k, v in values.items() if v is not None}, ApprovalRequest)


def save_approval(conn: apsw.Connection, cmd: SaveApproval) -> int:
    request = cmd.request
    if isinstance(request, dict):
        request = msgspec.convert(request, ApprovalRequest)
    conn.execute(_APPROVAL_UPSERT, approval_row(cmd.session_id, request))
    return conn.changes()


def decide_approval(conn: apsw.Connection, cmd: DecideApproval) -> int:
    """First decision wins: a late duplicate (e.g. expired after answered) changes nothing."""
    conn.execute(
        "UPDATE approvals SET decision=?, decided_at=? "
        "WHERE id=? AND session_id=? AND decision IS NULL",
        (cmd.decision, cmd.decided_at, cmd.approval_id, cmd.session_id),
    )
    return conn.changes()


# ---------------------------------------------------------------- turns, usage, config, offsets


@lru_cache(maxsize=128)
def _turn_upsert_sql(cols: tuple[str, ...]) -> str:
    base = _insert_sql("turns", ("session_id", "turn_id", *cols))
    if not cols:
        return base + " ON CONFLICT(session_id, turn_id) DO NOTHING"
    sets = ", ".join(f"{c}=excluded.{c}" for c in cols)
    return f"{base} ON CONFLICT(session_id, turn_id) DO UPDATE SET {sets}"


def save_turn(conn: apsw.Connection, cmd: SaveTurn) -> int:
    cols: dict[str, Any] = {}
    for name, value in cmd.fields.items():
        if name not in _TURN_SETTABLE:
            raise ValueError(f"unknown turns column {name!r}")
        cols[name] = to_json(value) if name in TURN_JSON_COLUMNS else value
    conn.execute(_turn_upsert_sql(tuple(cols)), (cmd.session_id, cmd.turn_id, *cols.values()))
    return 1


_TOKEN_INSERT = _insert_sql("token_usage", ("session_id", "observed_at", *TOKEN_COLUMNS))


def save_token_usage(conn: apsw.Connection, cmd: SaveTokenUsage) -> int:
    usage = token_columns(cmd.usage)
    conn.execute(
        _TOKEN_INSERT,
        (cmd.session_id, cmd.observed_at, *(int(usage.get(c, 0)) for c in TOKEN_COUNT_COLUMNS),
         float(usage.get("cost_usd", 0.0))),
    )
    return 1


def set_config_value(conn: apsw.Connection, cmd: SetConfigValue) -> int:
    conn.execute(
        "INSERT INTO config(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (cmd.key_name, cmd.value),
    )
    return 1


_ROLLOUT_UPSERT = (
    _insert_sql("rollout_offsets", ROLLOUT_COLUMNS)
    + " ON CONFLICT(path) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in ROLLOUT_COLUMNS[1:])
)


def save_rollout_offset(conn: apsw.Connection, cmd: SaveRolloutOffset) -> int:
    conn.execute(
        _ROLLOUT_UPSERT,
        (cmd.path, cmd.offset, cmd.session_id, cmd.size, cmd.mtime, int(cmd.ignore_existing),
         time.time()),
    )
    return 1


def run_atomic(conn: apsw.Connection, cmd: Atomic) -> int:
    """Inner commands in order; the caller's savepoint makes them all-or-nothing."""
    return sum(execute(conn, inner) for inner in cmd.commands)


def drop_messages_from(conn: apsw.Connection, cmd: DropMessagesFrom) -> int:
    conn.execute("DELETE FROM messages WHERE session_id=? AND seq>=?", (cmd.session_id, cmd.seq))
    changed = conn.changes()
    conn.executemany("DELETE FROM turns WHERE session_id=? AND turn_id=?",
                     [(cmd.session_id, turn_id) for turn_id in cmd.turn_ids])
    return changed


_COPIED = ", ".join(MESSAGE_COLUMNS[3:])


def copy_messages(conn: apsw.Connection, cmd: CopyMessages) -> int:
    conn.execute(f"INSERT INTO messages({', '.join(MESSAGE_COLUMNS)}) "
                 f"SELECT ?, seq, ? || ':m' || seq, {_COPIED} FROM messages "
                 "WHERE session_id=? AND seq<=?", (cmd.target, cmd.target, cmd.source, cmd.upto_seq))
    return conn.changes()


EXECUTORS: dict[type, Callable[[apsw.Connection, Any], int]] = {
    SaveSession: save_session,
    SaveMessage: save_message,
    SaveApproval: save_approval,
    DecideApproval: decide_approval,
    SaveTurn: save_turn,
    SaveTokenUsage: save_token_usage,
    SetConfigValue: set_config_value,
    SaveRolloutOffset: save_rollout_offset,
    DropMessagesFrom: drop_messages_from,
    CopyMessages: copy_messages,
    Atomic: run_atomic,
}


def execute(conn: apsw.Connection, cmd: Any) -> int:
    """Run one command; returns rows changed. Raises on bad data (the caller skips it)."""
    try:
        executor = EXECUTORS[type(cmd)]
    except KeyError:
        raise TypeError(f"not a persistence command: {type(cmd).__name__}") from None
    return executor(conn, cmd)
