"""Watcher -> session actor routes: order across the supervisor fence and across a crash.

The unit tests drive ``SessionRoutes`` with fake actors. The others run a real daemon
in this process (its actors, SQLite file and gateway) following a rollout being
appended to: its passive session's actor crashes mid-stream, or one of its events
cannot be applied; every line must still become exactly one message row, in order.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import apsw
import pykka
import pytest

from actors.daemon import Daemon
from actors.session import SessionActor
from orbitdock.client import Client, RemoteError, find_daemon
from orbitdock.config import Config
from orbitdock.protocol import messages as m
from orbitdock.rollout.routes import SessionRoutes
from orbitdock.session.core import SessionCore

WAIT_S = 15.0
CRASH_AFTER_S = 0.2


class FakeRef:
    """Records what it was told; raises ActorDeadError once ``dead``."""

    def __init__(self) -> None:
        self.told: list[Any] = []
        self.dead = False

    def tell(self, message: Any) -> None:
        if self.dead:
            raise pykka.ActorDeadError("dead")
        self.told.append(message)


def make_routes():
    via, asked = [], []
    return SessionRoutes(via.append, asked.append), via, asked


def test_first_message_goes_through_the_supervisor_and_later_ones_wait_for_the_answer():
    routes, via, asked = make_routes()
    actor = FakeRef()
    routes.send("s1", "b1")
    routes.send("s1", "b2")  # the answer is out: held, not sent anywhere yet
    assert via == ["b1"] and asked == ["s1"] and actor.told == []
    routes.answer("s1", actor)
    routes.send("s1", "b3")
    assert via == ["b1"] and actor.told == ["b2", "b3"] and asked == ["s1"]


def test_a_dead_actor_holds_messages_until_its_successor_is_named():
    routes, via, asked = make_routes()
    old, new = FakeRef(), FakeRef()
    routes.send("s1", "b1")
    routes.answer("s1", old)
    old.dead = True
    routes.send("s1", "b2")  # fails on the dead actor: held, and the route asked again
    routes.send("s1", "b3")
    assert asked == ["s1", "s1"] and via == ["b1"]
    routes.answer("s1", new)
    assert new.told == ["b2", "b3"]


def test_a_direct_sessions_thread_stays_with_the_supervisor_and_no_session_asks_again():
    routes, via, asked = make_routes()
    routes.send("own", "b1")
    routes.answer("own", None, passive=False)
    routes.send("own", "b2")
    routes.send("nobody", "c1")
    routes.send("nobody", "c2")
    routes.answer("nobody", None)  # no such session: held messages go on to the supervisor
    routes.send("nobody", "c3")
    assert via == ["b1", "b2", "c1", "c2", "c3"]
    assert asked == ["own", "nobody", "nobody"]


# ------------------------------------------------------------------ a real daemon in-process
def meta_line(thread_id: str, cwd: str) -> str:
    return json.dumps({"timestamp": "2026-11-25T00:00:00.000Z", "type": "session_meta",
                       "payload": {"id": thread_id, "cwd": cwd, "originator": "codex_cli_rs",
                                   "cli_version": "0.169.0", "source": "cli"}}) + "\n"


def agent_line(n: int) -> str:
    return json.dumps({"timestamp": "2026-11-25T00:00:01.000Z", "type": "event_msg", "payload": {
        "type": "item_completed", "turn_id": "turn-1",
        "item": {"type": "AgentMessage", "id": f"msg_{n}",
                 "content": [{"type": "Text", "text": f"line {n}"}]}}}) + "\n"


def assistant_rows(db_path: Path, sid: str) -> list[str]:
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.set_busy_timeout(1000)
        return [row[0] for row in conn.execute(
            "SELECT content FROM messages WHERE session_id=? AND type='assistant' ORDER BY seq",
            (sid,))]
    finally:
        conn.close()


def wait_for(predicate, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def today(tmp_path: Path) -> Path:
    """Today's rollout folder: the size sweep looks in recent day folders only."""
    return tmp_path / "codex" / "sessions" / time.strftime("%Y/%m/%d")


@pytest.fixture
def daemon_in_process(tmp_path, monkeypatch):
    original = SessionActor.on_receive

    def on_receive(self, message):
        if message == "test:crash":
            time.sleep(CRASH_AFTER_S)  # batches queue up in the inbox meanwhile
            raise RuntimeError("crash requested by the test")
        return original(self, message)

    monkeypatch.setattr(SessionActor, "on_receive", on_receive)
    cfg = Config()
    cfg.paths.data_dir = str(tmp_path / "home")
    cfg.paths.codex_home = str(tmp_path / "codex")
    cfg.codex.binary = str(tmp_path / "no-codex")  # passive sessions only
    cfg.sessions.restart_backoff_s = 0.2  # the crash window, with lines still coming
    cfg.watcher.coalesce_ms = 2.0
    today(tmp_path).mkdir(parents=True)
    daemon = Daemon(cfg)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_a_crash_mid_stream_keeps_every_line_once_and_in_order(daemon_in_process, tmp_path):
    daemon = daemon_in_process
    tid = str(uuid.uuid4())
    path = today(tmp_path) / f"rollout-2026-11-25T00-00-00-{tid}.jsonl"
    path.write_text(meta_line(tid, str(tmp_path)) + agent_line(0))  # meta alone makes no session
    total, crash_at = 300, 120
    with Client(find_daemon(daemon.cfg), timeout=5.0) as client:
        wait_for(lambda: session_ref(tid) is not None)

        def append_lines():
            with open(path, "a") as fh:
                for n in range(1, total):
                    fh.write(agent_line(n))
                    fh.flush()
                    if n == crash_at:
                        session_ref(tid).tell("test:crash")
                    time.sleep(0.002)

        writer = threading.Thread(target=append_lines)
        writer.start()
        writer.join(WAIT_S)
        assert not writer.is_alive()
        db_path = daemon.layout.db_path
        wait_for(lambda: len(assistant_rows(db_path, tid)) >= total)
        assert assistant_rows(db_path, tid) == [f"line {n}" for n in range(total)]
        status = client.request(m.RolloutsStatus()).report
        assert status["counters"]["direct_sends"] > 0
        assert status["counters"]["routes_asked"] >= 2  # the first contact, and after the crash
        snapshot = client.request(m.SubscribeSession(session_id=tid)).session
        assert [msg.content for msg in snapshot.messages if msg.type == "assistant"][-1] == \
            f"line {total - 1}"


