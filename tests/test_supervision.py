"""A crashing session actor is restarted from its persisted state; the others never notice."""

from __future__ import annotations

import pytest

from conftest import wait_until
from orbitdock.client import RemoteError, snapshot_bytes
from orbitdock.protocol import messages as m


def state(client, sid):
    return client.request(m.SubscribeSession(session_id=sid)).session


def finish_turn(client, sid, text):
    before = state(client, sid).turn_count
    client.request(m.SendMessage(session_id=sid, content=text))
    assert wait_until(lambda: state(client, sid).turn_count > before and
                      state(client, sid).current_turn_id is None, 10)


def test_crashed_session_restarts_from_persisted_state(daemon_factory):
    d = daemon_factory(ORBITDOCK_SESSIONS__RESTART_BACKOFF_S="0.05")
    client = d.client()
    a = client.request(m.CreateSession(provider="scripted", cwd="/w/a")).session.id
    b = client.request(m.CreateSession(provider="scripted", cwd="/w/b")).session.id
    finish_turn(client, a, "before the crash")
    watcher = d.subscription()
    watcher.watch_session(a)
    watcher.watch_session(b)
    assert watcher.wait_synced(10)
    before = state(client, a)
    b_before = snapshot_bytes(state(client, b))

    with pytest.raises(RemoteError) as info:
        client.request(m.SendMessage(session_id=a, content="/crash"))
    assert info.value.code == "internal"

    def restarted():
        try:
            st = state(client, a)
        except RemoteError:
            return False
        return [x.content for x in st.messages] == [x.content for x in before.messages]
    assert wait_until(restarted, 10)
    finish_turn(client, a, "after the crash")
    assert state(client, a).messages[-1].content == "You said: after the crash"
    # The subscriber was told to resync and is exact again; b never changed.
    assert wait_until(lambda: watcher.state(a) is not None and
                      watcher.state(a).revision == state(client, a).revision, 10,
                      poll=watcher.poll)
    assert snapshot_bytes(watcher.state(a)) == snapshot_bytes(state(client, a))
    assert snapshot_bytes(state(client, b)) == b_before
    assert watcher.stats.resyncs >= 1
    assert not moves_out_of_order(d)


def test_flapping_session_is_given_up_but_stays_visible(daemon_factory):
    d = daemon_factory(ORBITDOCK_SESSIONS__RESTART_BACKOFF_S="0.01",
                       ORBITDOCK_SESSIONS__RESTART_MAX="2")
    client = d.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/w")).session.id
    for _ in range(3):
        assert wait_until(lambda: _alive(client, sid), 10)
        with pytest.raises(RemoteError):
            client.request(m.SendMessage(session_id=sid, content="/crash"))
    assert wait_until(lambda: _alive(client, sid) and state(client, sid).status == "ended", 10)
    st = state(client, sid)
    assert "crashed repeatedly" in st.end_reason
    with pytest.raises(RemoteError) as info:
        client.request(m.SendMessage(session_id=sid, content="hello"))
    assert info.value.code == "invalid_state"
    # Ended, it leaves the live list (get_status counts that) but stays in the history.
    assert [s.id for s in client.request(m.ListSessions(status="all")).sessions] == [sid]
    assert not moves_out_of_order(d)


def moves_out_of_order(d) -> list[str]:
    """Log lines of a session move outside orbitdock.session.life.LIFE_MOVES."""
    return [line for line in d.log_lines() if "unexpected session move" in line]


def _alive(client, sid) -> bool:
    try:
        state(client, sid)
        return True
    except RemoteError:
        return False
