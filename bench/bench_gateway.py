"""Foundation benchmark: event fan-out through orbitdockd's gateway, against the raw pyzmq floor.

    .venv/bin/python bench/bench_gateway.py [--quick] [--runs N] [--json FILE]

For each (sessions, subscriber processes) configuration it starts a fresh daemon on a
throw-away ORBITDOCK_HOME under /tmp, creates scripted sessions, starts subscriber
*processes* (each an ``orbitdock.client.Subscription`` watching every session), then:

1. latency:    every session runs ``/stream N RATE SIZE`` (paced deltas, total
               ``--rate`` deltas/s spread over the sessions); each subscriber records
               ``time.time() - event.ts`` for every session event it applies
               (``ts`` = wall clock when the backend produced the event);
2. throughput: every session runs ``/burst N SIZE`` (as fast as possible); each
               subscriber's delivered rate = events applied / (last applied - first ts);
               gaps = ``Subscription.stats.gaps``.

Then the raw floor with the same process count, topic count, payload sizes (real
event frames captured from the daemon, re-encoded per send with a reused msgspec
encoder into a topic-prefixed buffer, single-frame ``send``), same HWMs and the same
event count / rate: plain pyzmq PUB -> SUB processes.

Every loop is bounded in count and time; everything runs on ipc sockets under /tmp;
daemons, publishers and subscriber processes started here are stopped here.
Not a test: nothing is asserted, the numbers are printed (markdown) with the command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from array import array
from dataclasses import asdict, dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    BenchDaemon, command_line, exit_on_sigterm, fmt_ms, fmt_rate, fmt_ratio, machine_line, markdown_table,
    median, pipelined, summarize,
)

import msgspec  # noqa: E402
import zmq  # noqa: E402

from orbitdock.client import Client, Subscription  # noqa: E402
from orbitdock.config import Config, load  # noqa: E402
from orbitdock.protocol import codec  # noqa: E402
from orbitdock.protocol import messages as m  # noqa: E402
from orbitdock.protocol.topics import HEARTBEAT, session_topic, split_frame  # noqa: E402

SPAWN = mp.get_context("spawn")
WARM, END = b"w|", b"e|"  # floor control topics


@dataclass
class Params:
    sessions: list[int]
    subscribers: list[int]
    rate: float  # paced deltas/s over all sessions (latency phase)
    duration: float  # seconds of paced streaming
    burst_total: int  # deltas over all sessions (throughput phase)
    size: int  # characters per delta
    runs: int
    phase_timeout: float  # longest wait for one phase's subscribers
    floor: bool
    daemon_env: dict[str, str]
    daemon_cmd: list[str] | None


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


def merge_results(results: list[dict[str, Any]], keep_lat: bool = True) -> dict[str, Any]:
    """Combine per-subscriber results into one record for a phase."""
    lats = array("d")
    rates = []
    for r in results:
        lat = array("d")
        lat.frombytes(r.pop("lat"))
        if keep_lat:
            lats.extend(lat)
        span = r["last_at"] - r["min_ts"]
        r["rate"] = r["n"] / span if r["n"] and span > 0 else math.nan
        rates.append(r["rate"])
    out = {
        "subs": len(results),
        "events_per_sub": [r["n"] for r in results],
        "rates": rates,
        "rate_median": median(rates),
        "rate_min": min(rates) if rates else math.nan,
        "deliveries_per_s": sum(r["n"] for r in results) / max(
            1e-9, max(r["last_at"] for r in results) - min(r["min_ts"] for r in results)),
        "gaps": sum(r["gaps"] for r in results),
        "resyncs": sum(r["resyncs"] for r in results),
        "unfinished": sum(r["unfinished"] for r in results),
        "hb_gap_max": max(r["hb_gap"] for r in results),
        "hb_send_gap_max": max(r.get("hb_send_gap", 0.0) for r in results),
        "unsynced": sum(r.get("unsynced", 0) for r in results),
        "awaiting_snapshot": sum(r.get("awaiting_snapshot", 0) for r in results),
        "producer_span_s": max(r["max_ts"] for r in results) - min(r["min_ts"] for r in results),
    }
    if keep_lat:
        out.update(summarize(lats))
    return out


def session_revs(client: Client, sids: list[str]) -> dict[str, tuple[int, str | None]]:
    replies = pipelined(client, [m.SubscribeSession(session_id=s) for s in sids], 60.0)
    return {r.session.id: (r.session.revision, r.session.current_turn_id)
            for r in replies.values()}


def wait_idle(client: Client, sids: list[str], timeout: float = 120.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        revs = session_revs(client, sids)
        if all(turn is None for _, turn in revs.values()):
            return {sid: rev for sid, (rev, _) in revs.items()}
        if time.monotonic() > deadline:
            raise TimeoutError("sessions still running their turns")
        time.sleep(0.1)


def capture_frames(daemon: BenchDaemon, client: Client, sid: str, size: int,
                   deltas: int = 20) -> list[bytes]:
    """Real event frames of one session's /burst turn, read with a plain SUB socket."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(daemon.endpoints.events)
    topic = session_topic(sid)
    sock.setsockopt(zmq.SUBSCRIBE, topic)
    try:
        if not sock.poll(5000):  # the gateway's welcome: the subscription is live
            raise RuntimeError("no welcome from the gateway")
        sock.recv()
        client.request(m.SendMessage(session_id=sid, content=f"/burst {deltas} {size}"))
        frames: list[bytes] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sock.poll(300):
            frames.append(sock.recv())
        wait_idle(client, [sid])
    finally:
        sock.close(linger=0)
    payloads = [split_frame(f)[1] for f in frames]
    return [p for p in payloads if isinstance(codec.decode_inbound(p), m.SessionEvent)]


