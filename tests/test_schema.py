"""Schema and migrations: idempotent, transactional, and matching the code's column lists."""

from __future__ import annotations

import apsw
import pytest

from orbitdock.config import PersistenceConfig
from orbitdock.store import queries, schema, sql


@pytest.fixture
def pcfg() -> PersistenceConfig:
    return PersistenceConfig()


def _columns(conn: apsw.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))


def test_fresh_database_gets_latest_version_and_pragmas(tmp_path, pcfg):
    conn = schema.open_database(tmp_path / "a" / "orbitdock.db", pcfg)
    try:
        assert schema.user_version(conn) == schema.latest_version() == len(schema.migrations())
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"sessions", "messages", "approvals", "turns", "token_usage", "config",
                "rollout_offsets"} <= tables
        pragma = lambda name: conn.execute(f"PRAGMA {name}").fetchall()[0][0]  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("wal_autocheckpoint") == 0  # checkpoints run off the write path
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("busy_timeout") == pcfg.busy_timeout_ms
    finally:
        conn.close()


def test_migrations_are_idempotent_and_reopen_keeps_data(tmp_path, pcfg):
    path = tmp_path / "orbitdock.db"
    conn = schema.open_database(path, pcfg)
    assert schema.apply_migrations(conn) == 0  # second application: nothing to do
    conn.execute("INSERT INTO config(key, value) VALUES('k', 'v')")
    conn.close()
    conn = schema.open_database(path, pcfg)  # reopen an existing, migrated file
    try:
        assert schema.apply_migrations(conn) == 0
        assert schema.user_version(conn) == schema.latest_version()
        assert queries.get_config_value(conn, "k") == "v"
    finally:
        conn.close()


def test_a_failing_migration_rolls_back_entirely(tmp_path, pcfg, monkeypatch):
    path = tmp_path / "orbitdock.db"
    schema.open_database(path, pcfg).close()
    good = schema.migrations()
    bad = schema.Migration(len(good) + 1, "9999_bad.sql",
                           "CREATE TABLE half_done(a); INSERT INTO no_such_table VALUES(1);")
    monkeypatch.setattr(schema, "migrations", lambda: [*good, bad])
    conn = schema.connect(path, pcfg, writer=True)
    try:
        with pytest.raises(apsw.SQLError):
            schema.apply_migrations(conn)
        assert schema.user_version(conn) == len(good)
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name='half_done'").fetchall()
        assert conn.get_autocommit()  # no transaction left open
    finally:
        conn.close()


def test_a_newer_database_is_refused(tmp_path, pcfg):
    path = tmp_path / "orbitdock.db"
    conn = schema.open_database(path, pcfg)
    conn.execute(f"PRAGMA user_version={schema.latest_version() + 1}")
    conn.close()
    with pytest.raises(schema.SchemaError, match="newer"):
        schema.open_database(path, pcfg)


def test_synchronous_must_be_a_known_mode(tmp_path):
    with pytest.raises(schema.SchemaError, match="synchronous"):
        schema.connect(tmp_path / "x.db", PersistenceConfig(synchronous="FAST; DROP"), writer=True)


def test_column_lists_match_the_schema(tmp_path, pcfg):
    conn = schema.open_database(tmp_path / "orbitdock.db", pcfg)
    try:
        assert _columns(conn, "sessions") == sql.SESSION_COLUMNS
        assert _columns(conn, "messages") == sql.MESSAGE_COLUMNS
        assert _columns(conn, "approvals") == sql.APPROVAL_COLUMNS
        assert _columns(conn, "turns") == ("session_id", "turn_id", *sql.TURN_COLUMNS)
        assert _columns(conn, "rollout_offsets") == sql.ROLLOUT_COLUMNS
        assert set(sql.TOKEN_COLUMNS) < set(_columns(conn, "token_usage"))
    finally:
        conn.close()


def test_session_persisted_fields_are_columns():
    """The session core persists these fields; each must be a sessions column."""
    from orbitdock.session.row import PERSISTED_FIELDS

    assert set(PERSISTED_FIELDS) <= set(sql.SESSION_COLUMNS)

@pytest.mark.parametrize(("query", "plan_has"), [
    ("SELECT * FROM messages WHERE session_id='s' AND seq<5 ORDER BY seq DESC LIMIT 10",
     "PRIMARY KEY"),
    ("SELECT * FROM sessions ORDER BY last_activity_at DESC LIMIT 10", "sessions_last_activity"),
    ("SELECT * FROM approvals WHERE session_id='s' AND decision IS NULL ORDER BY created_at",
     "approvals_"),
    ("SELECT * FROM turns WHERE session_id='s'", "PRIMARY KEY"),
    ("SELECT * FROM token_usage WHERE session_id='s' ORDER BY observed_at", "token_usage_session"),
])
def test_reads_use_an_index(tmp_path, pcfg, query, plan_has):
    conn = schema.open_database(tmp_path / "orbitdock.db", pcfg)
    try:
        plan = " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
        assert plan_has in plan, plan
        assert "SCAN" not in plan.replace("SCAN sessions USING INDEX", ""), plan
    finally:
        conn.close()
