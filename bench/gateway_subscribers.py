"""bench_gateway's subscriber side: orbitdock and raw-floor subscriber processes, the floor
publisher, and ``Workers``, which starts N subscriber processes and talks to them.

Each subscriber process owns its sockets (one orbitdock ``Subscription``, or one raw
zmq SUB) and reports over its pipe: ``ready``, ``armed`` per phase, then its results.
The floor publisher process owns the raw PUB socket. Everything here is bounded in
count and time and ended by ``Workers.close()`` or the parent's pipe closing.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
import traceback
from array import array
from dataclasses import asdict
from typing import Any

import msgspec
import zmq

from orbitdock.client import Subscription
from orbitdock.config import Config, load
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.topics import HEARTBEAT, split_frame

SPAWN = mp.get_context("spawn")
WARM, END = b"w|", b"e|"  # floor control topics


# =================================================================== subscriber processes
class TimedSubscription(Subscription):
    """A Subscription that stamps each session event when the library applies it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.recording = False
        self.hb_ts = 0.0  # server send time of the last heartbeat seen
        self.reset_marks()

    def reset_marks(self) -> None:
        self.lat = array("d")
        self.n = 0
        self.min_ts = math.inf
        self.max_ts = 0.0
        self.last_at = 0.0
        self.hb_send_gap = 0.0  # longest interval between two heartbeats' server send times

    def _on_frame(self, frame: bytes, applied: list) -> None:
        if frame[:2] == HEARTBEAT:  # 1/s: decoding it twice costs nothing
            hb = codec.decode_inbound(split_frame(frame)[1])
            if isinstance(hb, m.Heartbeat):  # (not the welcome on h|)
                if self.recording and self.hb_ts:
                    self.hb_send_gap = max(self.hb_send_gap, hb.ts - self.hb_ts)
                self.hb_ts = hb.ts
        super()._on_frame(frame, applied)

    def _on_session_event(self, event: m.SessionEvent, applied: list) -> None:
        before = len(applied)
        super()._on_session_event(event, applied)
        if self.recording and len(applied) > before and applied[-1] is event:
            now = time.time()
            self.lat.append(now - event.ts)
            self.n += 1
            self.last_at = now
            if event.ts < self.min_ts:
                self.min_ts = event.ts
            if event.ts > self.max_ts:
                self.max_ts = event.ts


