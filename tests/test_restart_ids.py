"""Ids stay unique across a daemon restart, and a stale approval id never wakes a backend.

Approval ids (``<sid>:a<n>-<life>``) and scripted turn ids key rows of their own
(``approvals``, ``turns``): an id reused by a restored session would overwrite,
or be refused next to, the earlier life's row.
"""

from __future__ import annotations

import uuid

import apsw
import pykka
import pytest
import zmq

from actors.messages import ClientRequest
from actors.session import SessionActor
from conftest import wait_until
from orbitdock.session.approvals import approval_number
from orbitdock.client import RemoteError
from orbitdock.config import Config
from orbitdock.connectors.scripted import ScriptedConnector
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import SessionState
from orbitdock.transport import OP_REPLY, gateway_inbox, release_gateway_inbox

WAIT_S = 10.0


def state(client, sid):
    return client.request(m.SubscribeSession(session_id=sid)).session


def db_query(home, query, *args):
    conn = apsw.Connection(str(home / "orbitdock.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def ask_and_accept(client, sid, command) -> str:
    client.request(m.SendMessage(session_id=sid, content=f"/approve {command}"))
    assert wait_until(lambda: state(client, sid).approvals, WAIT_S)
    approval_id = state(client, sid).approvals[0].id
    client.request(m.ApproveTool(approval_id=approval_id, decision="accept"))
    assert wait_until(lambda: state(client, sid).work_status == "reply", WAIT_S)
    return approval_id


def test_approval_ids_continue_after_kill9(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    client = d.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/w")).session.id
    first = ask_and_accept(client, sid, "first-command")
    assert wait_until(lambda: db_query(
        home, "SELECT decision FROM approvals WHERE id=?", first) == [("accept",)], WAIT_S)
    d.kill9()

    d.start()
    client = d.client()
    client.request(m.SendMessage(session_id=sid, content="/approve second-command"))
    assert wait_until(lambda: state(client, sid).approvals, WAIT_S)
    second = state(client, sid).approvals[0].id
    assert approval_number(first) == 1 and approval_number(second) == 2
    # A late answer to the earlier life's request must not decide the new one; nor may
    # an answer to an a2 the earlier life published but never committed before the kill.
    uncommitted = first.replace(":a1-", ":a2-")
    assert uncommitted != second
    for stale in (first, uncommitted):
        with pytest.raises(RemoteError) as info:
            client.request(m.ApproveTool(approval_id=stale, decision="decline"))
        assert info.value.code == "stale_approval"
    assert [a.id for a in state(client, sid).approvals] == [second]
    client.request(m.ApproveTool(approval_id=second, decision="accept"))
    assert wait_until(lambda: state(client, sid).work_status == "reply", WAIT_S)
    assert d.stop() == 0

    assert db_query(home, "SELECT id, command, decision FROM approvals WHERE session_id=? "
                          "ORDER BY created_at", sid) == [
        (first, "first-command", "accept"), (second, "second-command", "accept")]


def test_scripted_turn_ids_stay_unique_after_kill9(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    client = d.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/w")).session.id
    client.request(m.SendMessage(session_id=sid, content="before"))
    assert wait_until(lambda: state(client, sid).work_status == "reply", WAIT_S)
    assert wait_until(lambda: db_query(
        home, "SELECT status FROM turns WHERE session_id=?", sid) == [("completed",)], WAIT_S)
    d.kill9()

    d.start()
    client = d.client()
    client.request(m.SendMessage(session_id=sid, content="after"))
    assert wait_until(lambda: state(client, sid).work_status == "reply", WAIT_S)
    users = [x for x in state(client, sid).messages if x.type == "user"]
    assert d.stop() == 0

    turns = db_query(home, "SELECT turn_id, status FROM turns WHERE session_id=? "
                           "ORDER BY started_at", sid)
    assert [status for _, status in turns] == ["completed", "completed"]
    assert [turn_id for turn_id, _ in turns] == [x.turn_id for x in users]
    assert users[0].turn_id != users[1].turn_id


# ---------------------------------------------------------------- a stale approval id


class _Discard(pykka.ThreadingActor):
    """Stands in for the persistence actor: the writes do not matter here."""

    def on_receive(self, message):
        return None


@pytest.fixture
def session_actor():
    ctx = zmq.Context()
    endpoint = f"inproc://test-session-{uuid.uuid4()}"
    inbox = gateway_inbox(endpoint, 1000)
    persistence = _Discard.start()
    refs = []

    def start(st: SessionState, factory, restored: bool = True):
        ref = SessionActor.start(Config(), st, ctx=ctx, inproc_endpoint=endpoint,
                                 persistence=persistence, supervisor=None,
                                 connector_factory=factory, epoch="test", restored=restored)
        refs.append(ref)

        def ask(request) -> m.Reply:
            ref.tell(ClientRequest(b"client", request))
            while (frame := inbox.get(WAIT_S)) is not None:
                if frame[0] == OP_REPLY:
                    return codec.decode_inbound(frame[2 + frame[1]:])
            raise AssertionError("no reply from the session actor")
        return ask

    yield start
    for ref in refs:
        ref.stop()
    persistence.stop()
    release_gateway_inbox(endpoint)
    ctx.term()


@pytest.mark.parametrize("request_for", [
    lambda aid: m.ApproveTool(approval_id=aid, decision="accept"),
    lambda aid: m.AnswerQuestion(approval_id=aid, answers={"q1": ["yes"]}),
], ids=["approve", "answer"])
def test_unknown_approval_of_a_restored_session_is_stale_and_attaches_nothing(
        session_actor, request_for):
    attached = []

    def factory(st):
        attached.append(st.id)
        return ScriptedConnector(script=None, cwd="/w", model=None, wait_timeout_s=WAIT_S)

    restored = SessionState(id="od-restored", provider="scripted", thread_id="scripted-t1",
                            project_path="/w")
    ask = session_actor(restored, factory)
    reply = ask(request_for("od-restored:a999999"))
    assert isinstance(reply, m.Error) and reply.code == "stale_approval", reply
    assert attached == []  # the idle session's backend was not woken for nothing


def test_unknown_approval_of_a_passive_session_is_stale(session_actor):
    passive = SessionState(id="rollout-1", provider="codex", integration_mode="passive")
    ask = session_actor(passive, None)
    reply = ask(m.ApproveTool(approval_id="rollout-1:a7", decision="accept"))
    assert isinstance(reply, m.Error) and reply.code == "stale_approval", reply
