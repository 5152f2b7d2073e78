"""The persistence actor under storage faults, against real SQLite files.

Faults are real SQLite errors: ``PRAGMA max_page_count`` makes the database full at
its current size (SQLITE_FULL inside the batch), and a VFS that fails writes to the
WAL (SQLITE_FULL at COMMIT, where WAL frames are written) or to the database file
(the checkpoint fails). Every wait is bounded.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import apsw
import msgspec
import pytest
import zmq

from actors.messages import ClientRequest
from actors.persistence import PersistenceActor
from orbitdock.config import Config
from orbitdock.protocol import codec
from orbitdock.protocol import messages as pm
from orbitdock.protocol.models import Message, StorageHealth
from orbitdock.store.commands import SaveMessage, SaveSession
from orbitdock.transport import gateway_inbox, release_gateway_inbox

WAIT_S = 10.0
NEVER_MS = 600_000.0
SID = "sess-1"


def msg(seq: int, content: str = "") -> SaveMessage:
    return SaveMessage(SID, Message(id=f"m{seq}", seq=seq, type="assistant",
                                    content=content or f"text {seq} " + "x" * 200))


def committed(db: Path, query: str) -> list[tuple]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def wait_for(predicate, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


class Gateway:
    """The gateway's end of the persistence actor's outlet: replies and storage states."""

    def __init__(self, name: str) -> None:
        self.ctx = zmq.Context()
        self.endpoint = f"inproc://{name}-{uuid.uuid4()}"
        self.inbox = gateway_inbox(self.endpoint, 10_000)
        self.states: list[StorageHealth] = []
        self.replies: list[pm.Reply] = []

    def drain(self, timeout: float = 0.05) -> None:
        while (frame := self.inbox.get(timeout)) is not None:
            if frame[:1] == b"D":
                self.states.append(msgspec.msgpack.decode(frame[1:], type=StorageHealth))
            elif frame[:1] == b"R":
                self.replies.append(codec.decode_any(frame[2 + frame[1]:]))

    def close(self) -> None:
        release_gateway_inbox(self.endpoint)
        self.ctx.term()


@pytest.fixture
def actor(tmp_path, request):
    made = []

    def _start(**overrides):
        cfg = Config()
        cfg.persistence.flush_interval_ms = NEVER_MS
        cfg.persistence.retry_initial_s = 0.05
        cfg.persistence.retry_max_s = 0.2
        for key, value in overrides.items():
            setattr(cfg.persistence, key, value)
        gw = Gateway(request.node.name)
        db = tmp_path / "orbitdock.db"
        ref = PersistenceActor.start(cfg, db, ctx=gw.ctx, inproc_endpoint=gw.endpoint)
        ref.proxy().stats().get(timeout=WAIT_S)
        made.append((ref, gw))
        return ref, ref.proxy(), db, gw

    yield _start
    for ref, gw in made:
        if ref.is_alive():
            ref.stop(timeout=WAIT_S)
        gw.close()


def set_page_limit(ref, gw, pages: int) -> None:
    ref.tell(ClientRequest(identity=b"t", request=pm.SetPageLimit(id="p", pages=pages)))
    wait_for(lambda: gw.drain() or any(isinstance(r, pm.Ack) for r in gw.replies))
    gw.replies.clear()


def test_full_database_keeps_the_batch_retries_and_still_drops_a_bad_command(actor, caplog):
    caplog.set_level(logging.INFO)
    ref, proxy, db, gw = actor(test_max_page_count=1_000_000)
    ref.tell(SaveSession(SID, {"provider": "codex"}))
    proxy.flush().get(timeout=WAIT_S)
    set_page_limit(ref, gw, 1)  # full at the current size
    for seq in range(1, 201):
        ref.tell(msg(seq))
    ref.tell(SaveSession("no-provider", {"display_name": "x"}))  # bad: NOT NULL provider
    for seq in range(201, 301):
        ref.tell(msg(seq))
    ref.tell(msg(300, "the last version of 300"))  # still coalesces while queued
    assert proxy.flush().get(timeout=WAIT_S) == 0
    stats = proxy.stats().get(timeout=WAIT_S)
    assert stats["storage"] == "degraded" and "disk full" in stats["storage_cause"]
    assert stats["pending"] == 301 and stats["failed_commands"] == 0
    assert committed(db, "SELECT count(*) FROM messages") == [(0,)]
    time.sleep(0.5)  # several retries fail meanwhile
    set_page_limit(ref, gw, 1_000_000)
    wait_for(lambda: proxy.stats().get(timeout=WAIT_S)["storage"] == "ok")  # the retry tick
    rows = committed(db, "SELECT seq, content FROM messages ORDER BY seq")
    assert [r[0] for r in rows] == list(range(1, 301))
    assert rows[-1][1] == "the last version of 300"
    stats = proxy.stats().get(timeout=WAIT_S)
    assert stats["failed_commands"] == 1 and stats["written_after_recovery"] == 301
    gw.drain()
    assert [s.state for s in gw.states if s.state == "ok" or s is gw.states[0]][-1] == "ok"
    assert gw.states[0].state == "degraded" and gw.states[0].refuse_new_work
    text = [r.getMessage() for r in caplog.records]
    assert sum("storage degraded" in t for t in text) == 1
    assert sum("storage ok again" in t for t in text) == 1
    assert not any("lost" in t for t in text)


def _past_the_bound(actor, **config):  # noqa: ANN001, ANN202
    """120 messages into a full database whose bound is 50 unsaved commands."""
    ref, proxy, db, gw = actor(test_max_page_count=1_000_000, max_unsaved_commands=50,
                               **config)
    ref.tell(SaveSession(SID, {"provider": "codex"}))
    proxy.flush().get(timeout=WAIT_S)
    set_page_limit(ref, gw, 1)
    for seq in range(1, 121):
        ref.tell(msg(seq))
    proxy.flush().get(timeout=WAIT_S)
    return ref, proxy, db, gw, proxy.stats().get(timeout=WAIT_S)


def test_bound_reached_is_full_and_drops_nothing(actor):
    ref, proxy, db, gw, stats = _past_the_bound(actor)
    assert stats["storage"] == "full" and stats["pending"] == 120
    assert stats.get("dropped_commands", 0) == 0
    gw.drain()
    assert gw.states[-1].state == "full" and gw.states[-1].refuse_new_work
    set_page_limit(ref, gw, 1_000_000)
    wait_for(lambda: proxy.stats().get(timeout=WAIT_S)["storage"] == "ok")
    assert committed(db, "SELECT count(*) FROM messages") == [(120,)]


def test_drop_when_full_drops_the_oldest_and_counts_them(actor):
    ref, proxy, db, gw, stats = _past_the_bound(actor, drop_when_full=True)
    assert stats["storage"] == "degraded" and stats["dropped_commands"] > 0
    assert stats["pending"] + stats["dropped_commands"] == 120
    gw.drain()
    assert not gw.states[-1].refuse_new_work  # availability was chosen
    assert gw.states[-1].dropped_commands == stats["dropped_commands"]
    set_page_limit(ref, gw, 1_000_000)
    wait_for(lambda: proxy.stats().get(timeout=WAIT_S)["storage"] == "ok")
    seqs = [r[0] for r in committed(db, "SELECT seq FROM messages ORDER BY seq")]
    assert seqs == list(range(stats["dropped_commands"] + 1, 121))  # the newest kept


class FaultyVFS(apsw.VFS):
    """SQLite's default VFS, except that writes to the WAL or to the database file fail
    with SQLITE_FULL while the matching flag is set."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fail_wal = False
        self.fail_db = False
        super().__init__(name, "")

    def xOpen(self, name, flags):
        return FaultyFile(self, name, flags)