class OdSub:
    def __init__(self, setup: dict[str, Any]):
        from orbitdock.client import find_daemon

        cfg = load(env={"ORBITDOCK_HOME": setup["home"]})
        self.sids: list[str] = setup["sids"]
        self.sub = TimedSubscription(find_daemon(cfg), config=cfg)
        for sid in self.sids:
            self.sub.watch_session(sid)
        self.ok = self.sub.wait_synced(60.0)
        self.base_turns: dict[str, int] = {}

    def arm(self) -> None:
        self.sub.recording = False
        self.sub.poll(0.2)  # apply stragglers of the previous phase, unrecorded
        self.sub.reset_marks()
        self.base_turns = {sid: (st.turn_count if (st := self.sub.state(sid)) else -1)
                           for sid in self.sids}
        self.stats0 = asdict(self.sub.stats)
        self.sub.recording = True

    def _done(self, sid: str) -> bool:
        st = self.sub.state(sid)
        return st is not None and st.current_turn_id is None and \
            st.turn_count > self.base_turns.get(sid, -1)

    def run(self, max_s: float) -> dict[str, Any]:
        poller = zmq.Poller()
        poller.register(self.sub.sub, zmq.POLLIN)
        poller.register(self.sub.requests.sock, zmq.POLLIN)
        pending = set(self.sids)
        started = time.monotonic()
        deadline = started + max_s
        # Heartbeat silence as this client sees it (Subscription.server_alive turns false
        # past heartbeat_interval_s * heartbeat_liveness): a stalled gateway loop, or a
        # client so far behind that heartbeats wait in its queue.
        hb_seen, hb_gap = self.sub.last_heartbeat, 0.0
        while pending and time.monotonic() < deadline:
            if not poller.poll(100):
                hb_gap = max(hb_gap, time.monotonic() - hb_seen)
                continue
            applied = self.sub.poll(0)
            if self.sub.last_heartbeat != hb_seen:
                hb_gap = max(hb_gap, self.sub.last_heartbeat - hb_seen)
                hb_seen = self.sub.last_heartbeat
            else:
                hb_gap = max(hb_gap, time.monotonic() - hb_seen)
            for item in applied:
                sid = getattr(item, "session_id", None)
                if sid is None and isinstance(item, m.SessionSnapshot):
                    sid = item.session.id
                if sid in pending and self._done(sid):
                    pending.discard(sid)
        # A turn's last flush goes on after current_turn_id=None (work status, activity
        # time): take what is still coming until 0.3 s of silence.
        while not pending and time.monotonic() < deadline and poller.poll(300):
            self.sub.poll(0)
        self.sub.recording = False
        stats = asdict(self.sub.stats)
        s = self.sub
        return {"n": s.n, "lat": s.lat.tobytes(), "min_ts": s.min_ts, "max_ts": s.max_ts,
                "last_at": s.last_at, "done": not pending, "unfinished": len(pending),
                "hb_gap": hb_gap, "hb_send_gap": s.hb_send_gap,
                # why a session never finished: mirror not synced, snapshot asked, no reply
                "unsynced": sum(1 for mir in s.sessions.values() if not mir.synced),
                "awaiting_snapshot": sum(1 for mir in s.sessions.values()
                                         if mir.pending_request is not None),
                "elapsed": time.monotonic() - started,
                **{k: stats[k] - self.stats0[k] for k in
                   ("gaps", "resyncs", "dropped_old", "epoch_changes")}}

    def close(self) -> None:
        self.sub.close()


class _FloorEvent(msgspec.Struct):
    ts: float = 0.0
    rev: int = 0


class FloorSub:
    def __init__(self, setup: dict[str, Any]):
        ccfg = Config().client
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, ccfg.receive_hwm)
        self.sock.connect(setup["endpoint"])
        for topic in setup["topics"]:
            self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        self.sock.setsockopt(zmq.SUBSCRIBE, END)
        self.sock.setsockopt(zmq.SUBSCRIBE, WARM)  # last: once a w| arrives, all are live
        self.decoder = msgspec.msgpack.Decoder(_FloorEvent)
        self.ok = bool(self.sock.poll(30_000))
        self.phase = 0

    def arm(self) -> None:
        self.phase += 1

    def run(self, max_s: float) -> dict[str, Any]:
        end = END + str(self.phase).encode()
        lat = array("d")
        last_rev: dict[bytes, int] = {}
        gaps = n = 0
        min_ts, max_ts, last_at = math.inf, 0.0, 0.0
        sock, decode = self.sock, self.decoder.decode
        started = time.monotonic()
        deadline = started + max_s
        finished = False
        while not finished and time.monotonic() < deadline:
            if not sock.poll(100):
                continue
            while True:
                try:
                    frame = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if frame[:2] in (WARM, END):
                    if frame == end:
                        finished = True
                        break
                    continue
                topic, payload = split_frame(frame)
                ev = decode(payload)
                now = time.time()
                lat.append(now - ev.ts)
                n += 1
                last_at = now
                min_ts = min(min_ts, ev.ts)
                max_ts = max(max_ts, ev.ts)
                prev = last_rev.get(topic)
                if prev is not None and ev.rev != prev + 1:
                    gaps += 1
                last_rev[topic] = ev.rev
        return {"n": n, "lat": lat.tobytes(), "min_ts": min_ts, "max_ts": max_ts,
                "last_at": last_at, "done": finished, "unfinished": 0 if finished else 1,
                "elapsed": time.monotonic() - started, "gaps": gaps, "resyncs": 0, "hb_gap": 0.0,
                "dropped_old": 0, "epoch_changes": 0}

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


