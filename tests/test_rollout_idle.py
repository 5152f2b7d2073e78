"""IdleClocks: when a passive session goes idle (the watcher schedules the checks)."""

from __future__ import annotations

from orbitdock.rollout.idle import IDLE, LATER, NOTHING, IdleClocks

TIMEOUT_S = 120.0


def test_idle_after_the_timeout_from_the_newest_write_and_live_again_on_a_new_line():
    clocks = IdleClocks(TIMEOUT_S)
    assert clocks.touch("s", "a.jsonl", mtime=1000.0, now=1000.0) == TIMEOUT_S
    assert clocks.touch("s", "b.jsonl", mtime=1050.0, now=1050.0) is None  # one check pending
    assert clocks.check("s", now=1120.0, importing=False, retry_s=1.0) == (LATER, 50.0)
    assert clocks.check("s", now=1170.0, importing=False, retry_s=1.0) == (IDLE, 0.0)
    assert clocks.counts() == (1, 1)
    assert clocks.check("s", now=1200.0, importing=False, retry_s=1.0) == (NOTHING, 0.0)
    assert clocks.touch("s", "b.jsonl", mtime=1300.0, now=1300.0) == TIMEOUT_S  # live again
    assert clocks.paths("s") == {"a.jsonl", "b.jsonl"}


def test_a_session_being_imported_is_not_idle_whatever_its_file_times():
    clocks = IdleClocks(TIMEOUT_S)
    assert clocks.touch("s", "old.jsonl", mtime=0.0, now=5000.0) < 0  # check at once
    assert clocks.check("s", now=5000.0, importing=True, retry_s=2.0) == (LATER, 2.0)
    assert clocks.check("s", now=5002.0, importing=False, retry_s=2.0) == (IDLE, 0.0)


def test_unknown_sessions_and_moves():
    clocks = IdleClocks(TIMEOUT_S)
    assert clocks.check("nobody", now=0.0, importing=False, retry_s=1.0) == (NOTHING, 0.0)
    assert clocks.paths("nobody") == set()
    clocks.moved(None, "x", "y")  # a file without a session yet: nothing to move
    clocks.touch("s", "sessions/a.jsonl", mtime=1.0, now=1.0)
    clocks.moved("s", "sessions/a.jsonl", "archived_sessions/a.jsonl")
    assert clocks.paths("s") == {"archived_sessions/a.jsonl"}
