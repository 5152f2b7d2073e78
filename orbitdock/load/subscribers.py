"""Subscriber processes: live mirrors of every session through ``orbitdock.client``.

Each subscriber is its own process (spawned, so it shares no GIL with the tool
or another subscriber) holding one ``LoadSubscription``: the library's
Subscription plus what the load tool measures — latency of every applied event
(receive time minus the backend's ``ts``), gaps per session, and the messages it
saw *complete at the end of their turn* (id -> digest), which the loss check
later compares with the database. Subscriber 0 is the driver (``driver.py``):
it sends the turns and answers the approvals.

Talks to the tool over a Pipe: ``progress`` every PROGRESS_S, and commands
``pause``/``resume``/``drain``/``final``/``quit``. The loop is bounded by
``max_lifetime_s`` and ends when the pipe closes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import time
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import zmq

from orbitdock.client import ClientError, Subscription, find_daemon, snapshot_bytes
from orbitdock.config import load
from orbitdock.load.verify import message_digest
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import Message

logger = logging.getLogger(__name__)

POLL_MS = 20  # longest sleep of the loop when nothing arrives
PROGRESS_S = 1.0  # period of progress reports to the tool
MAX_SAMPLES = 4_000_000  # latency samples kept per subscriber; beyond, reservoir sampling
FINAL_SYNC_S = 60.0  # final check: longest wait for mirrors to reach the server's revisions
DRAIN_POLL_S = 0.05


def digest(msg: Message) -> int:
    """What identifies a message's visible content (type + text), as 8 bytes."""
    return message_digest(msg.type, msg.content, msg.tool_input)


def state_digest(state) -> int:
    return int.from_bytes(hashlib.blake2b(snapshot_bytes(state), digest_size=8).digest(), "big")


class Samples:
    """(receive time, latency) pairs, bounded by reservoir sampling."""

    def __init__(self, cap: int = MAX_SAMPLES):
        self.at, self.lat, self.cap, self.seen = array("d"), array("d"), cap, 0
        self._rng = random.Random(1)

    def add(self, at: float, lat: float) -> None:
        self.seen += 1
        if len(self.lat) < self.cap:
            self.at.append(at)
            self.lat.append(lat)
        else:
            k = self._rng.randrange(self.seen)
            if k < self.cap:
                self.at[k], self.lat[k] = at, lat

    def dump(self) -> dict[str, Any]:
        return {"at": self.at.tobytes(), "lat": self.lat.tobytes(), "seen": self.seen}


class LoadSubscription(Subscription):
    """Subscription + latency of every applied event, resyncs per session, seen messages."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.samples = Samples()
        self.window: list[float] = []  # latencies since the last progress report
        # resyncs per session for a gap, a tail past the mirror or a session reset
        self.gaps_by_sid: Counter[str] = Counter()
        self._resyncing_all = False
        self.touched: set[str] = set()
        self.ended: set[str] = set()  # sessions whose turn ended (or that were resynced)
        self.resolved: list[tuple[str, float]] = []  # (approval id, receive time)
        self.backend_events: list[tuple[str, str, float]] = []  # (sid, lost|cleared, ts)
        self.last_lost: dict[str, float] = {}  # sid -> ts of its latest "backend lost"
        self.seen: dict[str, tuple[int, float]] = {}  # message id -> (digest, first seen at)
        self.conflicts: list[tuple[str, int, int, float, float]] = []
        self.seen_text: dict[str, str] = {}
        self.request_errors = 0

    # ------------------------------------------------------------ library hooks
    def resync(self, mirror) -> None:
        if not self._resyncing_all:  # a new daemon epoch is not a gap of this session
            self.gaps_by_sid[mirror.session_id] += 1
        super().resync(mirror)

    def resync_all(self, current_epoch: str | None = None) -> None:
        self._resyncing_all = True
        try:
            super().resync_all(current_epoch)
        finally:
            self._resyncing_all = False

    def _on_reply(self, reply: m.Wire, applied: list[m.Wire]) -> None:
        super()._on_reply(reply, applied)
        if isinstance(reply, m.SessionSnapshot):
            self.touched.add(reply.session.id)
            self.ended.add(reply.session.id)

    def _on_session_event(self, event: m.SessionEvent, applied: list[m.Wire]) -> None:
        count = len(applied)
        super()._on_session_event(event, applied)
        sid = event.session_id
        if len(applied) == count or applied[-1] is not event:
            return
        now = time.time()
        latency = now - event.ts
        self.samples.add(now, latency)
        self.window.append(latency)
        self.touched.add(sid)
        if isinstance(event, m.SessionDelta):
            changes = event.changes
            if changes.current_turn_id is None:
                self.ended.add(sid)
            error = changes.last_error
            if isinstance(error, str) and error.startswith("backend lost"):
                self.backend_events.append((sid, "lost", event.ts))
                self.last_lost[sid] = event.ts
            elif error is None:
                self.backend_events.append((sid, "cleared", event.ts))
        elif isinstance(event, m.ApprovalResolved):
            self.resolved.append((event.approval_id, now))

    # ------------------------------------------------------------ load-tool additions
    def pump(self) -> None:
        """Process what has arrived (no wait); survive a daemon that is down."""
        try:
            self.poll(0)
        except ClientError as exc:  # a (re)request could not be queued: daemon down
            self.request_errors += 1
            logger.debug("request failed while the daemon is away: %s", exc)
        for sid in list(self.summaries):
            if sid not in self.sessions:
                self.watch_session(sid)

    def record_seen(self, sid: str) -> None:
        """Remember every complete message of a session whose turn has ended."""
        state = self.state(sid)
        if state is None or state.current_turn_id is not None:
            return
        now = time.time()
        for msg in state.messages:
            if msg.is_in_progress:
                continue
            d = digest(msg)
            prev = self.seen.get(msg.id)
            if prev is None or prev[0] != d:
                if prev is not None:
                    self.conflicts.append((msg.id, prev[0], d, prev[1], now))
                self.seen[msg.id] = (d, now)
                # what it looked like, for the report's examples
                self.seen_text[msg.id] = f"{msg.type} {msg.content[:50]!r}"

    def take_window(self) -> dict[str, float]:
        window, self.window = sorted(self.window), []
        if not window:
            return {"n": 0}
        return {"n": len(window), "p50": window[len(window) // 2],
                "p99": window[min(len(window) - 1, int(len(window) * 0.99))], "max": window[-1]}


@dataclass
class SubSetup:
    index: int
    role: str  # driver | watch | slow
    env: dict[str, str]  # to find the daemon: ORBITDOCK_HOME and config overrides
    sessions: list[str]  # direct sessions (the driver drives these, in index order)
    driver: Any = None  # DriverParams for the driver
    max_lifetime_s: float = 3600.0
    sync_timeout_s: float = 120.0
    extra: dict[str, Any] = field(default_factory=dict)


def _final(sub: LoadSubscription, driver, server: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Catch up to the server's revisions, then report everything the checks need."""
    deadline = time.monotonic() + FINAL_SYNC_S
    while time.monotonic() < deadline:
        sub.pump()
        behind = [sid for sid, (rev, _) in server.items()
                  if (st := sub.state(sid)) is None or st.revision < rev]
        if not behind:
            break
        time.sleep(DRAIN_POLL_S)
    mismatched, behind, dup_ids = [], [], 0
    for sid, (rev, dig) in server.items():
        st = sub.state(sid)
        if st is None or st.revision < rev:
            behind.append(sid)
            continue
        sub.record_seen(sid)
        if st.revision == rev and state_digest(st) != dig:
            mismatched.append(sid)
        ids = [x.id for x in st.messages]
        dup_ids += len(ids) - len(set(ids))
    out = {"seen": sub.seen, "conflicts": sub.conflicts, "seen_text": sub.seen_text,
           "mismatched": mismatched,
           "behind": behind, "dup_ids": dup_ids, "samples": sub.samples.dump(),
           "gaps_by_sid": dict(sub.gaps_by_sid), "stats": dataclasses.asdict(sub.stats),
           "backend_events": sub.backend_events, "request_errors": sub.request_errors}
    if driver is not None:
        out["driver"] = driver.report()
    return out


