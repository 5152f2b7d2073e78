"""Read queries (control plane: restore, paging, admin), each one indexed.

Split from ``sql.py`` to keep files small; the persistence actor calls these on
its own connection after flushing, so a read sees every write told before it.
"""

from __future__ import annotations

from typing import Any

import apsw

from orbitdock.session.approvals import ID_SEPARATOR
from orbitdock.protocol.models import ApprovalRequest, Message, SessionSummary, TokenUsage
from orbitdock.store.rows import BOOL_FIELDS
from orbitdock.store.sql import (
    APPROVAL_COLUMNS,
    MESSAGE_COLUMNS,
    ROLLOUT_COLUMNS,
    SESSION_COLUMNS,
    SESSION_JSON_COLUMNS,
    TOKEN_COLUMNS,
    TURN_COLUMNS,
    TURN_JSON_COLUMNS,
    approval_from_row,
    from_json,
    message_from_row,
)

SUMMARY_FIELDS = frozenset(SessionSummary.__struct_fields__)
LAST_APPROVAL = "last_approval"
# The highest n of the session's approval ids "<session id>:a<n>-<life>", decided or not:
# a restored session numbers on after it. CAST keeps the digits before the "-<life>".
_NUMBER_AT = f"length(a.session_id) + {len(ID_SEPARATOR) + 1}"  # substr() counts from 1
_LAST_APPROVAL_SQL = (
    f"coalesce((SELECT max(CAST(substr(a.id, {_NUMBER_AT}) AS INTEGER)) "
    "FROM approvals a WHERE a.session_id = sessions.id), 0)"
)
_SESSION_SELECT = f"SELECT {', '.join(SESSION_COLUMNS)}, {_LAST_APPROVAL_SQL} FROM sessions"
_MESSAGE_SELECT = f"SELECT {', '.join(MESSAGE_COLUMNS[1:])} FROM messages"


def _session_dict(row: tuple) -> dict[str, Any]:
    out = dict(zip((*SESSION_COLUMNS, LAST_APPROVAL), row))
    for name in SESSION_JSON_COLUMNS:
        out[name] = from_json(out[name])
    return out


def load_sessions(conn: apsw.Connection, limit: int | None = None,
                  active_only: bool = False) -> list[dict[str, Any]]:
    """Session rows (plus ``last_approval``), newest activity first
    (sessions_last_activity index); ``active_only``: those not ended."""
    where = "WHERE status != 'ended' " if active_only else ""
    rows = conn.execute(
        f"{_SESSION_SELECT} {where}ORDER BY last_activity_at DESC, id LIMIT ?",
        (-1 if limit is None else int(limit),),
    )
    return [_session_dict(row) for row in rows]


def load_unsettled_sessions(conn: apsw.Connection, limit: int | None = None
                            ) -> list[dict[str, Any]]:
    """Sessions a daemon's death left unsettled: not ended, driven by us, with a turn or an
    undecided approval (their backend is gone; restoring closes them as interrupted)."""
    rows = conn.execute(
        f"{_SESSION_SELECT} WHERE status != 'ended' AND integration_mode != 'passive' AND "
        "(current_turn_id IS NOT NULL OR EXISTS (SELECT 1 FROM approvals p WHERE "
        "p.session_id = sessions.id AND p.decision IS NULL)) "
        "ORDER BY last_activity_at DESC, id LIMIT ?",
        (-1 if limit is None else int(limit),),
    )
    return [_session_dict(row) for row in rows]


