"""Storage faults lose nothing: a full database, a damaged file, a newer schema.

Disk full without root: ``persistence.test_max_page_count`` enables the test-only
``set_page_limit`` request, which sets the writer's ``PRAGMA max_page_count``; at the
current size the database reports SQLITE_FULL exactly as a full disk does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apsw
import pytest
import zmq

from cli_env import ctl, ctl_json
from conftest import wait_until
from orbitdock.client.requests import RemoteError
from orbitdock.harness import DaemonProcess
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.topics import HEARTBEAT, split_frame
from orbitdock.protocol.errors import ErrorCode

FULL_ENV = {"ORBITDOCK_PERSISTENCE__TEST_MAX_PAGE_COUNT": "1000000"}


def db_messages(db_path):
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows: dict[str, list[tuple]] = {}
        for sid, seq, mid, content in conn.execute(
                "SELECT session_id, seq, id, content FROM messages ORDER BY 1, 2"):
            rows.setdefault(sid, []).append((seq, mid, content))
        return rows
    finally:
        conn.close()


class HeartbeatListener:
    """A bare ZeroMQ subscriber to the heartbeat topic, as any client can be."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT)
        self.sub.connect(endpoint)

    def wait_for(self, predicate, timeout: float) -> m.Heartbeat | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.sub.poll(int(left * 1000)):
                _, payload = split_frame(self.sub.recv())
                event = codec.decode_inbound(payload)
                if isinstance(event, m.Heartbeat) and predicate(event):
                    return event
        return None

    def close(self) -> None:
        self.sub.close(linger=0)
        self.ctx.term()


def storage_state(client) -> m.ServerStatus:
    return client.request(m.GetStatus())


def test_disk_full_keeps_every_message_and_refuses_new_work(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home, **FULL_ENV)
    client = d.client()
    ids = [client.request(m.CreateSession(provider="scripted", cwd=f"/w/{i}")).session.id
           for i in range(3)]
    for sid in ids:
        client.request(m.SendMessage(session_id=sid, content="/stream 150 60 2000"))
    heartbeats = HeartbeatListener(d.endpoints.events)
    time.sleep(0.3)  # the streams are running
    # Full at the current size: the next page the writer needs is refused (SQLITE_FULL).
    client.request(m.SetPageLimit(pages=1))
    assert wait_until(lambda: storage_state(client).storage in ("degraded", "full"), 10)
    degraded = storage_state(client)
    assert "disk full" in degraded.storage_cause and degraded.storage_since > 0
    assert degraded.unsaved_commands > 0
    # Every client is told at once (a heartbeat on the change, not the next interval).
    assert heartbeats.wait_for(lambda hb: hb.storage != "ok", 2.0).storage_cause
    shown = ctl(home, "status").stdout
    assert "DEGRADED since" in shown or "FULL since" in shown

    with pytest.raises(RemoteError) as info:
        client.request(m.CreateSession(provider="scripted", cwd="/w/new"))
    assert info.value.code == ErrorCode.STORAGE_UNAVAILABLE
    with pytest.raises(RemoteError) as info:
        client.request(m.SendMessage(session_id=ids[0], content="more"))
    assert info.value.code == ErrorCode.STORAGE_UNAVAILABLE

    # The streams finish in memory while the database takes nothing.
    assert wait_until(lambda: all(client.request(m.SubscribeSession(session_id=sid))
                                  .session.work_status == "reply" for sid in ids), 30)
    queued = storage_state(client).unsaved_commands
    live = {sid: client.request(m.SubscribeSession(session_id=sid)).session for sid in ids}
    started = time.monotonic()
    client.request(m.SetPageLimit(pages=1_000_000))
    assert wait_until(lambda: storage_state(client).storage == "ok", 15)
    recovered_in = time.monotonic() - started
    assert storage_state(client).storage_cause == ""
    assert heartbeats.wait_for(lambda hb: hb.storage == "ok", 2.0)
    heartbeats.close()
    # New work is taken again.
    client.request(m.CreateSession(provider="scripted", cwd="/w/after"))

    assert d.stop() == 0
    rows = db_messages(home / "orbitdock.db")
    written = 0
    for sid, state in live.items():
        got = rows[sid]
        seqs = [seq for seq, _, _ in got]
        assert seqs == list(range(1, len(got) + 1)), f"gap or repeat in {sid}"
        assert len({mid for _, mid, _ in got}) == len(got)  # none twice
        assert len(got) == state.total_message_count
        by_seq = {seq: content for seq, _, content in got}
        for msg in state.messages:  # what the clients were shown, as shown
            assert by_seq[msg.seq] == msg.content, (sid, msg.seq)
        written += len(got)
    log = "\n".join(d.log_lines())
    assert log.count("storage degraded") == 1  # once per state change, not per batch
    assert "storage ok again" in log
    print(json.dumps({"queued_commands": queued, "degraded_s": round(recovered_in, 2),
                      "messages_in_db": written, "lost": 0}))


