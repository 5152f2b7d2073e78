"""Passivation: idle sessions give back their actor, thread and backend; any message wakes them.

An in-process daemon (real sockets, a real SQLite file, scripted sessions) with
passivation timings shrunk to tenths of a second, so the supervisor's state can be
asked directly (``"activity"``) and a passivated actor's backend callback kept to
play a late backend event.
"""

from __future__ import annotations

import threading
import time

import pytest

from actors.daemon import Daemon
from actors.session import SessionActor
from orbitdock.client import Client, RemoteError, Subscription, find_daemon
from orbitdock.config import Config
from orbitdock.connectors import events as be
from orbitdock.connectors.scripted import ScriptedConnector
from orbitdock.protocol import messages as m

WAIT_S = 10.0
IDLE_S = 0.3


def wait_for(predicate, timeout: float = WAIT_S, poll=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if poll is not None:
            poll(0.02)
        else:
            time.sleep(0.02)
    assert predicate(), "condition not met in time"


@pytest.fixture
def daemon(tmp_path):
    cfg = Config()
    cfg.paths.data_dir = str(tmp_path / "home")
    cfg.paths.codex_home = str(tmp_path / "codex")
    cfg.codex.binary = str(tmp_path / "no-codex")  # scripted sessions only
    cfg.watcher.enabled = False
    cfg.sessions.passivate_after_s = IDLE_S
    cfg.sessions.passivate_ended_after_s = 0.1
    cfg.sessions.passivate_check_s = 0.05
    d = Daemon(cfg)
    d.start()
    clients = []

    def client() -> Client:
        c = Client(find_daemon(cfg), timeout=5.0)
        clients.append(c)
        return c

    def subscription() -> Subscription:
        s = Subscription(find_daemon(cfg), config=cfg)
        clients.append(s)
        return s

    d.client, d.subscription = client, subscription
    try:
        yield d
    finally:
        for c in clients:
            c.close()
        d.stop()


def activity(d) -> dict:
    return d.refs["supervisor"].ask("activity", timeout=WAIT_S)


def session_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("SessionActor"))


def create(client: Client, script=None) -> str:
    return client.request(m.CreateSession(provider="scripted", cwd="/tmp/p", script=script)
                          ).session.id


def test_an_idle_session_is_passivated_and_a_request_brings_it_back_without_a_gap(daemon):
    client = daemon.client()
    sid = create(client)
    sub = daemon.subscription()
    mirror = sub.watch_session(sid)
    assert sub.wait_synced(WAIT_S)
    client.request(m.SendMessage(session_id=sid, content="first"))
    wait_for(lambda: mirror.state is not None and mirror.state.work_status == "reply",
             poll=sub.poll)
    wait_for(lambda: activity(daemon)["dormant"] == 1)
    assert session_threads() == 0  # its thread is gone, and no socket was ever its own
    rev = mirror.state.revision
    # The list still shows it (the gateway's list does not depend on actors).
    assert [s.id for s in client.request(m.SubscribeList()).sessions] == [sid]

    client.request(m.SendMessage(session_id=sid, content="second"))  # wakes it, answered
    wait_for(lambda: [x.content for x in mirror.state.messages if x.type == "user"]
             == ["first", "second"] and mirror.state.work_status == "reply", poll=sub.poll)
    assert mirror.state.revision > rev
    assert sub.stats.gaps == 0 and sub.stats.resyncs == 0  # revisions went on from `rev`
    assert activity(daemon)["activations"] == 1
    snapshot = client.request(m.SubscribeSession(session_id=sid)).session
    assert snapshot.revision == mirror.state.revision


def test_a_late_backend_event_wakes_a_passivated_session(daemon, monkeypatch):
    emits = []  # the backend's callback, as its connector thread holds it
    original = ScriptedConnector.start

    def start(self, emit, **kwargs):
        emits.append(emit)
        return original(self, emit, **kwargs)

    monkeypatch.setattr(ScriptedConnector, "start", start)
    client = daemon.client()
    sid = create(client)
    sub = daemon.subscription()
    mirror = sub.watch_session(sid)
    assert sub.wait_synced(WAIT_S)
    (emit,) = emits
    wait_for(lambda: activity(daemon)["dormant"] == 1)
    emit(be.NameUpdated("named by the backend"))
    wait_for(lambda: mirror.state.custom_name == "named by the backend"
             or mirror.state.display_name == "named by the backend", poll=sub.poll)
    assert activity(daemon)["activations"] == 1
    assert sub.stats.gaps == 0 and sub.stats.resyncs == 0