def subscriber_main(setup: SubSetup, conn) -> None:
    """Process entry (spawn): connect, sync, run until told to quit."""
    logging.basicConfig(level=logging.WARNING)
    sub = None
    try:
        cfg = load(env=setup.env)
        endpoints = find_daemon(cfg)
        sub = LoadSubscription(endpoints, config=cfg, ctx=zmq.Context())
        sub.watch_list()
        for sid in setup.sessions:
            sub.watch_session(sid)
        driver = None
        if setup.role == "driver":
            from orbitdock.load.driver import Driver
            driver = Driver(sub, endpoints, setup.sessions, setup.driver)
        deadline = time.monotonic() + setup.sync_timeout_s
        while not sub.all_synced() and time.monotonic() < deadline:
            sub.pump()
            time.sleep(0.01)
        conn.send(("ready", sub.all_synced()))
        _loop(setup, conn, sub, driver)
    except (EOFError, BrokenPipeError):
        pass
    except Exception:  # report the traceback to the tool instead of dying silently
        try:
            conn.send(("error", traceback.format_exc()))
        except (OSError, BrokenPipeError):
            pass
    finally:
        if sub is not None:
            sub.close()
        conn.close()


def _loop(setup: SubSetup, conn, sub: LoadSubscription, driver) -> None:
    poller = zmq.Poller()
    poller.register(sub.sub, zmq.POLLIN)
    poller.register(sub.requests.sock, zmq.POLLIN)
    if driver is not None:
        poller.register(driver.client.sock, zmq.POLLIN)
    poller.register(conn.fileno(), zmq.POLLIN)
    end = time.monotonic() + setup.max_lifetime_s
    next_progress = time.monotonic() + PROGRESS_S
    while time.monotonic() < end:
        poller.poll(POLL_MS)
        sub.pump()
        if driver is not None:
            driver.step()
        for sid in sub.ended:
            sub.record_seen(sid)
        sub.touched.clear()
        sub.ended.clear()
        now = time.monotonic()
        if now >= next_progress:
            next_progress = now + PROGRESS_S
            conn.send(("progress", {
                "events": sub.stats.events, "gaps": sub.stats.gaps, "resyncs": sub.stats.resyncs,
                "window": sub.take_window(), "synced": sub.all_synced(),
                "sessions": len(sub.sessions),
                "driver": driver.progress() if driver is not None else None}))
        while conn.poll(0):
            cmd, arg = conn.recv()
            if cmd == "quit":
                return
            if cmd == "final":
                conn.send(("final", _final(sub, driver, arg)))
            elif driver is not None and cmd in ("pause", "resume", "drain", "restarted"):
                driver.command(cmd, arg)
                if cmd == "drain":
                    conn.send(("drained", driver.drain(arg)))
                elif cmd == "pause":
                    conn.send(("paused", None))  # the tool waits for this before restarting