def sub_worker(mode: str, setup: dict[str, Any], conn) -> None:
    """One subscriber process: connect + sync, then run phases on command."""
    impl = None
    try:
        impl = OdSub(setup) if mode == "od" else FloorSub(setup)
        conn.send(("ready", impl.ok))
        while conn.poll(600):
            cmd = conn.recv()
            if cmd[0] == "quit":
                break
            if cmd[0] == "phase":
                impl.arm()
                conn.send(("armed", None))
                conn.send(("result", impl.run(cmd[1])))
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        if impl is not None:
            impl.close()
        conn.close()


def floor_publisher(endpoint: str, topics: list[bytes], templates: list[bytes], conn) -> None:
    """The raw floor's PUB process: single-frame topic+payload, reused encoder and buffer."""
    try:
        ctx = zmq.Context()
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, Config().gateway.subscriber_hwm)
        pub.setsockopt(zmq.LINGER, 0)
        pub.bind(endpoint)
        events = [codec.decode_inbound(t) for t in templates]
        sids = [t[2:-1].decode() for t in topics]
        encoder = msgspec.msgpack.Encoder()
        buf = bytearray()
        revs = [0] * len(topics)
        marker: bytes | None = WARM
        conn.send(("bound", None))
        while True:
            if not conn.poll(0.02):
                if marker:
                    pub.send(marker)
                continue
            cmd = conn.recv()
            if cmd[0] == "quit":
                break
            if cmd[0] == "marker":
                marker = cmd[1]
                continue
            _, phase, count, rate = cmd  # rate 0 = as fast as possible
            period = 1.0 / rate if rate else 0.0
            n_topics, n_events = len(topics), len(events)
            next_at = time.perf_counter()
            t0 = time.perf_counter()
            for i in range(count):
                if period:
                    next_at += period
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                k = i % n_topics
                ev = events[i % n_events]
                revs[k] += 1
                ev.session_id, ev.rev, ev.ts = sids[k], revs[k], time.time()
                topic = topics[k]
                buf[:] = topic
                encoder.encode_into(ev, buf, len(topic))
                pub.send(buf)
            conn.send(("sent", time.perf_counter() - t0))
            marker = END + str(phase).encode()
        pub.close(linger=0)
        ctx.term()
    except Exception:
        conn.send(("error", traceback.format_exc()))


# =================================================================== orchestration
class Workers:
    """N subscriber processes plus the pipes to them (all ended in close())."""

    def __init__(self, mode: str, n: int, setup: dict[str, Any], timeout: float = 120.0):
        self.procs, self.conns = [], []
        for _ in range(n):
            parent, child = SPAWN.Pipe()
            p = SPAWN.Process(target=sub_worker, args=(mode, setup, child), daemon=True)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)
        oks = self.expect("ready", timeout)
        if not all(oks):
            raise RuntimeError(f"{oks.count(False)} of {n} {mode} subscribers did not sync")

    def expect(self, what: str, timeout: float) -> list[Any]:
        out = []
        deadline = time.monotonic() + timeout
        for conn in self.conns:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"a subscriber did not report {what!r} within {timeout:.0f}s")
            kind, value = conn.recv()
            if kind == "error":
                raise RuntimeError(f"subscriber failed:\n{value}")
            if kind != what:
                raise RuntimeError(f"subscriber sent {kind!r}, expected {what!r}")
            out.append(value)
        return out

    def start_phase(self, max_s: float) -> None:
        for conn in self.conns:
            conn.send(("phase", max_s))
        self.expect("armed", 60.0)

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("quit",))
            except (OSError, BrokenPipeError):
                pass
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
                p.join(5)
        for conn in self.conns:
            conn.close()