def load_session_ids(conn: apsw.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT id FROM sessions")]


def load_owned_threads(conn: apsw.Connection) -> dict[str, str]:
    """codex thread id -> the direct session that owns it (its rollout is not passive)."""
    return dict(conn.execute(
        "SELECT thread_id, id FROM sessions "
        "WHERE integration_mode = 'direct' AND thread_id IS NOT NULL"))


_SUMMARY_COLUMNS = tuple(c for c in SESSION_COLUMNS if c in SUMMARY_FIELDS or c in TOKEN_COLUMNS)
_PENDING_SQL = ("(SELECT count(*) FROM approvals a "
                "WHERE a.session_id = sessions.id AND a.decision IS NULL)")
_SUMMARY_SELECT = f"SELECT {', '.join(_SUMMARY_COLUMNS)}, {_PENDING_SQL} FROM sessions"


def _summary(row: tuple) -> SessionSummary:
    fields = dict(zip(_SUMMARY_COLUMNS, row))
    usage = TokenUsage(**{k: fields.pop(k) or 0 for k in TOKEN_COLUMNS})
    fields = {k: v for k, v in fields.items() if v is not None}
    for name in BOOL_FIELDS:  # SQLite stores them as 0/1
        if name in fields:
            fields[name] = bool(fields[name])
    return SessionSummary(**fields, token_usage=usage, pending_approvals=row[-1])


def load_summaries(conn: apsw.Connection, active_only: bool = True) -> list[SessionSummary]:
    """List rows straight from the session rows (no actor needed), newest activity first."""
    where = "WHERE status != 'ended' " if active_only else ""
    return [_summary(row) for row in conn.execute(
        f"{_SUMMARY_SELECT} {where}ORDER BY last_activity_at DESC, id DESC")]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_summaries(conn: apsw.Connection, *, status: str = "all", since: float | None = None,
                   provider: str | None = None, project: str | None = None,
                   search: str | None = None, limit: int = 50,
                   before: tuple[float, str] | None = None) -> tuple[list[SessionSummary], bool]:
    """One page of the session list, newest activity first, and whether more follow.

    ``before`` is the (last_activity_at, id) of the previous page's last row (keyset
    paging: each page is one range scan, however deep). ``search`` matches names and
    the first prompt, case-insensitively; ``project`` the project path or name."""
    where, args = [], []
    if status == "active":
        where.append("status != 'ended'")
    elif status == "ended":
        where.append("status = 'ended'")
    if since is not None:
        where.append("last_activity_at >= ?")
        args.append(float(since))
    if provider:
        where.append("provider = ?")
        args.append(provider)
    if project:
        where.append("(project_path = ? OR project_name = ?)")
        args += [project, project]
    if search:
        where.append("(display_name LIKE ? ESCAPE '\\' OR custom_name LIKE ? ESCAPE '\\' "
                     "OR first_prompt LIKE ? ESCAPE '\\')")
        args += [_like(search)] * 3
    if before is not None:
        where.append("(last_activity_at, id) < (?, ?)")
        args += [float(before[0]), before[1]]
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = conn.execute(f"{_SUMMARY_SELECT} {clause}ORDER BY last_activity_at DESC, id DESC "
                        "LIMIT ?", (*args, int(limit) + 1)).fetchall()
    return [_summary(row) for row in rows[:limit]], len(rows) > limit


def load_session(conn: apsw.Connection, session_id: str) -> dict[str, Any] | None:
    for row in conn.execute(f"{_SESSION_SELECT} WHERE id=?", (session_id,)):
        return _session_dict(row)
    return None


def load_messages(
    conn: apsw.Connection, session_id: str, limit: int, before_seq: int | None = None
) -> list[Message]:
    """The ``limit`` latest messages below ``before_seq``, in ascending seq.

    One backwards range scan of the clustered (session_id, seq) key.
    """
    if before_seq is None:
        rows = conn.execute(
            f"{_MESSAGE_SELECT} WHERE session_id=? ORDER BY seq DESC LIMIT ?",
            (session_id, int(limit)),
        ).fetchall()
    else:
        rows = conn.execute(
            f"{_MESSAGE_SELECT} WHERE session_id=? AND seq<? ORDER BY seq DESC LIMIT ?",
            (session_id, int(before_seq), int(limit)),
        ).fetchall()
    rows.reverse()
    return [message_from_row(row) for row in rows]


def count_messages(conn: apsw.Connection, session_id: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM messages WHERE session_id=?", (session_id,)
    ).fetchall()[0][0]


def load_pending_approvals(conn: apsw.Connection, session_id: str) -> list[ApprovalRequest]:
    """Undecided requests, oldest first: the session's FIFO queue after a restart."""
    rows = conn.execute(
        f"SELECT {', '.join(APPROVAL_COLUMNS[:14])} FROM approvals "
        "WHERE session_id=? AND decision IS NULL ORDER BY created_at, rowid",
        (session_id,),
    )
    return [approval_from_row(row) for row in rows]


def load_turns(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    """Turn rows of a session in start order (a turn without started_at sorts first)."""
    cols = ("session_id", "turn_id", *TURN_COLUMNS)
    rows = conn.execute(
        f"SELECT {', '.join(cols)} FROM turns WHERE session_id=? "
        "ORDER BY coalesce(started_at, 0), turn_id",
        (session_id,),
    )
    out = []
    for row in rows:
        turn = dict(zip(cols, row))
        for name in TURN_JSON_COLUMNS:
            turn[name] = from_json(turn[name])
        out.append(turn)
    return out


def load_rollout_offsets(conn: apsw.Connection) -> dict[str, dict[str, Any]]:
    """path -> {offset, session_id, size, mtime, ignore_existing, updated_at}."""
    out: dict[str, dict[str, Any]] = {}
    for row in conn.execute(f"SELECT {', '.join(ROLLOUT_COLUMNS)} FROM rollout_offsets"):
        entry = dict(zip(ROLLOUT_COLUMNS[1:], row[1:]))
        entry["ignore_existing"] = bool(entry["ignore_existing"])
        out[row[0]] = entry
    return out


def get_config_value(conn: apsw.Connection, key: str) -> str | None:
    for (value,) in conn.execute("SELECT value FROM config WHERE key=?", (key,)):
        return value
    return None