def test_a_pending_approval_keeps_a_session_live_and_a_late_decision_is_answered(daemon):
    client = daemon.client()
    sid = create(client, script=[{"approval": "exec", "command": "make"}])
    client.request(m.SendMessage(session_id=sid, content="build it"))
    wait_for(lambda: client.request(m.SubscribeSession(session_id=sid)).session.approvals)
    approval = client.request(m.SubscribeSession(session_id=sid)).session.approvals[0]
    time.sleep(IDLE_S * 3)  # idle, but its backend waits on the user: not passivated
    assert activity(daemon)["dormant"] == 0
    reply = client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    assert reply.outcome == "applied"
    wait_for(lambda: client.request(
        m.SubscribeSession(session_id=sid)).session.work_status == "reply")
    wait_for(lambda: activity(daemon)["dormant"] == 1)
    # A second decision for the passivated session wakes it and is answered, not dropped.
    with pytest.raises(RemoteError) as info:
        client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    assert info.value.code == "stale_approval"
    assert activity(daemon)["activations"] == 1


def test_an_ended_session_leaves_the_live_list_and_stays_in_the_history(daemon):
    client = daemon.client()
    sid, other = create(client), create(client)
    sub = daemon.subscription()
    sub.watch_list()
    assert sub.wait_synced(WAIT_S)
    client.request(m.SendMessage(session_id=sid, content="hello"))
    wait_for(lambda: client.request(
        m.SubscribeSession(session_id=sid)).session.work_status == "reply")
    client.request(m.EndSession(session_id=sid))
    wait_for(lambda: activity(daemon)["dormant"] >= 1)

    def live() -> set[str]:
        return {s.id for s in client.request(m.SubscribeList()).sessions}
    wait_for(lambda: live() == {other})
    wait_for(lambda: set(sub.summaries) == {other}, poll=sub.poll)  # the mirror agrees
    ended = client.request(m.ListSessions(status="ended")).sessions
    assert [s.id for s in ended] == [sid] and ended[0].status == "ended"
    page = client.request(m.GetMessages(session_id=sid))  # history: no need to wake it
    assert [x.content for x in page.messages if x.type == "user"] == ["hello"]
    woken = activity(daemon)["activations"]
    snapshot = client.request(m.SubscribeSession(session_id=sid)).session
    assert snapshot.status == "ended" and activity(daemon)["activations"] == woken + 1
    assert live() == {other}  # looking at it does not list it again
    resumed = client.request(m.ResumeSession(session_id=sid)).session
    assert resumed.status == "active"
    wait_for(lambda: live() == {sid, other})
    wait_for(lambda: set(sub.summaries) == {sid, other}, poll=sub.poll)
    assert sub.stats.gaps == 0


def test_a_session_whose_actor_cannot_start_answers_its_create_with_the_cause(
        daemon, monkeypatch):
    def broken_start(self, emit, **kwargs):
        raise RuntimeError("no backend for this test")

    monkeypatch.setattr(ScriptedConnector, "start", broken_start)
    client = daemon.client()
    started = time.monotonic()
    with pytest.raises(RemoteError) as info:
        create(client)
    assert info.value.code == "session_start_failed"
    assert "no backend for this test" in info.value.message
    assert info.value.session_id and time.monotonic() - started < 2.0
    assert client.request(m.GetStatus()) is not None  # the daemon carries on


def test_list_sessions_pages_and_filters_the_history_from_the_database(daemon):
    client = daemon.client()
    ids = [create(client) for _ in range(7)]
    client.request(m.RenameSession(session_id=ids[0], name="Fix the flaky build"))
    for sid in ids[:4]:
        client.request(m.EndSession(session_id=sid))
    wait_for(lambda: activity(daemon)["dormant"] == 4)

    def pages(**filters) -> list[list[str]]:
        out, cursor = [], {}
        while True:
            page = client.request(m.ListSessions(limit=2, **filters, **cursor))
            out.append([s.id for s in page.sessions])
            if not page.has_more:
                return out
            last = page.sessions[-1]
            cursor = {"before_activity": last.last_activity_at, "before_id": last.id}

    ended = pages(status="ended")
    assert [len(p) for p in ended] == [2, 2]
    assert sorted(sum(ended, [])) == sorted(ids[:4])
    assert sorted(sum(pages(status="active"), [])) == sorted(ids[4:])
    assert len(sum(pages(), [])) == 7
    assert sum(pages(search="flaky"), []) == [ids[0]]
    assert sum(pages(provider="codex"), []) == []
    assert len(sum(pages(project="/tmp/p", since=time.time() - 60), [])) == 7
    with pytest.raises(RemoteError) as info:
        client.request(m.ListSessions(before_id=ids[0]))
    assert info.value.code == "invalid_field"


def test_a_session_that_cannot_be_woken_answers_at_once_with_the_cause(daemon, monkeypatch):
    client = daemon.client()
    sid = create(client)
    wait_for(lambda: activity(daemon)["dormant"] == 1)

    def broken_start(self):
        raise RuntimeError("the database row is unreadable in this test")

    monkeypatch.setattr(SessionActor, "_start", broken_start)
    started = time.monotonic()
    with pytest.raises(RemoteError) as info:
        client.request(m.ResumeSession(session_id=sid))
    assert info.value.code == "session_start_failed"
    assert "unreadable" in info.value.message and info.value.session_id == sid
    assert time.monotonic() - started < 2.0  # not after the restarts, nor a timeout
