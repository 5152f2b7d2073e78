"""orbitdock-ws: event -> WebSocket-client latency beside the ZeroMQ path, and memory per client.

    .venv/bin/python bench/bench_ws.py [--sessions 200] [--clients 10] [--runs 3] [--json FILE]

One fresh daemon (throw-away ORBITDOCK_HOME under /tmp) with ``--sessions`` scripted
sessions, and one orbitdock-ws bridge for it. Each run has two phases under the same
paced load (every session runs ``/stream N RATE SIZE``, ``--rate`` deltas/s in all):

1. zmq: ``--clients`` subscriber *processes*, each an ``orbitdock.client.Subscription``
   watching every session, record ``time.time() - event.ts`` for every streamed update;
2. ws:  ``--clients`` WebSocket client *processes*, each subscribed to every session over
   the bridge, record ``time.time() - frame.ts`` for every ``message_updated``
   (``ts``: the backend's wall clock when it produced the event, carried by both paths).

The WebSocket path is the ZeroMQ path plus the bridge (one Subscription, JSON encoding,
per-client queues), so the ratio of the two p99s in the same run is the bridge's cost;
target p99(ws) <= 2 x p99(zmq). Then memory: the bridge's RSS with one client following
every session (the mirrors exist), then with ``--clients`` more; the difference per
client. Not a test: nothing is asserted; numbers are printed (markdown) with the command.
Every wait is bounded; everything started here is stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from array import array
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    REPO, bench_daemon, command_line, exit_on_sigterm, fmt_ms, machine_line, markdown_table,
    median, pipelined, summarize,
)

import psutil  # noqa: E402

from orbitdock.protocol import messages as m  # noqa: E402

SPAWN = mp.get_context("spawn")
READY_TIMEOUT_S = 120.0
BRIDGE_START_S = 30.0


# ------------------------------------------------------------------ client processes
def zmq_client(endpoints: tuple[str, str], home: str, sids: list[str], conn) -> None:
    from orbitdock.client import Endpoints, Subscription
    from orbitdock.config import load

    class Timed(Subscription):
        """Times each update when the client library applies it (``poll`` returns only at
        the end of its window)."""

        lats: array | None = None

        def _on_session_event(self, event: m.SessionEvent, applied: list) -> None:
            before = len(applied)
            super()._on_session_event(event, applied)
            if (self.lats is not None and len(applied) > before
                    and isinstance(event, m.MessageUpdated)):
                self.lats.append(time.time() - event.ts)

    sub = Timed(Endpoints(*endpoints), config=load(env={"ORBITDOCK_HOME": home}))
    for sid in sids:
        sub.watch_session(sid)
    sub.wait_synced(READY_TIMEOUT_S)

    def take(lats: array, left: float) -> None:
        sub.lats = lats
        sub.poll(min(left, 0.05))
    _measure(conn, take)
    sub.close()


def ws_client(url: str, sids: list[str], size: int, conn) -> None:
    asyncio.run(_ws_client(url, sids, size, conn))


async def _ws_client(url: str, sids: list[str], size: int, conn) -> None:
    """One asyncio thread, like the bridge (the sync client hands each frame across a
    thread, which the zmq clients do not pay). Like the zmq clients it pays nothing per
    frame but its own work: the stop order is watched on the pipe's descriptor (not
    polled per frame), and frames are read by one loop (no timeout task per frame).

    The bridge coalesces streaming updates of one message that reach it in one batch
    into one frame; such a frame counts once for every ``size``-character delta it
    carries, each with the frame's latency (that of its newest delta: a lower bound for
    the older ones), so both paths measure the same updates."""
    import msgspec
    from websockets.asyncio.client import connect

    decode = msgspec.json.Decoder().decode  # the zmq clients decode with msgspec too
    loop = asyncio.get_running_loop()
    async with connect(url, max_size=None, open_timeout=30) as ws:
        await ws.recv()  # server_info
        for sid in sids:
            await ws.send(json.dumps({"type": "subscribe_session", "session_id": sid}))
        snapshots = 0
        deadline = time.monotonic() + READY_TIMEOUT_S
        while snapshots < len(sids) and time.monotonic() < deadline:
            if decode(await ws.recv(decode=False))["type"] == "session_snapshot":
                snapshots += 1
        conn.send("ready")
        order = await asyncio.to_thread(conn.recv)
        lats = array("d")
        if order == "go":
            stop = asyncio.Event()
            loop.add_reader(conn.fileno(), stop.set)
            reader = asyncio.create_task(_take_frames(ws, decode, size, lats))
            await stop.wait()
            loop.remove_reader(conn.fileno())
            reader.cancel()
            conn.recv()
        conn.send(lats.tobytes())


async def _take_frames(ws, decode, size: int, lats: array) -> None:
    seen: dict[str, int] = {}  # message id -> characters of content received
    while True:
        frame = decode(await ws.recv(decode=False))
        if frame["type"] == "message_appended":
            seen[frame["message"]["id"]] = len(frame["message"]["content"] or "")
            continue
        if frame["type"] != "message_updated":
            continue
        lat = time.time() - frame["ts"]
        changes = frame["changes"]
        content = changes.get("content")
        covered = 1
        if content is not None:
            before = seen.get(frame["message_id"], 0)
            # the deltas it carries, and the final update (the whole text, no longer
            # in progress) when that came with them
            covered = max(1, (len(content) - before) // size
                          + (changes.get("is_in_progress") is False))
            seen[frame["message_id"]] = len(content)
        for _ in range(covered):
            lats.append(lat)


def _measure(conn, take) -> None:
    """ready -> wait for "go" -> take until "stop" -> send the latencies."""
    conn.send("ready")
    order = conn.recv()
    lats = array("d")
    if order == "go":
        while not conn.poll(0):
            take(lats, 0.1)
        conn.recv()
    conn.send(lats.tobytes())


class Clients:
    def __init__(self, target, args_for: list[tuple]):
        self.conns, self.procs = [], []
        for args in args_for:
            parent, child = SPAWN.Pipe()
            proc = SPAWN.Process(target=target, args=(*args, child), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        for conn in self.conns:
            if not conn.poll(READY_TIMEOUT_S):
                raise TimeoutError("a client process did not get ready in time")
            assert conn.recv() == "ready"

    def cpu_s(self) -> float:
        """CPU seconds the client processes used so far (together)."""
        total = 0.0
        for proc in self.procs:
            try:
                total += sum(psutil.Process(proc.pid).cpu_times()[:2])
            except psutil.Error:
                pass
        return total

    def run(self, seconds: float) -> list[float]:
        self.run_cpu_s = -self.cpu_s()
        for conn in self.conns:
            conn.send("go")
        time.sleep(seconds)
        for conn in self.conns:
            conn.send("stop")
        self.run_cpu_s += self.cpu_s()
        lats: list[float] = []
        for conn in self.conns:
            if conn.poll(READY_TIMEOUT_S):
                part = array("d")
                part.frombytes(conn.recv())
                lats.extend(part)
        return lats

    def close(self) -> None:
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


# ------------------------------------------------------------------ the bridge
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_bridge(home: str, port: int) -> subprocess.Popen:
    import urllib.request

    env = dict(os.environ, ORBITDOCK_HOME=home, ORBITDOCK_WS__PORT=str(port),
               ORBITDOCK_LOGGING__STDERR="false")
    proc = subprocess.Popen([sys.executable, "-m", "orbitdock.ws"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + BRIDGE_START_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("orbitdock-ws did not come up")


def stream_all(client, sids: list[str], rate: float, duration: float, size: int) -> None:
    per_session = rate / len(sids)
    count = max(1, int(per_session * duration))
    pipelined(client, [m.SendMessage(session_id=sid,
                                     content=f"/stream {count} {per_session:.3f} {size}")
                       for sid in sids], timeout=60, spread_s=min(1.0, duration / 4))


def wait_idle(client, sids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = pipelined(client, [m.SubscribeSession(session_id=s) for s in sids], 60)
        if all(r.session.current_turn_id is None for r in replies):
            return
        time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rate", type=float, default=500.0, help="paced deltas/s, all sessions")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds measured per phase")
    ap.add_argument("--size", type=int, default=16, help="characters per delta")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="write the raw figures here")
    args = ap.parse_args()
    exit_on_sigterm()
    print(machine_line())
    results: dict[str, Any] = {"runs": [], "params": vars(args)}
    with bench_daemon() as daemon:
        home = str(daemon.home)
        port = free_port()
        bridge = start_bridge(home, port)
        url = f"ws://127.0.0.1:{port}/ws"
        try:
            from orbitdock.client import Client
            client = Client(daemon.endpoints, timeout=30)
            sids = [r.session.id for r in pipelined(
                client, [m.CreateSession(provider="scripted", cwd=f"/bench/{i}")
                         for i in range(args.sessions)], 120)]
            endpoints = (daemon.endpoints.request, daemon.endpoints.events)
            for run in range(args.runs):
                row: dict[str, Any] = {}
                for phase in ("zmq", "ws"):
                    clients = (Clients(zmq_client, [(endpoints, home, sids)] * args.clients)
                               if phase == "zmq" else
                               Clients(ws_client, [(url, sids, args.size)] * args.clients))
                    cpu = {name: psutil.Process(pid) for name, pid in
                           (("daemon", daemon.proc.pid), ("bridge", bridge.pid))}
                    before = {name: sum(p.cpu_times()[:2]) for name, p in cpu.items()}
                    try:
                        stream_all(client, sids, args.rate, args.duration, args.size)
                        lats = clients.run(args.duration)
                    finally:
                        clients.close()
                    used = {name: sum(p.cpu_times()[:2]) - before[name] for name, p in cpu.items()}
                    wait_idle(client, sids, 60)
                    row[phase] = summarize(lats)
                    used["clients"] = clients.run_cpu_s
                    row[phase]["cpu_s"] = used
                    row[phase]["load"] = os.getloadavg()[0]
                    print(f"run {run + 1} {phase}: n={row[phase]['n']} "
                          f"p50 {fmt_ms(row[phase]['p50'])} p99 {fmt_ms(row[phase]['p99'])} "
                          f"max {fmt_ms(row[phase]['max'])} ms; CPU s daemon "
                          f"{used['daemon']:.1f}, bridge {used['bridge']:.1f}, clients "
                          f"{used['clients']:.1f}; load {row[phase]['load']:.1f}", flush=True)
                results["runs"].append(row)
            results["memory"] = memory(bridge.pid, url, sids, args.clients, args.size)
        finally:
            bridge.terminate()
            bridge.wait(10)
    report(results, args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


def memory(pid: int, url: str, sids: list[str], n: int, size: int) -> dict[str, float]:
    """Bridge RSS with one client following every session, then with ``n`` more."""
    proc = psutil.Process(pid)
    first = Clients(ws_client, [(url, sids, size)])
    time.sleep(1.0)
    base = proc.memory_info().rss
    more = Clients(ws_client, [(url, sids, size)] * n)
    time.sleep(1.0)
    with_n = proc.memory_info().rss
    for group in (more, first):
        for conn in group.conns:
            conn.send("skip")
        group.close()
    return {"rss_one_client": base, "rss_more_clients": with_n, "clients": n,
            "per_client": (with_n - base) / n}


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    runs = results["runs"]
    rows = []
    for phase in ("zmq", "ws"):
        rows.append([phase, args.sessions, args.clients,
                     " / ".join(fmt_ms(r[phase]["p50"]) for r in runs),
                     " / ".join(fmt_ms(r[phase]["p99"]) for r in runs),
                     fmt_ms(median(r[phase]["p99"] for r in runs)),
                     str(int(median(r[phase]["n"] for r in runs)))])
    ratio = median(r["ws"]["p99"] / r["zmq"]["p99"] for r in runs if r["zmq"]["p99"])
    print()
    print(markdown_table(["path", "sessions", "clients", "p50 ms (runs)", "p99 ms (runs)",
                          "median p99 ms", "updates measured"], rows))
    mem = results["memory"]
    print(f"\np99 ws / zmq (median of runs): {ratio:.2f}x (target <= 2x)")
    print(f"memory: bridge RSS {mem['rss_one_client'] / 1e6:.1f} MB with 1 client following "
          f"{args.sessions} sessions, {mem['rss_more_clients'] / 1e6:.1f} MB with "
          f"{mem['clients']} more: {mem['per_client'] / 1e3:.0f} kB per client")
    print(f"\ncommand: {command_line()}")


if __name__ == "__main__":
    main()
