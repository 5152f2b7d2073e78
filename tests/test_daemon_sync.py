"""End to end through real sockets: late joiners, reconnects and gaps end exactly in sync."""

from __future__ import annotations

import msgspec
import pytest

from conftest import wait_until
from orbitdock.client import snapshot_bytes
from orbitdock.protocol import messages as m

SESSIONS = 8
BURST = 400  # deltas per turn; 8 sessions x 2 turns x ~400 = thousands of events


def create_sessions(client, n: int) -> list[str]:
    ids = []
    for i in range(n):
        reply = client.request(m.CreateSession(provider="scripted", cwd=f"/work/p{i}"))
        ids.append(reply.session.id)
    return ids


def server_state(client, sid: str):
    return client.request(m.SubscribeSession(session_id=sid)).session


def drive_bursts(client, ids: list[str], burst: int) -> None:
    for sid in ids:
        client.request(m.SendMessage(session_id=sid, content=f"/burst {burst} 24"))


def settle(client, ids, sub, timeout=30.0):
    """Wait until every session's turn is over and the subscription caught up."""
    def done():
        for sid in ids:
            st = server_state(client, sid)
            mirror = sub.state(sid)
            if st.current_turn_id is not None or mirror is None or mirror.revision != st.revision:
                return False
        return True
    assert wait_until(done, timeout, poll=sub.poll), "subscriptions did not converge"


def test_late_joiner_and_reconnecting_client_match_server(daemon):
    client = daemon.client()
    ids = create_sessions(client, SESSIONS)
    early = daemon.subscription()
    for sid in ids:
        early.watch_session(sid)
    early.watch_list()
    assert early.wait_synced(10)
    drive_bursts(client, ids, BURST)
    early.poll(0.2)
    late = daemon.subscription()  # joins mid-stream
    for sid in ids:
        late.watch_session(sid)
    assert late.wait_synced(10)
    drive_bursts(client, ids, BURST)
    settle(client, ids, early)
    settle(client, ids, late)
    # A client that drops and comes back: a new subscription after more traffic.
    early.close()
    daemon.clients.remove(early)
    drive_bursts(client, ids, BURST // 4)
    again = daemon.subscription()
    for sid in ids:
        again.watch_session(sid)
    assert again.wait_synced(10)
    settle(client, ids, again)
    settle(client, ids, late)
    for sid in ids:
        server = server_state(client, sid)
        expected = snapshot_bytes(server)
        if snapshot_bytes(late.state(sid)) != expected:  # show the fields that differ
            a, b = msgspec.to_builtins(late.state(sid)), msgspec.to_builtins(server)
            assert {k: a.get(k) for k in a.keys() | b.keys() if a.get(k) != b.get(k)} == \
                {k: b.get(k) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        assert snapshot_bytes(late.state(sid)) == expected
        assert snapshot_bytes(again.state(sid)) == expected
    total = sum(server_state(client, sid).revision for sid in ids)
    assert total > 5000
    assert late.stats.gaps == 0


def test_list_mirror_matches_server(daemon):
    client = daemon.client()
    sub = daemon.subscription()
    sub.watch_list()
    assert sub.wait_synced(10)
    ids = create_sessions(client, 5)
    drive_bursts(client, ids, 50)

    def same():
        server = {s.id: s for s in client.request(m.SubscribeList()).sessions}
        return server.keys() == sub.summaries.keys() and all(
            server[k] == sub.summaries[k]
            for k in server)
    assert wait_until(same, 15, poll=sub.poll)


def test_subscriber_past_high_water_mark_detects_gap_and_resyncs(daemon_factory):
    # A tiny PUB high-water mark makes the gateway drop events for a subscriber that
    # does not read; the subscriber must notice the gap and take a fresh snapshot.
    d = daemon_factory(ORBITDOCK_GATEWAY__SUBSCRIBER_HWM="50")
    client = d.client()
    (sid,) = create_sessions(client, 1)
    sub = d.subscription()
    sub.watch_session(sid)
    assert sub.wait_synced(10)
    client.request(m.SendMessage(session_id=sid, content="/burst 5000 16"))
    assert wait_until(lambda: server_state(client, sid).current_turn_id is None, 30)
    # Only now read: most of the burst was dropped at the publisher.
    settle(client, [sid], sub)
    assert sub.stats.gaps >= 1
    assert sub.stats.resyncs >= 1
    assert snapshot_bytes(sub.state(sid)) == snapshot_bytes(server_state(client, sid))


def test_new_epoch_after_restart_forces_resync(daemon_factory, tmp_path):
    d = daemon_factory(home=tmp_path / "h")
    client = d.client()
    (sid,) = create_sessions(client, 1)
    client.request(m.SendMessage(session_id=sid, content="hello"))
    sub = d.subscription()
    sub.watch_session(sid)
    assert sub.wait_synced(10)
    first_epoch = None
    assert wait_until(lambda: sub.epoch is not None, 5, poll=sub.poll)
    first_epoch = sub.epoch
    d.stop()
    d.start()
    client2 = d.client()
    client2.request(m.SendMessage(session_id=sid, content="after restart"))
    assert wait_until(lambda: sub.epoch not in (None, first_epoch), 10, poll=sub.poll)
    settle(client2, [sid], sub)
    assert sub.stats.epoch_changes == 1
    assert snapshot_bytes(sub.state(sid)) == snapshot_bytes(server_state(client2, sid))
    assert any(msg.content == "after restart" for msg in sub.state(sid).messages)


@pytest.mark.parametrize("count", [1])
def test_status_counts(daemon, count):
    client = daemon.client()
    create_sessions(client, 3)
    status = client.request(m.GetStatus())
    assert status.sessions == 3 or wait_until(
        lambda: client.request(m.GetStatus()).sessions == 3, 5)
    assert client.request(m.GetStatus()).actors >= 3 + 3  # persistence, supervisor, gateway


def test_get_messages_pages_the_full_history(daemon_factory):
    # A small in-memory window: older messages come from the database.
    d = daemon_factory(ORBITDOCK_SESSIONS__MEMORY_MESSAGES="5")
    client = d.client()
    (sid,) = create_sessions(client, 1)
    for i in range(6):
        client.request(m.SendMessage(session_id=sid, content=f"prompt {i}"))
        from conftest import wait_until as _wait
        assert _wait(lambda: server_state(client, sid).turn_count == i + 1 and
                     server_state(client, sid).current_turn_id is None, 10)
    st = server_state(client, sid)
    assert st.total_message_count == 12 and len(st.messages) == 5
    page = client.request(m.GetMessages(session_id=sid, limit=4))
    assert [x.seq for x in page.messages] == [9, 10, 11, 12] and page.has_more_before
    older = client.request(m.GetMessages(session_id=sid, before_seq=9, limit=100))
    assert [x.seq for x in older.messages] == list(range(1, 9)) and not older.has_more_before
    assert older.messages[0].content == "prompt 0"
