"""The persistence actor against real SQLite files: batching, coalescing, isolation, crashes.

Unless a test is about the timer, the flush interval is set far beyond any wait,
so every flush seen is one the test caused (count, explicit flush, read, stop).
Every wait is bounded.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import apsw
import pytest
import zmq

from actors.messages import (
    ClientRequest, CountMessages, Flush, GetConfigValue, LoadMessages, LoadPendingApprovals,
    LoadSession, Stats, Tick,
)
from actors.persistence import PersistenceActor
from orbitdock.config import Config
from orbitdock.protocol import codec
from orbitdock.protocol import messages as pm
from orbitdock.protocol.models import ApprovalRequest, Message, Question
from orbitdock.store import schema
from orbitdock.transport import gateway_inbox, release_gateway_inbox
from orbitdock.store.commands import (
    Atomic, DecideApproval, SaveApproval, SaveMessage, SaveRolloutOffset, SaveSession,
    SaveTokenUsage, SaveTurn, SetConfigValue,
)

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 10.0
NEVER_MS = 600_000.0  # a flush interval no test waits for
SID = "sess-1"


@pytest.fixture
def start(tmp_path):
    """start(**persistence_overrides) -> (ref, proxy, db_path); stopped at teardown."""
    refs = []

    def _start(db: Path | None = None, **overrides):
        cfg = Config()
        cfg.persistence.flush_interval_ms = NEVER_MS
        for key, value in overrides.items():
            setattr(cfg.persistence, key, value)
        db = db or tmp_path / "orbitdock.db"
        ref = PersistenceActor.start(cfg, db)
        refs.append(ref)
        ref.proxy().stats().get(timeout=WAIT_S)  # on_start (open + migrate) has run
        return ref, ref.proxy(), db

    yield _start
    for ref in refs:
        if ref.is_alive():
            ref.stop(timeout=WAIT_S)


def msg(seq: int, content: str = "", session_id: str = SID, **kw) -> SaveMessage:
    return SaveMessage(session_id, Message(id=f"m{seq}", seq=seq, type="assistant",
                                           content=content or f"text {seq}", **kw))


def session(session_id: str = SID, **fields) -> SaveSession:
    return SaveSession(session_id, {"provider": "codex", **fields})


def committed(db: Path, query: str, args: tuple = ()) -> list[tuple]:
    """What another connection sees: only committed rows."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def wait_for(predicate, timeout: float = WAIT_S, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_flushes_at_batch_size_without_waiting_for_the_timer(start):
    ref, proxy, db = start()
    ref.tell(session())
    assert proxy.flush().get(timeout=WAIT_S) == 1
    for seq in range(1, 52):  # 51 commands
        ref.tell(msg(seq))
    stats = proxy.stats().get(timeout=WAIT_S)  # ordered after the tells; does not flush
    assert stats["batches"] == 2 and stats["rows_written"] == 51 and stats["pending"] == 1
    assert committed(db, "SELECT count(*) FROM messages") == [(50,)]


def test_partial_batch_is_flushed_by_the_timer(start):
    ref, proxy, db = start(flush_interval_ms=100.0)
    for command in (session(), msg(1), msg(2)):
        ref.tell(command)
    wait_for(lambda: committed(db, "SELECT count(*) FROM messages") == [(2,)])
    assert proxy.stats().get(timeout=WAIT_S)["pending"] == 0
    ref.tell(msg(3))  # a later batch re-arms the timer
    wait_for(lambda: committed(db, "SELECT count(*) FROM messages") == [(3,)])


def test_streamed_updates_of_one_message_coalesce_to_one_write(start):
    ref, proxy, db = start()
    ref.tell(session())
    proxy.flush().get(timeout=WAIT_S)
    for i in range(100):
        ref.tell(msg(7, content="x" * (i + 1), is_in_progress=i < 99))
    assert proxy.flush().get(timeout=WAIT_S) == 1
    assert proxy.stats().get(timeout=WAIT_S)["coalesced"] == 99
    [message] = proxy.load_messages(SID, 10).get(timeout=WAIT_S)
    assert message.content == "x" * 100 and not message.is_in_progress


