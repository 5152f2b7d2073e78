"""A session restored from SQLite keeps one row per tool across the restart.

Item ids (backend id -> message id) live only in the SessionCore's memory, so a
completion that arrives after a restart for a tool started before it must find
the tool's row some other way. These tests restore through a real database
(write the core's commands with the store's executors, read them back the way
the supervisor does), because that is the only state a restarted actor has.
"""

from __future__ import annotations

from pathlib import Path

from orbitdock.config import PersistenceConfig
from orbitdock.connectors import events as be
from orbitdock.protocol.models import SessionState
from orbitdock.session.core import SessionCore
from orbitdock.store import queries, schema, sql
from orbitdock.store.rows import state_from_row

SID = "thread-1"
MEMORY_MESSAGES = 200


class Store:
    """One SQLite file; ``save`` commits a core's drained commands, ``restore`` reads them back."""

    def __init__(self, path: Path) -> None:
        self.conn = schema.open_database(path, PersistenceConfig())

    def save(self, core: SessionCore) -> None:
        _, commands = core.drain()
        with self.conn:
            for command in commands:
                sql.execute(self.conn, command)

    def restore(self) -> SessionCore:
        row = queries.load_session(self.conn, SID)
        state = state_from_row(row, queries.load_messages(self.conn, SID, MEMORY_MESSAGES),
                               queries.load_pending_approvals(self.conn, SID), MEMORY_MESSAGES)
        core = SessionCore(state, clock=lambda: 100.0, last_approval=row[queries.LAST_APPROVAL])
        core.reset_after_restart("orbitdockd restarted while this turn ran")
        return core

    def tool_rows(self) -> list[tuple]:
        return self.conn.execute(
            "SELECT seq, tool_name, tool_output, is_in_progress FROM messages "
            "WHERE session_id=? AND type='tool' ORDER BY seq", (SID,)).fetchall()


def started_core(store: Store, *events) -> SessionCore:
    core = SessionCore(SessionState(id=SID, provider="codex", integration_mode="passive"),
                       clock=lambda: 1.0)
    opening = (be.ThreadStarted(SID, cwd="/work/proj"), be.TurnStarted("turn-1"),
               be.UserMessage("run the tests", "u1"))
    for event in (*opening, *events):
        core.handle(event)
    store.save(core)
    return core


def test_completion_after_a_restart_updates_the_row_the_start_made(tmp_path):
    store = Store(tmp_path / "orbitdock.db")
    started_core(store, be.ToolStarted("call-1", "Shell", "pytest -q"))
    core = store.restore()
    assert not core.state.messages[-1].is_in_progress  # the restart closed the open turn

    core.handle(be.ToolCompleted("call-1", output="3 passed", tool_name="Shell"))
    core.handle(be.AgentMessage("a1", "all green"))
    store.save(core)

    assert store.tool_rows() == [(2, "Shell", "3 passed", 0)]
    assert core.state.tool_count == 1 and core.state.last_tool == "Shell"
    assert [m.type for m in core.state.messages] == ["user", "tool", "assistant"]


def test_parallel_calls_match_by_name_and_input_else_the_newest_unclaimed(tmp_path):
    store = Store(tmp_path / "orbitdock.db")
    started_core(store, be.ToolStarted("call-1", "Shell", "make"),
                 be.ToolStarted("call-2", "Edit", "*** Begin Patch ..."),
                 be.ToolStarted("call-3", "Shell", "make test"))
    core = store.restore()

    # The rollout parser repeats the input when it never saw the start (resumed mid-file).
    core.handle(be.ToolCompleted("call-1", output="built", tool_name="Shell", tool_input="make"))
    core.handle(be.ToolCompleted("call-3", output="tests ok", tool_name="Shell"))
    core.handle(be.ToolCompleted("call-2", output="patched", tool_name="Edit",
                                 tool_input="a.py"))  # FileChange: paths, not the patch
    store.save(core)

    assert store.tool_rows() == [(2, "Shell", "built", 0), (3, "Edit", "patched", 0),
                                 (4, "Shell", "tests ok", 0)]
    assert core.state.tool_count == 3


def test_a_completion_without_a_restored_start_still_gets_its_own_row(tmp_path):
    store = Store(tmp_path / "orbitdock.db")
    started_core(store, be.ToolStarted("call-1", "Shell", "ls"),
                 be.ToolCompleted("call-1", output="a b"))
    core = store.restore()

    # A finished tool is never reused, and neither is another tool's open row.
    core.handle(be.ToolCompleted("ws-1", tool_name="WebSearch", tool_input="pykka"))
    core.handle(be.ToolCompleted("call-9", output="c", tool_name="Shell"))
    store.save(core)

    assert store.tool_rows() == [(2, "Shell", "a b", 0), (3, "WebSearch", None, 0),
                                 (4, "Shell", "c", 0)]


def test_rows_a_restart_closed_are_not_reused_once_a_new_turn_starts(tmp_path):
    store = Store(tmp_path / "orbitdock.db")
    started_core(store, be.ToolStarted("call-1", "Shell", "sleep 100"))
    core = store.restore()

    core.handle(be.TurnStarted("turn-2"))
    core.handle(be.ToolCompleted("call-7", output="done", tool_name="Shell"))
    store.save(core)

    rows = store.tool_rows()
    assert [r[2] for r in rows] == [None, "done"]  # the old row stays as the restart left it


def test_approval_ids_go_on_after_the_highest_the_session_ever_had(tmp_path):
    """With every approval decided nothing pending is left to count from: a reused
    a1 would be refused by the approvals upsert, which keeps the decided row."""
    store = Store(tmp_path / "orbitdock.db")
    core = started_core(store)
    for key, command, decision in (("k1", "first", "accept"), ("k2", "other", "decline")):
        core.handle(be.ApprovalRequest(key, "exec", command=command))
        approval_id = core.state.approvals[0].id
        core.begin_decision(approval_id, decision)
        core.finish_decision(approval_id, accepted=True)
    store.save(core)
    core = store.restore()

    core.handle(be.TurnStarted("turn-2"))
    core.handle(be.ApprovalRequest("k3", "exec", command="second"))
    store.save(core)

    assert [a.id for a in core.state.approvals] == [f"{SID}:a3"]
    assert store.conn.execute(
        "SELECT id, command, decision FROM approvals ORDER BY id").fetchall() == [
        (f"{SID}:a1", "first", "accept"), (f"{SID}:a2", "other", "decline"),
        (f"{SID}:a3", "second", None)]