def scan_log(daemon: BenchDaemon) -> dict[str, Any]:
    """Warnings/errors (and INFO lines about dropped replies) in the daemon's JSON log."""
    counts: dict[str, int] = {}
    path = daemon.home / "logs" / "orbitdockd.log"
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return counts
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        msg = str(rec.get("msg", ""))
        if rec.get("level") in ("warning", "error", "critical") or "dropped" in msg:
            key = f"{rec.get('level')}: {msg[:80]}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def create_sessions(client: Client, n: int) -> list[str]:
    replies = pipelined(client, [m.CreateSession(provider="scripted", cwd=f"/work/bench{i}")
                                 for i in range(n)], 120.0)
    return [r.session.id for r in replies.values()]


def od_phase(client: Client, sids: list[str], workers: Workers, text: str,
             max_s: float, keep_lat: bool, spread_s: float = 0.0) -> dict[str, Any]:
    before = wait_idle(client, sids)
    workers.start_phase(max_s)
    pipelined(client, [m.SendMessage(session_id=s, content=text) for s in sids], 120.0,
              spread_s=spread_s)
    results = workers.expect("result", max_s + 30)
    after = wait_idle(client, sids)
    out = merge_results(results, keep_lat)
    out["produced"] = sum(after[s] - before[s] for s in sids)
    out["missing"] = sum(max(0, out["produced"] - n) for n in out["events_per_sub"])
    out["command"] = text
    return out


