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
    DaemonProcess, bench_daemon, exit_on_sigterm, fmt_ms, fmt_rate, median, pipelined,
    summarize,
)
from gateway_report import report  # noqa: E402
from gateway_subscribers import SPAWN, Workers, floor_publisher  # noqa: E402

import zmq  # noqa: E402

from orbitdock.client import Client  # noqa: E402
from orbitdock.protocol import codec  # noqa: E402
from orbitdock.protocol import messages as m  # noqa: E402
from orbitdock.protocol.topics import session_topic, split_frame  # noqa: E402


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
    replies = pipelined(client, [m.SubscribeSession(session_id=s) for s in sids], 60.0,
                        raise_errors=False)
    return {r.session.id: (r.session.revision, r.session.current_turn_id) for r in replies}


def wait_idle(client: Client, sids: list[str], timeout: float = 120.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        revs = session_revs(client, sids)
        if all(turn is None for _, turn in revs.values()):
            return {sid: rev for sid, (rev, _) in revs.items()}
        if time.monotonic() > deadline:
            raise TimeoutError("sessions still running their turns")
        time.sleep(0.1)


def capture_frames(daemon: DaemonProcess, client: Client, sid: str, size: int,
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


def scan_log(daemon: DaemonProcess) -> dict[str, Any]:
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
                                 for i in range(n)], 120.0, raise_errors=False)
    return [r.session.id for r in replies]


def od_phase(client: Client, sids: list[str], workers: Workers, text: str,
             max_s: float, keep_lat: bool, spread_s: float = 0.0) -> dict[str, Any]:
    before = wait_idle(client, sids)
    workers.start_phase(max_s)
    pipelined(client, [m.SendMessage(session_id=s, content=text) for s in sids], 120.0,
              spread_s=spread_s, raise_errors=False)
    results = workers.expect("result", max_s + 30)
    after = wait_idle(client, sids)
    out = merge_results(results, keep_lat)
    out["produced"] = sum(after[s] - before[s] for s in sids)
    out["missing"] = sum(max(0, out["produced"] - n) for n in out["events_per_sub"])
    out["command"] = text
    return out


def run_orbitdock(S: int, n_subs: int, p: Params) -> dict[str, Any]:
    daemon = bench_daemon(env=p.daemon_env, cmd=p.daemon_cmd)
    workers = None
    failed = True
    try:
        daemon.start()
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
            daemon.stop()
            daemon.cleanup(keep=failed)  # a failed run keeps its log for inspection


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
