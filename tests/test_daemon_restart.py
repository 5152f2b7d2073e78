"""kill -9 and restart: what was committed stays, sessions come back with the right status."""

from __future__ import annotations

import time

import apsw

from conftest import wait_until
from orbitdock.protocol import messages as m


def db_rows(db_path):
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        messages = {}
        for sid, seq in conn.execute("SELECT session_id, seq FROM messages ORDER BY 1, 2"):
            messages.setdefault(sid, []).append(seq)
        sessions = {sid: (status, work) for sid, status, work in
                    conn.execute("SELECT id, status, work_status FROM sessions")}
        version = conn.execute("PRAGMA user_version").fetchall()[0][0]
        contents = conn.execute(
            "SELECT session_id, seq, type, content FROM messages ORDER BY 1, 2").fetchall()
        return messages, sessions, version, contents
    finally:
        conn.close()


def test_kill9_mid_burst_keeps_committed_batches_and_restores_status(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    client = d.client()
    ids = [client.request(m.CreateSession(provider="scripted", cwd=f"/w/{i}")).session.id
           for i in range(4)]
    finished = ids[0]
    client.request(m.SendMessage(session_id=finished, content="a finished turn"))
    assert wait_until(lambda: client.request(
        m.SubscribeSession(session_id=finished)).session.work_status == "reply", 10)
    asking = ids[1]
    client.request(m.SendMessage(session_id=asking, content="/approve rm -rf build"))
    assert wait_until(lambda: client.request(
        m.SubscribeSession(session_id=asking)).session.work_status == "permission", 10)
    for sid in ids[2:]:
        client.request(m.SendMessage(session_id=sid, content="/hold"))
    time.sleep(0.5)  # let the persistence actor commit a few batches
    d.kill9()

    messages, sessions, version, contents = db_rows(home / "orbitdock.db")
    for sid, seqs in messages.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"gap in {sid}: {seqs}"
    assert set(ids) <= set(sessions)

    d.start()  # same home: migrations re-run idempotently, sessions restored
    client = d.client()
    messages2, _, version2, contents2 = db_rows(home / "orbitdock.db")
    assert version2 == version
    for sid, seqs in messages.items():
        assert messages2[sid][: len(seqs)] == seqs
    assert [row for row in contents2 if row in contents] == contents  # nothing committed lost

    listed = {s.id: s for s in client.request(m.SubscribeList()).sessions}
    assert set(ids) <= set(listed)
    st = client.request(m.SubscribeSession(session_id=finished)).session
    assert st.work_status == "reply" and st.status == "active"
    assert [x.content for x in st.messages if x.type == "user"] == ["a finished turn"]
    for sid in [asking, *ids[2:]]:
        st = client.request(m.SubscribeSession(session_id=sid)).session
        # The turn died with the old daemon: say so, never "working" forever.
        assert st.work_status == "waiting", (sid, st.work_status)
        assert st.current_turn_id is None and not st.approvals
        assert "restarted" in (st.last_error or "")
    # A restored session works again.
    client.request(m.SendMessage(session_id=finished, content="again"))
    assert wait_until(lambda: client.request(
        m.SubscribeSession(session_id=finished)).session.turn_count == 2 and client.request(
        m.SubscribeSession(session_id=finished)).session.work_status == "reply", 10)


def test_sigterm_flushes_everything(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    client = d.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/w")).session.id
    client.request(m.SendMessage(session_id=sid, content="/burst 300 8"))
    assert wait_until(lambda: client.request(
        m.SubscribeSession(session_id=sid)).session.work_status == "reply", 10)
    live = client.request(m.SubscribeSession(session_id=sid)).session
    assert d.stop() == 0
    messages, sessions, _, contents = db_rows(home / "orbitdock.db")
    assert len(messages[sid]) == live.total_message_count
    assert sessions[sid] == ("active", "reply")
    assert contents[-1][3] == "x" * 8 * 300


def test_reconnected_mirror_never_mixes_two_daemon_lives(daemon_factory, tmp_path):
    """The stream's first message after a reconnect names the new epoch, so a mirror
    that follows one session (no list, heartbeats far apart) resyncs at once instead of
    applying the restarted daemon's deltas to the old daemon's state."""
    from orbitdock.client import snapshot_bytes

    home = tmp_path / "home"
    d = daemon_factory(home=home, ORBITDOCK_GATEWAY__HEARTBEAT_INTERVAL_S="60")
    client = d.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/w")).session.id
    sub = d.subscription()
    sub.watch_session(sid)
    assert sub.wait_synced(10)
    client.request(m.SendMessage(session_id=sid, content="/burst 40"))
    assert wait_until(lambda: sub.poll(0.05) is not None and sub.state(sid) is not None
                      and sub.state(sid).work_status == "reply", 15)
    old_epoch = sub.epoch
    d.kill9()
    d.start()
    client = d.client()
    new_epoch = client.request(m.GetStatus()).epoch
    assert new_epoch != old_epoch
    for n in range(3):
        client.request(m.SendMessage(session_id=sid, content=f"/burst {20 + n}"))
        assert wait_until(lambda: client.request(
            m.SubscribeSession(session_id=sid)).session.work_status == "reply", 15)

    def mirrored() -> bool:
        sub.poll(0.05)
        state = sub.state(sid)
        return state is not None and snapshot_bytes(state) == snapshot_bytes(
            client.request(m.SubscribeSession(session_id=sid)).session)

    # Far sooner than the next heartbeat (60 s): learned from the reconnect itself.
    assert wait_until(mirrored, 10)
    assert sub.epoch == new_epoch and sub.stats.epoch_changes == 1