def test_session_fields_merge_within_a_batch_and_update_partially_across(start):
    ref, proxy, _ = start()
    ref.tell(session(display_name="a", prompt_count=1, current_plan=[{"step": "plan"}],
                     token_usage={"input_tokens": 10, "context_window": 1000}))
    ref.tell(SaveSession(SID, {"display_name": "b"}))
    ref.tell(SaveSession(SID, {"model": "gpt-5", "last_activity_at": 5.0}))
    assert proxy.flush().get(timeout=WAIT_S) == 1
    ref.tell(SaveSession(SID, {"summary": "later"}))  # no provider: a partial UPDATE
    row = proxy.load_session(SID).get(timeout=WAIT_S)
    assert (row["display_name"], row["prompt_count"], row["model"], row["summary"]) == (
        "b", 1, "gpt-5", "later")
    assert row["current_plan"] == [{"step": "plan"}]
    assert (row["input_tokens"], row["context_window"], row["output_tokens"]) == (10, 1000, 0)
    ref.tell(session("older", last_activity_at=1.0))
    assert [r["id"] for r in proxy.load_sessions().get(timeout=WAIT_S)] == [SID, "older"]
    assert [r["id"] for r in proxy.load_sessions(1).get(timeout=WAIT_S)] == [SID]
    assert proxy.load_session("missing").get(timeout=WAIT_S) is None


def test_turns_merge_and_the_other_tables_round_trip(start):
    ref, proxy, db = start()
    ref.tell(session())
    ref.tell(SaveTurn(SID, "t1", {"status": "in_progress", "started_at": 1.0}))
    ref.tell(SaveTurn(SID, "t1", {"status": "completed", "plan": [{"step": "a"}], "ended_at": 2.0}))
    ref.tell(SaveTurn(SID, "t0", {"started_at": 0.5}))
    ref.tell(SaveTokenUsage(SID, {"input_tokens": 3, "total_tokens": 4}, 9.0))
    ref.tell(SetConfigValue("theme", "dark"))
    ref.tell(SetConfigValue("theme", "light"))
    ref.tell(SaveRolloutOffset("/r/a.jsonl", 10, session_id=SID, size=20, mtime=1.5))
    ref.tell(SaveRolloutOffset("/r/a.jsonl", 20, session_id=SID, size=20, mtime=1.5))
    turns = proxy.load_turns(SID).get(timeout=WAIT_S)
    assert [t["turn_id"] for t in turns] == ["t0", "t1"]
    assert turns[1]["status"] == "completed" and turns[1]["started_at"] == 1.0
    assert turns[1]["plan"] == [{"step": "a"}]
    assert proxy.get_config_value("theme").get(timeout=WAIT_S) == "light"
    assert proxy.get_config_value("nope").get(timeout=WAIT_S) is None
    offsets = proxy.load_rollout_offsets().get(timeout=WAIT_S)
    assert offsets["/r/a.jsonl"]["offset"] == 20
    assert offsets["/r/a.jsonl"]["ignore_existing"] is False
    assert committed(db, "SELECT input_tokens, total_tokens FROM token_usage") == [(3, 4)]


def test_reads_see_earlier_tells_and_page_backwards(start):
    ref, proxy, _ = start()
    ref.tell(session())
    for seq in range(1, 11):
        ref.tell(msg(seq))
    def seqs(*args) -> list[int]:
        return [m.seq for m in proxy.load_messages(SID, *args).get(timeout=WAIT_S)]

    assert seqs(3) == [8, 9, 10]
    assert seqs(3, 8) == [5, 6, 7]
    assert seqs(5, 3) == [1, 2]
    assert proxy.count_messages(SID).get(timeout=WAIT_S) == 10
    # The same reads as plain ask messages.
    ref.tell(msg(11))
    assert ref.ask(CountMessages(SID), timeout=WAIT_S) == 11
    assert [m.seq for m in ref.ask(LoadMessages(SID, 2), timeout=WAIT_S)] == [10, 11]
    assert ref.ask(LoadSession(SID), timeout=WAIT_S)["provider"] == "codex"
    ref.tell(SetConfigValue("k", "v"))
    assert ref.ask(GetConfigValue("k"), timeout=WAIT_S) == "v"
    assert ref.ask(Flush(), timeout=WAIT_S) == 0
    assert ref.ask(Stats(), timeout=WAIT_S)["failed_commands"] == 0