class FaultyFile(apsw.VFSFile):
    def __init__(self, vfs: FaultyVFS, name, flags) -> None:
        self.vfs = vfs
        path = name.filename() if hasattr(name, "filename") else str(name or "")
        self.is_wal = path.endswith("-wal")
        self.is_db = path.endswith(".db")
        super().__init__("", name, flags)

    def xWrite(self, data, offset):
        if (self.is_wal and self.vfs.fail_wal) or (self.is_db and self.vfs.fail_db):
            raise apsw.FullError("database or disk is full")
        return super().xWrite(data, offset)


@pytest.fixture
def faulty_vfs(request):
    vfs = FaultyVFS(f"faulty-{abs(hash(request.node.name))}")
    yield vfs
    vfs.unregister()


def test_a_commit_that_fails_is_kept_and_retried(actor, faulty_vfs):
    ref, proxy, db, gw = actor(test_vfs=faulty_vfs.name)
    ref.tell(SaveSession(SID, {"provider": "codex"}))
    proxy.flush().get(timeout=WAIT_S)
    faulty_vfs.fail_wal = True  # the WAL frames are written at COMMIT
    for seq in range(1, 31):
        ref.tell(msg(seq))
    assert proxy.flush().get(timeout=WAIT_S) == 0
    stats = proxy.stats().get(timeout=WAIT_S)
    assert stats["storage"] == "degraded" and stats["pending"] == 30
    faulty_vfs.fail_wal = False
    wait_for(lambda: proxy.stats().get(timeout=WAIT_S)["storage"] == "ok")
    assert [r[0] for r in committed(db, "SELECT seq FROM messages ORDER BY seq")] == list(
        range(1, 31))