def test_backup_and_check_during_streaming(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    client = d.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/w")).session.id
    client.request(m.SendMessage(session_id=sid, content="/stream 200 100 64"))
    time.sleep(0.5)
    target = tmp_path / "backup.db"
    ack = client.request(m.BackupDatabase(path=str(target)))
    assert ack.result["pages"] > 0 and target.exists()
    conn = apsw.Connection(str(target), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM sessions").fetchall()[0][0] == 1
    finally:
        conn.close()
    with pytest.raises(RemoteError) as info:  # never overwrites
        client.request(m.BackupDatabase(path=str(target)))
    assert info.value.code == ErrorCode.INVALID_ARGUMENT
    check = client.request(m.CheckDatabase())
    assert check.result["ok"] is True and check.result["problems"] == []
    with pytest.raises(RemoteError) as info:  # test-only request, off in a normal daemon
        client.request(m.SetPageLimit(pages=5))
    assert info.value.code == ErrorCode.INVALID_STATE


def _start_refused(daemon_factory, home, *args, **env):
    d = daemon_factory(*args, home=home, wait=False, **env)
    rc, _, err = d.wait_exit(30)
    return rc, [line for line in err.splitlines() if line.startswith("orbitdockd:")]


def test_damaged_database_is_explained_and_recovered_on_request(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    client = d.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/w")).session.id
    client.request(m.SendMessage(session_id=sid, content="hello"))
    assert wait_until(lambda: client.request(
        m.SubscribeSession(session_id=sid)).session.work_status == "reply", 10)
    assert d.stop() == 0
    db = home / "orbitdock.db"
    db.write_bytes(b"this is not a database" * 200)
    rc, lines = _start_refused(daemon_factory, home)
    assert rc == 2 and len(lines) == 1
    assert str(db) in lines[0] and "damaged" in lines[0] and "--recover" in lines[0]

    recovered = daemon_factory("--recover", home=home)  # moves it aside, starts fresh
    assert list(home.glob("orbitdock.db.damaged-*"))
    assert recovered.client().request(m.GetStatus()).storage == "ok"


def test_newer_schema_is_explained(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    assert d.stop() == 0
    conn = apsw.Connection(str(home / "orbitdock.db"))
    conn.execute("PRAGMA user_version=999")
    conn.close()
    rc, lines = _start_refused(daemon_factory, home)
    assert rc == 2 and len(lines) == 1
    assert "schema version 999 is newer" in lines[0] and str(home / "orbitdock.db") in lines[0]


def test_cli_db_backup_check_and_status(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    client = d.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/w")).session.id
    client.request(m.SendMessage(session_id=sid, content="/stream 100 100 64"))
    out = ctl(home, "db", "backup", str(tmp_path / "copy.db"))
    assert "backed up to" in out.stdout and (tmp_path / "copy.db").exists()
    again = ctl(home, "db", "backup", str(tmp_path / "copy.db"), check=False)
    assert again.returncode == 1 and "invalid_argument" in again.stderr
    assert "integrity check ok" in ctl(home, "db", "check").stdout
    assert ctl_json(home, "db", "check")["ok"] is True
    assert "storage    ok" in ctl(home, "status").stdout


def test_full_disk_at_start_is_explained(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    assert d.stop() == 0
    conn = apsw.Connection(str(home / "orbitdock.db"))
    conn.execute("VACUUM")  # no free pages left inside the file either
    conn.close()
    # The database cannot grow by a page: as a disk without room.
    rc, lines = _start_refused(daemon_factory, home, ORBITDOCK_PERSISTENCE__TEST_MAX_PAGE_COUNT="1")
    assert rc == 2 and len(lines) == 1
    assert "disk is full" in lines[0] and "free space" in lines[0]


def test_unwritable_data_dir_is_explained(tmp_path):
    """Run as nobody (root can write anywhere) on a data dir nobody may not write."""
    home = Path(tempfile.mkdtemp(prefix="orbitdock-ro-"))  # /tmp: reachable for nobody
    try:
        d = DaemonProcess(home, cmd=["setpriv", "--reuid=nobody", "--regid=nogroup",
                                     "--clear-groups", sys.executable, "-m", "actors.daemon"])
        home.chmod(0o755)  # readable and searchable, not writable, for nobody
        d.spawn(stdout=subprocess.PIPE)
        rc, _, err = d.wait_exit(30)
        lines = [line for line in err.splitlines() if line.startswith("orbitdockd:")]
        assert rc == 2 and len(lines) == 1, err
        assert str(home) in lines[0] and "not writable" in lines[0]
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _damage_a_middle_page(db: Path) -> None:
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, size = (conn.execute("PRAGMA page_count").fetchall()[0][0],
                   conn.execute("PRAGMA page_size").fetchall()[0][0])
    conn.close()
    data = bytearray(db.read_bytes())
    middle = pages // 2
    data[middle * size:(middle + 1) * size] = b"\xff" * size
    db.write_bytes(bytes(data))


def test_recover_keeps_the_rows_on_both_sides_of_a_damaged_page(tmp_path):
    from orbitdock.config import Config
    from orbitdock.store import preflight, schema

    db = tmp_path / "orbitdock.db"
    pcfg = Config().persistence
    conn = schema.open_database(db, pcfg)
    conn.execute("INSERT INTO sessions(id, provider) VALUES('s1', 'codex')")
    with conn:
        for seq in range(1, 3001):
            conn.execute("INSERT INTO messages(session_id, seq, id, type, content) "
                         "VALUES('s1', ?, ?, 'assistant', ?)", (seq, f"m{seq}", "y" * 300))
    conn.close()
    _damage_a_middle_page(db)
    with pytest.raises(preflight.StorageFault) as info:
        preflight.check(db, pcfg)
    assert "damaged" in info.value.cause and "--recover" in info.value.remedy
    report = preflight.recover(db, pcfg)
    assert Path(report["moved_to"]).exists() and report["skipped"]
    conn = apsw.Connection(str(db))
    try:
        count, first, last = conn.execute(
            "SELECT count(*), min(seq), max(seq) FROM messages").fetchall()[0]
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    assert (first, last) == (1, 3000)  # the rows behind the damaged page too
    assert 2900 <= count < 3000 and report["tables"]["messages"] == count
    preflight.check(db, pcfg)  # the rebuilt database starts


def test_unwritable_database_file_is_explained(tmp_path):
    """As nobody, in a dir it may write, on a database file it may only read."""
    from orbitdock.config import Config
    from orbitdock.store import schema

    home = Path(tempfile.mkdtemp(prefix="orbitdock-rofile-"))
    try:
        schema.open_database(home / "orbitdock.db", Config().persistence).close()
        (home / "orbitdock.db").chmod(0o644)
        home.chmod(0o777)
        d = DaemonProcess(home, cmd=["setpriv", "--reuid=nobody", "--regid=nogroup",
                                     "--clear-groups", sys.executable, "-m", "actors.daemon"])
        d.spawn(stdout=subprocess.PIPE)
        rc, _, err = d.wait_exit(30)
        lines = [line for line in err.splitlines() if line.startswith("orbitdockd:")]
        assert rc == 2 and len(lines) == 1, err
        assert str(home / "orbitdock.db") in lines[0] and "not writable" in lines[0]
    finally:
        shutil.rmtree(home, ignore_errors=True)