def run_orbitdock(S: int, n_subs: int, p: Params) -> dict[str, Any]:
    daemon = BenchDaemon(env=p.daemon_env, cmd=p.daemon_cmd).start()
    workers = None
    failed = True
    try:
        with Client(daemon.endpoints, timeout=30.0) as client:
            sids = create_sessions(client, S)
            templates = capture_frames(daemon, client, sids[0], p.size)
            workers = Workers("od", n_subs, {"home": str(daemon.home), "sids": sids})
            per_rate = p.rate / S
            per_n = max(1, round(per_rate * p.duration))
            # Turn starts are staggered over 1 s (as real sessions' turns are): 200 turns
            # started in the same few ms would be a burst of ~1.6k turn start/end events
            # (and the same again when they all end together), not paced load.
            lat = od_phase(client, sids, workers, f"/stream {per_n} {per_rate:g} {p.size}",
                           p.duration + p.phase_timeout, keep_lat=True,
                           spread_s=min(1.0, p.duration / 4))
            per_burst = max(1, p.burst_total // S)
            thr = od_phase(client, sids, workers, f"/burst {per_burst} {p.size}",
                           p.phase_timeout, keep_lat=False)
            status = client.request(m.GetStatus())
        failed = False
        return {"latency": lat, "throughput": thr, "templates": templates,
                "rss_mb": status.rss_bytes / 2**20, "daemon_log": scan_log(daemon)}
    finally:
        try:
            if workers is not None:
                workers.close()
        finally:
            daemon.stop(keep_home=failed)  # a failed run keeps its log for inspection


def run_floor(S: int, n_subs: int, templates: list[bytes], lat_count: int, lat_rate: float,
              thr_count: int, p: Params) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="orbitdock-floor-")
    endpoint = f"ipc://{tmp}/floor.sock"
    topics = [session_topic(f"od-{uuid.uuid4()}") for _ in range(S)]
    parent, child = SPAWN.Pipe()
    pub = SPAWN.Process(target=floor_publisher, args=(endpoint, topics, templates, child),
                        daemon=True)
    pub.start()
    child.close()
    workers = None
    try:
        if not parent.poll(60) or parent.recv()[0] != "bound":
            raise RuntimeError("floor publisher did not start")
        workers = Workers("floor", n_subs, {"endpoint": endpoint, "topics": topics})
        parent.send(("marker", None))
        out = {}
        for phase, (name, count, rate) in enumerate(
                (("latency", lat_count, lat_rate), ("throughput", thr_count, 0.0)), start=1):
            max_s = p.phase_timeout + (count / rate if rate else 0)
            workers.start_phase(max_s)
            parent.send(("go", phase, count, rate))
            if not parent.poll(max_s):
                raise TimeoutError("floor publisher did not finish sending")
            kind, sent_s = parent.recv()
            if kind == "error":
                raise RuntimeError(f"floor publisher failed:\n{sent_s}")
            results = workers.expect("result", max_s + 30)
            parent.send(("marker", None))
            rec = merge_results(results, keep_lat=(name == "latency"))
            rec["produced"] = count
            rec["missing"] = sum(max(0, count - n) for n in rec["events_per_sub"])
            rec["send_rate"] = count / sent_s if sent_s > 0 else math.nan
            out[name] = rec
        return out
    finally:
        if workers is not None:
            workers.close()
        try:
            parent.send(("quit",))
        except (OSError, BrokenPipeError):
            pass
        pub.join(10)
        if pub.is_alive():
            pub.terminate()
            pub.join(5)
        shutil.rmtree(tmp, ignore_errors=True)


def run_config(S: int, n_subs: int, p: Params, log) -> dict[str, Any]:
    t0 = time.monotonic()
    od = run_orbitdock(S, n_subs, p)
    rec: dict[str, Any] = {"sessions": S, "subs": n_subs, "od_latency": od["latency"],
                           "od_throughput": od["throughput"], "rss_mb": od["rss_mb"],
                           "daemon_log": od["daemon_log"]}
    sizes = [len(session_topic("od-" + "0" * 36)) + len(t) for t in od["templates"]]
    rec["frame_bytes_mean"] = sum(sizes) / len(sizes)
    if p.floor:
        lat = od["latency"]
        lat_rate = lat["produced"] / max(0.5, lat["producer_span_s"])
        fl = run_floor(S, n_subs, od["templates"], lat["produced"], lat_rate,
                       od["throughput"]["produced"], p)
        rec["floor_latency"], rec["floor_throughput"] = fl["latency"], fl["throughput"]
    rec["wall_s"] = time.monotonic() - t0
    ol, ot = rec["od_latency"], rec["od_throughput"]
    line = (f"  S={S:<3} subs={n_subs:<2} | lat p50 {fmt_ms(ol['p50'])} p99 {fmt_ms(ol['p99'])} "
            f"max {fmt_ms(ol['max'])} ms gaps {ol['gaps']} | thr {fmt_rate(ot['rate_median'])}/s "
            f"(min {fmt_rate(ot['rate_min'])}) gaps {ot['gaps']} missing {ot['missing']} "
            f"hb silence {ot['hb_gap_max']:.1f}s (sent {ot['hb_send_gap_max']:.1f}s apart)")
    if p.floor:
        fl_l, fl_t = rec["floor_latency"], rec["floor_throughput"]
        line += (f" | floor p50 {fmt_ms(fl_l['p50'])} p99 {fmt_ms(fl_l['p99'])} ms, "
                 f"{fmt_rate(fl_t['rate_median'])}/s lost {fl_t['missing']}")
    if ot["unfinished"]:
        line += (f" | UNFINISHED {ot['unfinished']} session mirrors ({ot['unsynced']} unsynced, "
                 f"{ot['awaiting_snapshot']} awaiting a snapshot reply)")
    log(line + f" [{rec['wall_s']:.0f}s]")
    for key, count in rec["daemon_log"].items():
        log(f"    daemon log x{count}: {key}")
    return rec