def test_a_failing_checkpoint_loses_nothing_and_catches_up(actor, faulty_vfs, caplog):
    caplog.set_level(logging.ERROR, logger="orbitdock.store.schema")
    ref, proxy, db, gw = actor(test_vfs=faulty_vfs.name, checkpoint_interval_s=0.05,
                               idle_truncate_s=0.2)
    ref.tell(SaveSession(SID, {"provider": "codex"}))
    proxy.flush().get(timeout=WAIT_S)
    faulty_vfs.fail_db = True  # the checkpoint cannot copy the WAL into the database
    for seq in range(1, 51):
        ref.tell(msg(seq))
    proxy.flush().get(timeout=WAIT_S)  # commits go to the WAL
    assert proxy.stats().get(timeout=WAIT_S)["storage"] == "ok"
    wait_for(lambda: any("checkpoint failed" in r.getMessage() for r in caplog.records))
    stats = proxy.stats().get(timeout=WAIT_S)
    assert not stats["wal_synced"] and "FullError" in stats["checkpoint_failing"]
    time.sleep(0.3)  # several more intervals fail: still one log line
    assert sum("checkpoint failed" in r.getMessage() for r in caplog.records) == 1
    assert committed(db, "SELECT count(*) FROM messages") == [(50,)]  # readable via the WAL
    faulty_vfs.fail_db = False
    wait_for(lambda: proxy.stats().get(timeout=WAIT_S)["wal_synced"])
    assert proxy.stats().get(timeout=WAIT_S)["checkpoint_failing"] == ""
    ref.stop(timeout=WAIT_S)
    assert committed(db, "SELECT count(*) FROM messages") == [(50,)]


def test_a_daemon_whose_commits_fail_refuses_new_work_and_keeps_every_message(tmp_path,
                                                                               faulty_vfs):
    """The whole daemon in this process (so it can use this process's VFS): the WAL
    write at COMMIT fails mid-stream; clients see degraded and get storage_unavailable;
    afterwards the database holds every message the session showed, in order."""
    from actors.daemon import Daemon
    from orbitdock.client import Client, Endpoints, RemoteError
    from orbitdock.config import load
    from orbitdock.protocol.errors import ErrorCode

    cfg = load(env={"ORBITDOCK_HOME": str(tmp_path / "home"),
                    "ORBITDOCK_PERSISTENCE__TEST_VFS": faulty_vfs.name,
                    "ORBITDOCK_PERSISTENCE__RETRY_MAX_S": "0.2",
                    "ORBITDOCK_PATHS__RUNTIME_DIR": str(tmp_path / "run"),
                    "ORBITDOCK_WATCHER__ENABLED": "false",
                    "ORBITDOCK_LOGGING__FILE": ""})
    daemon = Daemon(cfg)
    daemon.start()
    client = Client(Endpoints(daemon.layout.request_endpoint, daemon.layout.event_endpoint),
                    timeout=10)
    try:
        sid = client.request(pm.CreateSession(provider="scripted", cwd="/w")).session.id
        client.request(pm.SendMessage(session_id=sid, content="/stream 100 50 500"))
        time.sleep(0.3)
        faulty_vfs.fail_wal = True
        wait_for(lambda: client.request(pm.GetStatus()).storage != "ok")
        with pytest.raises(RemoteError) as info:
            client.request(pm.CreateSession(provider="scripted", cwd="/w2"))
        assert info.value.code == ErrorCode.STORAGE_UNAVAILABLE
        wait_for(lambda: client.request(pm.SubscribeSession(session_id=sid))
                 .session.work_status == "reply")
        live = client.request(pm.SubscribeSession(session_id=sid)).session
        faulty_vfs.fail_wal = False
        wait_for(lambda: client.request(pm.GetStatus()).storage == "ok")
    finally:
        client.close()
        daemon.stop()
    rows = committed(daemon.layout.db_path, "SELECT seq, content FROM messages ORDER BY seq")
    assert [seq for seq, _ in rows] == list(range(1, live.total_message_count + 1))
    assert {seq: c for seq, c in rows} == {x.seq: x.content for x in live.messages}