def test_pending_approvals_oldest_first_and_first_decision_wins(start):
    ref, proxy, _ = start()
    ref.tell(session())
    for n, created in ((1, 3.0), (2, 1.0), (3, 2.0)):
        ref.tell(SaveApproval(SID, ApprovalRequest(
            id=f"{SID}:a{n}", session_id=SID, type="question", created_at=created,
            questions=[Question(id="q", question="why?", options=[{"label": "because"}])],
            available_decisions=["accept", "decline"], payload={"n": n})))
    ref.tell(DecideApproval(SID, f"{SID}:a3", "accept", 4.0))
    ref.tell(DecideApproval(SID, f"{SID}:a3", "expired", 5.0))  # too late: ignored
    pending = proxy.load_pending_approvals(SID).get(timeout=WAIT_S)
    assert [a.id for a in pending] == [f"{SID}:a2", f"{SID}:a1"]
    assert pending[0].questions[0].options == [{"label": "because"}]
    assert pending[0].available_decisions == ["accept", "decline"]
    assert pending[0].payload == {"n": 2}
    assert ref.ask(LoadPendingApprovals(SID), timeout=WAIT_S) == pending


def test_failing_commands_are_skipped_and_the_rest_of_the_batch_commits(start, caplog):
    ref, proxy, db = start()
    caplog.set_level(logging.ERROR, logger="orbitdock.store.batches")
    ref.tell(session())
    ref.tell(msg(1))
    ref.tell(SaveSession("no-provider", {"display_name": "x"}))  # NOT NULL provider
    ref.tell(msg(2, session_id="no-such-session"))  # foreign key
    ref.tell(SaveSession(SID, {"no_such_column": 1}))  # rejected before any SQL
    ref.tell(SaveMessage(SID, Message(id="bad", seq=3, type=None)))  # NOT NULL type
    ref.tell(SaveMessage(SID, "not a message"))  # malformed: cannot even be keyed
    ref.tell(Tick("something-else"))
    ref.tell(object())  # not a command at all: dropped with a warning
    ref.tell(msg(4))
    assert proxy.flush().get(timeout=WAIT_S) == 3  # session + messages 1 and 4
    assert committed(db, "SELECT seq FROM messages ORDER BY seq") == [(1,), (4,)]
    stats = proxy.stats().get(timeout=WAIT_S)
    assert stats["failed_commands"] == 5 and stats["failed_batches"] == 0
    assert ref.is_alive()
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert {getattr(r, "session_id", None) for r in skipped} == {
        "no-provider", "no-such-session", SID}


def test_atomic_is_all_or_nothing(start):
    ref, proxy, db = start()
    ref.tell(session())
    proxy.flush().get(timeout=WAIT_S)
    ref.tell(msg(1))
    ref.tell(Atomic([msg(2), SaveRolloutOffset("/r/bad", 10), msg(99, session_id="unknown")]))
    ref.tell(msg(3))
    ref.tell(Atomic([msg(4), SaveRolloutOffset("/r/good", 20)]))
    ref.tell(msg(2, content="outside the failed atomic"))  # after a barrier: not merged into it
    assert proxy.flush().get(timeout=WAIT_S) == 5
    assert committed(db, "SELECT seq, content FROM messages ORDER BY seq") == [
        (1, "text 1"), (2, "outside the failed atomic"), (3, "text 3"), (4, "text 4")]
    assert committed(db, "SELECT path, offset FROM rollout_offsets") == [("/r/good", 20)]
    assert proxy.stats().get(timeout=WAIT_S)["failed_commands"] == 1


def test_a_later_update_is_not_moved_before_an_atomic_writing_the_same_row(start):
    ref, proxy, _ = start()
    ref.tell(session(prompt_count=1))
    ref.tell(Atomic([SaveSession(SID, {"prompt_count": 2}), SaveRolloutOffset("/r", 1)]))
    ref.tell(SaveSession(SID, {"prompt_count": 3}))
    assert proxy.load_session(SID).get(timeout=WAIT_S)["prompt_count"] == 3


def test_stop_flushes_everything_told_before_it_and_joins_its_threads(start):
    ref, _, db = start()
    ref.tell(session())
    for seq in range(1, 31):
        ref.tell(msg(seq))
    ref.stop(timeout=WAIT_S)
    assert committed(db, "SELECT count(*) FROM messages") == [(30,)]
    names = {t.name for t in threading.enumerate()}
    assert not names & {"persistence-flush-timer", "persistence-checkpointer"}
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # the last close checkpoints


def test_checkpointer_keeps_the_wal_bounded(start):
    ref, proxy, db = start(checkpoint_interval_s=0.02, idle_truncate_s=0.3)
    wal = Path(f"{db}-wal")
    ref.tell(session())
    payload = "y" * 2000
    written = peak = 0
    for round_ in range(10):
        for i in range(100):
            ref.tell(msg(round_ * 100 + i + 1, content=payload))
        proxy.flush().get(timeout=WAIT_S)
        written += 100 * len(payload)
        peak = max(peak, wal.stat().st_size)
        wait_for(lambda: proxy.stats().get(timeout=WAIT_S)["wal_synced"])  # a PASSIVE ran
    assert proxy.stats().get(timeout=WAIT_S)["passive_checkpoints"] >= 1
    # PASSIVE checkpoints let the writer restart the WAL from the top, so it stays
    # near one round's worth instead of growing with everything written.
    assert peak < written / 3
    # TRUNCATE once idle (the counter is bumped just after the file shrinks).
    wait_for(lambda: wal.stat().st_size == 0
             and proxy.stats().get(timeout=WAIT_S)["truncate_checkpoints"] >= 1)


