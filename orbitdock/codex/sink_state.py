"""SinkState: where a codex session's thread is, and every move ``ThreadSink`` makes."""

from __future__ import annotations

import enum


class SinkState(enum.StrEnum):
    """Where a sink's thread is; ``ThreadSink._enter`` is the one place it changes."""

    NEW = "new"  # not attached yet
    STARTING = "starting"  # thread/start (or thread/fork) asked
    RESUMING = "resuming"  # thread/resume asked, or due on a fresh process after a loss
    READY = "ready"  # the thread exists: commands run
    FAILED = "failed"  # gave up (BackendLost fatal emitted); commands are refused
    STOPPED = "stopped"  # detached; commands are refused


S = SinkState
# Every move a sink makes, from -> to. READY -> RESUMING is a process loss; RESUMING ->
# STARTING a resume of a thread that never had a turn (a new one is equivalent);
# RESUMING -> RESUMING a resume retried on the next process. Detaching stops from anywhere.
SINK_TRANSITIONS: dict[SinkState, frozenset[SinkState]] = {
    S.NEW: frozenset({S.STARTING, S.RESUMING, S.FAILED, S.STOPPED}),
    S.STARTING: frozenset({S.READY, S.FAILED, S.STOPPED}),
    S.RESUMING: frozenset({S.RESUMING, S.STARTING, S.READY, S.FAILED, S.STOPPED}),
    S.READY: frozenset({S.RESUMING, S.FAILED, S.STOPPED}),
    S.FAILED: frozenset({S.STOPPED}),
    S.STOPPED: frozenset({S.STOPPED}),
}
WAITING_FOR_THREAD = frozenset({S.NEW, S.STARTING, S.RESUMING})  # commands are deferred