def session_ref(session_id: str) -> pykka.ActorRef | None:
    for ref in pykka.ActorRegistry.get_by_class(SessionActor):
        try:
            if ref.ask("snapshot", timeout=WAIT_S).id == session_id:
                return ref
        except pykka.ActorDeadError:
            pass  # a crashed one on its way out
    return None


def test_an_event_the_session_cannot_apply_is_skipped_and_the_rest_kept(daemon_in_process,
                                                                         tmp_path, monkeypatch,
                                                                         caplog):
    original = SessionCore.handle

    def handle(self, event, now=None):
        if getattr(event, "text", None) == "line 2":
            raise ValueError("a line this build cannot apply")
        return original(self, event, now=now)

    monkeypatch.setattr(SessionCore, "handle", handle)
    tid = str(uuid.uuid4())
    path = today(tmp_path) / f"rollout-2026-11-25T00-00-00-{tid}.jsonl"
    # one write: all five lines arrive in one batch, around the one that fails
    path.write_text(meta_line(tid, str(tmp_path)) + "".join(agent_line(n) for n in range(5)))
    db_path = daemon_in_process.layout.db_path
    wait_for(lambda: db_path.exists() and len(assistant_rows(db_path, tid)) >= 4)
    with open(path, "a") as fh:
        fh.write(agent_line(5))
    wait_for(lambda: len(assistant_rows(db_path, tid)) >= 5)
    assert assistant_rows(db_path, tid) == [f"line {n}" for n in (0, 1, 3, 4, 5)]
    assert session_ref(tid) is not None  # the same actor: it never crashed
    assert any("could not be applied; skipped (code internal)" in r.getMessage()
               for r in caplog.records)


def test_a_session_actor_that_cannot_start_is_given_up_without_holding_its_lines(
        daemon_in_process, tmp_path, monkeypatch):
    def broken_start(self):
        raise RuntimeError("cannot start in this test")

    monkeypatch.setattr(SessionActor, "_start", broken_start)
    tid = str(uuid.uuid4())
    path = today(tmp_path) / f"rollout-2026-11-25T00-00-00-{tid}.jsonl"
    path.write_text(meta_line(tid, str(tmp_path)) + agent_line(0))
    with Client(find_daemon(daemon_in_process.cfg), timeout=5.0) as client:
        def refused() -> bool:
            try:
                client.request(m.SubscribeSession(session_id=tid))
            except RemoteError as exc:
                return exc.code == "session_start_failed" and "cannot start" in str(exc)
            return False

        wait_for(refused)  # every restart failed too: given up, with a coded error
        with open(path, "a") as fh:
            for n in range(1, 50):
                fh.write(agent_line(n))
        # the watcher holds nothing for it: its lines go to the supervisor, which drops
        # them uncommitted (the file keeps them for the next daemon start)
        wait_for(lambda: client.request(m.RolloutsStatus()).report["files"][0]["lag"] == 0)
        assert client.request(m.RolloutsStatus()).report["counters"]["direct_sends"] == 0
        assert client.request(m.GetStatus()) is not None  # the daemon carries on


def test_a_passivated_passive_sessions_next_lines_wake_it_and_keep_their_order(tmp_path):
    cfg = Config()
    cfg.paths.data_dir = str(tmp_path / "home")
    cfg.paths.codex_home = str(tmp_path / "codex")
    cfg.codex.binary = str(tmp_path / "no-codex")  # passive sessions only
    cfg.watcher.coalesce_ms = 2.0
    cfg.sessions.passivate_after_s = 0.3
    cfg.sessions.passivate_check_s = 0.05
    today(tmp_path).mkdir(parents=True)
    daemon = Daemon(cfg)
    daemon.start()
    try:
        def activity() -> dict:
            return daemon.refs["supervisor"].ask("activity", timeout=WAIT_S)

        tid = str(uuid.uuid4())
        path = today(tmp_path) / f"rollout-2026-11-25T00-00-00-{tid}.jsonl"
        path.write_text(meta_line(tid, str(tmp_path)) + agent_line(0))
        db_path = daemon.layout.db_path
        wait_for(lambda: db_path.exists() and assistant_rows(db_path, tid) == ["line 0"])
        wait_for(lambda: activity()["dormant"] == 1)  # the watcher's route is now stale
        assert session_ref(tid) is None
        for n in range(1, 60, 10):
            with open(path, "a") as fh:
                fh.write("".join(agent_line(k) for k in range(n, n + 10)))
            time.sleep(0.01)
        wait_for(lambda: len(assistant_rows(db_path, tid)) >= 61)
        assert assistant_rows(db_path, tid) == [f"line {n}" for n in range(61)]
        assert activity()["activations"] >= 1
        with Client(find_daemon(cfg), timeout=5.0) as client:
            state = client.request(m.SubscribeSession(session_id=tid)).session
            assert [x.content for x in state.messages if x.type == "assistant"][-1] == "line 60"
            assert client.request(m.RolloutsStatus()).report["files"][0]["lag"] == 0
    finally:
        daemon.stop()