def test_a_locked_database_keeps_the_batch_for_the_next_flush(start):
    ref, proxy, db = start(busy_timeout_ms=50)
    ref.tell(session())
    proxy.flush().get(timeout=WAIT_S)
    other = apsw.Connection(str(db))
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        ref.tell(msg(1))
        assert proxy.flush().get(timeout=WAIT_S) == 0  # BEGIN timed out; nothing lost
        ref.tell(msg(2))
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert proxy.flush().get(timeout=WAIT_S) == 2
    assert committed(db, "SELECT seq FROM messages ORDER BY seq") == [(1,), (2,)]


def test_get_messages_is_answered_through_the_gateway_outlet(tmp_path):
    ctx = zmq.Context()
    endpoint = f"inproc://persistence-test-{uuid.uuid4()}"
    inbox = gateway_inbox(endpoint, 1000)
    ref = PersistenceActor.start(Config(), tmp_path / "o.db", ctx=ctx, inproc_endpoint=endpoint)
    try:
        ref.tell(session())
        for seq in range(1, 6):
            ref.tell(msg(seq))
        request = pm.GetMessages(id="r1", session_id=SID, limit=2, before_seq=5)
        ref.tell(ClientRequest(identity=b"client-7", request=request))
        frame = inbox.get(WAIT_S)
        assert frame is not None and frame[:1] == b"R" and frame[2:2 + frame[1]] == b"client-7"
        page = codec.decode_any(frame[2 + frame[1]:])
        assert isinstance(page, pm.MessagesPage) and page.id == "r1"
        assert [m.seq for m in page.messages] == [3, 4] and page.has_more_before
    finally:
        ref.stop(timeout=WAIT_S)
        release_gateway_inbox(endpoint)
        ctx.term()


def test_an_unusable_database_stops_the_actor_without_leaking_threads(tmp_path):
    (tmp_path / "dir.db").mkdir()  # a directory where the file should be
    ref = PersistenceActor.start(Config(), tmp_path / "dir.db")
    wait_for(lambda: not ref.is_alive())
    names = {t.name for t in threading.enumerate()}
    assert not names & {"persistence-flush-timer", "persistence-checkpointer"}


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from actors.persistence import PersistenceActor
    from orbitdock.config import Config
    from orbitdock.protocol.models import Message
    from orbitdock.store.commands import SaveMessage, SaveSession

    cfg = Config()
    cfg.persistence.flush_interval_ms = 5.0
    ref = PersistenceActor.start(cfg, Path(sys.argv[1]))
    proxy = ref.proxy()
    ref.tell(SaveSession("s", {"provider": "codex"}))
    seq = 0
    while True:
        for _ in range(997):  # not a multiple of batch_size: batches straddle reports
            seq += 1
            ref.tell(SaveMessage("s", Message(id=f"m{seq}", seq=seq, type="assistant",
                                              content="z" * 200)))
        proxy.flush().get(timeout=30)  # everything up to seq is committed now
        print(seq, flush=True)
""")


def test_kill_9_leaves_a_gap_free_prefix(tmp_path):
    db = tmp_path / "orbitdock.db"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported = 0
    try:
        deadline = time.monotonic() + 60
        while reported < 20_000 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            line = proc.stdout.readline() if ready else ""
            if not line:
                pytest.fail(f"child stopped early: {proc.stderr.read()[-2000:]}")
            reported = int(line)
        assert reported >= 20_000, "child did not report in time"
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-stream: the child never stops telling
        proc.wait(WAIT_S)
        proc.stdout.close()
        proc.stderr.close()
    conn = schema.open_database(db, Config().persistence)  # recovery + migrations re-run
    try:
        assert schema.apply_migrations(conn) == 0
        assert schema.user_version(conn) == schema.latest_version()
        seqs = [row[0] for row in conn.execute("SELECT seq FROM messages ORDER BY seq")]
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    assert len(seqs) >= reported
    assert seqs == list(range(1, len(seqs) + 1))  # gap-free prefix 1..k