# =================================================================== report
def _med(recs: list[dict], *path: str) -> float:
    vals = []
    for r in recs:
        v: Any = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(float(v))
    return median(vals)


def _per_run(recs: list[dict], fmt, *path: str) -> str:
    vals = []
    for r in recs:
        v: Any = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        vals.append(fmt(v) if isinstance(v, (int, float)) else "—")
    return "/".join(vals)


def _sum(recs: list[dict], *path: str) -> int:
    total = 0
    for r in recs:
        v: Any = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        total += int(v or 0)
    return total


def report(all_runs: list[list[dict]], p: Params, started: str, wall_s: float) -> str:
    by_cfg: dict[tuple[int, int], list[dict]] = {}
    for run in all_runs:
        for rec in run:
            by_cfg.setdefault((rec["sessions"], rec["subs"]), []).append(rec)
    n = len(all_runs)
    lat_rows, thr_rows = [], []
    for (S, subs), recs in sorted(by_cfg.items()):
        load_rate = _med(recs, "od_latency", "produced") / max(
            0.5, _med(recs, "od_latency", "producer_span_s"))
        od_p50, od_p99 = _med(recs, "od_latency", "p50"), _med(recs, "od_latency", "p99")
        fl_p50, fl_p99 = _med(recs, "floor_latency", "p50"), _med(recs, "floor_latency", "p99")
        lat_rows.append([
            S, subs, f"{load_rate:.0f}", fmt_ms(od_p50), fmt_ms(od_p99),
            fmt_ms(_med(recs, "od_latency", "max")),
            _per_run(recs, fmt_ms, "od_latency", "p99"),
            f"{_sum(recs, 'od_latency', 'gaps')}",
            fmt_ms(fl_p50), fmt_ms(fl_p99), fmt_ms(_med(recs, "floor_latency", "max")),
            fmt_ratio(od_p50 / fl_p50) if fl_p50 else "—",
            fmt_ratio(od_p99 / fl_p99) if fl_p99 else "—",
        ])
        od_rate, fl_rate = _med(recs, "od_throughput", "rate_median"), \
            _med(recs, "floor_throughput", "rate_median")
        thr_rows.append([
            S, subs, f"{_med(recs, 'od_throughput', 'produced'):.0f}",
            fmt_rate(od_rate), _per_run(recs, fmt_rate, "od_throughput", "rate_median"),
            fmt_rate(_med(recs, "od_throughput", "rate_min")),
            fmt_rate(_med(recs, "od_throughput", "deliveries_per_s")),
            f"{_sum(recs, 'od_throughput', 'gaps')}",
            f"{_sum(recs, 'od_throughput', 'missing')}",
            _per_run(recs, lambda v: f"{v:.1f}", "od_throughput", "hb_gap_max"),
            _per_run(recs, lambda v: f"{v:.1f}", "od_throughput", "hb_send_gap_max"),
            fmt_rate(fl_rate),
            f"{_sum(recs, 'floor_throughput', 'missing')}" if p.floor else "—",
            fmt_ratio(od_rate / fl_rate) if fl_rate else "—",
        ])
    frame = median(r.get("frame_bytes_mean") for run in all_runs for r in run)
    per_delta = median(r["od_throughput"]["produced"] / p.burst_total
                       for run in all_runs for r in run if "od_throughput" in r)
    failures = sum(1 for run in all_runs for r in run if "error" in r)
    lines = [
        f"Command: `{command_line()}`",
        f"Started {started}, {n} run(s), {wall_s / 60:.1f} min wall"
        + (f"; {failures} configuration run(s) FAILED (see the log)." if failures else "."),
        f"Machine: {machine_line()}",
        f"Load: latency phase `/stream` at {p.rate:g} deltas/s total for {p.duration:g} s; "
        f"throughput phase `/burst` of {p.burst_total} deltas total; {p.size}-char deltas; "
        f"mean event frame {frame:.0f} B (topic + msgpack); {per_delta:.2f} wire events per "
        "backend delta (`/burst` turn). Default HWMs "
        f"(XPUB SNDHWM {Config().gateway.subscriber_hwm}, SUB RCVHWM "
        f"{Config().client.receive_hwm}).",
        "",
        f"Latency, backend event → applied in a subscriber process (ms, median of {n} runs; "
        "p50/p99/max over every delivery to every subscriber):",
        "",
        markdown_table(["sessions", "subs", "wire ev/s", "p50", "p99", "max", "p99 per run",
                        "gaps (sum)", "floor p50", "floor p99", "floor max", "p50 ratio",
                        "p99 ratio"], lat_rows),
        "",
        f"Throughput, `/burst` in every session (median of {n} runs; ev/s = events applied by "
        "one subscriber / (its last event − first event's ts), median over subscribers):",
        "",
        markdown_table(["sessions", "subs", "events", "ev/s per sub", "per run", "slowest sub",
                        "deliveries/s (all subs)", "gaps (sum)", "missing (sum)",
                        "heartbeat silence at client, s", "heartbeat send gap, s",
                        "floor ev/s per sub", "floor lost (sum)", "ratio"], thr_rows),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short phases, 1 run unless --runs")
    ap.add_argument("--runs", type=int, default=None, help="repetitions (default 3; quick 1)")
    ap.add_argument("--sessions", default="50,200")
    ap.add_argument("--subs", default="1,10")
    ap.add_argument("--rate", type=float, default=1000.0,
                    help="paced deltas/s over all sessions in the latency phase")
    ap.add_argument("--duration", type=float, default=None, help="latency phase seconds")
    ap.add_argument("--burst-total", type=int, default=None, help="deltas over all sessions")
    ap.add_argument("--size", type=int, default=16, help="characters per delta")
    ap.add_argument("--no-floor", action="store_true", help="skip the raw pyzmq floor")
    ap.add_argument("--json", help="also write every raw result here")
    ap.add_argument("--daemon-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra daemon environment, e.g. ORBITDOCK_GATEWAY__SUBSCRIBER_HWM=50000")
    ap.add_argument("--daemon-cmd", help="daemon command instead of `python -m actors.daemon` "
                    "(A/B runs of a patch); --no-watcher is appended")
    a = ap.parse_args()
    p = Params(sessions=[int(x) for x in a.sessions.split(",")],
               subscribers=[int(x) for x in a.subs.split(",")],
               rate=a.rate, duration=a.duration or (3.0 if a.quick else 10.0),
               burst_total=a.burst_total or (10_000 if a.quick else 50_000), size=a.size,
               runs=a.runs or (1 if a.quick else 3), phase_timeout=120.0, floor=not a.no_floor,
               daemon_env=dict(kv.split("=", 1) for kv in a.daemon_env),
               daemon_cmd=shlex.split(a.daemon_cmd) if a.daemon_cmd else None)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    exit_on_sigterm()
    started = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    log(f"bench_gateway: {p}")
    t0 = time.monotonic()
    all_runs: list[list[dict]] = []
    for run in range(p.runs):
        log(f"run {run + 1}/{p.runs}")
        recs = []
        for S in p.sessions:
            for subs in p.subscribers:
                try:
                    recs.append(run_config(S, subs, p, log))
                except Exception:  # report it, keep the other configurations
                    log(f"  S={S} subs={subs} FAILED:\n{traceback.format_exc()}")
                    recs.append({"sessions": S, "subs": subs, "error": traceback.format_exc()})
        all_runs.append(recs)
    wall = time.monotonic() - t0
    text = report(all_runs, p, started, wall)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"params": asdict(p), "started": started, "wall_s": wall,
                       "runs": [[{k: v for k, v in r.items() if k != "templates"} for r in run]
                                for run in all_runs]}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
