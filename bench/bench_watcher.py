"""Append -> client latency of terminal-started sessions (the rollout watcher), with its floor.

For 1 and 200 rollout files: a daemon with the watcher follows a CODEX_HOME; an
appender process writes 0.169-format ``item_completed`` AgentMessage lines,
paced, round-robin over the files, each stamped with the wall-clock time of the
append; a subscriber process (``orbitdock.client.Subscription``) watching every
session records ``receive time - event ts`` (the session events carry the line's
timestamp). In the same run, once the daemon has stopped, the floor: the same
appender over the same files, received by a plain watchdog observer + offset read +
orjson parse in its own process, timing append -> parsed. The two phases run one
after the other so each has the machine (two cores) to itself.

    .venv/bin/python bench/bench_watcher.py [--files 1,200] [--rate 200] [--duration 10]
                                            [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (bench_daemon, command_line, exit_on_sigterm, fmt_ms,  # noqa: E402
                    machine_line, markdown_table, median, summarize)

READY_TIMEOUT_S = 60.0  # sessions appear / subscriber syncs
DRAIN_S = 3.0  # after the last append, how long receivers keep listening
DAY_DIR = ("2026", "11", "25")
EXTRA_ENV = dict(kv.split("=", 1) for kv in os.environ.get("BENCH_DAEMON_ENV", "").split(",") if kv)


def iso_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def meta_line(thread_id: str, cwd: str) -> str:
    return json.dumps({"timestamp": iso_now(), "type": "session_meta", "payload": {
        "id": thread_id, "session_id": thread_id, "timestamp": iso_now(), "cwd": cwd,
        "originator": "codex_cli_rs", "cli_version": "0.169.0", "source": "cli",
        "model_provider": "openai"}}) + "\n"


def agent_line(thread_id: str, n: int) -> str:
    return json.dumps({"timestamp": iso_now(), "type": "event_msg", "payload": {
        "type": "item_completed", "thread_id": thread_id, "turn_id": "turn-bench",
        "item": {"type": "AgentMessage", "id": f"msg_{n}",
                 "content": [{"type": "Text", "text": f"line {n}"}]}}}) + "\n"


def make_files(codex_home: Path, count: int) -> list[tuple[str, Path]]:
    day = codex_home.joinpath("sessions", *DAY_DIR)
    day.mkdir(parents=True, exist_ok=True)
    files = []
    for _ in range(count):
        tid = str(uuid.uuid4())
        path = day / f"rollout-2026-11-25T00-00-00-{tid}.jsonl"
        path.write_text(meta_line(tid, str(codex_home)))
        files.append((tid, path))
    return files


def appender(files, rate: float, duration: float, start_at: float) -> int:
    handles = [(tid, open(path, "a")) for tid, path in files]
    period = 1.0 / rate
    total = int(rate * duration)
    while time.time() < start_at:
        time.sleep(0.001)
    next_at = time.monotonic()
    for n in range(total):
        tid, fh = handles[n % len(handles)]
        fh.write(agent_line(tid, n))
        fh.flush()
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))
    for _, fh in handles:
        fh.close()
    return total


def subscriber_proc(endpoints, ids, ready, result_q, stop_at_holder):
    from orbitdock.protocol import messages as m
    from orbitdock.client.subscription import Subscription

    sub = Subscription(endpoints)
    for sid in ids:
        sub.watch_session(sid)
    ok = sub.wait_synced(READY_TIMEOUT_S)
    ready.set()
    latencies = []
    deadline = time.monotonic() + READY_TIMEOUT_S * 4
    while time.monotonic() < deadline and (stop_at_holder.value == 0 or
                                           time.time() < stop_at_holder.value):
        for ev in sub.poll(0.001):  # short: latency is taken when poll returns
            if isinstance(ev, m.MessageAppended) and ev.message.content.startswith("line "):
                latencies.append(time.time() - ev.ts)
    result_q.put({"synced": ok, "latencies": latencies, "gaps": sub.stats.gaps})
    sub.close()


def floor_proc(root, ready, result_q, stop_at_holder):
    import orjson
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    offsets: dict[str, int] = {}
    latencies: list[float] = []

    class Handler(FileSystemEventHandler):
        def on_modified(self, event):
            if event.is_directory:
                return
            with open(event.src_path, "rb") as fh:
                fh.seek(offsets.get(event.src_path, 0))
                data = fh.read()
            cut = data.rfind(b"\n") + 1
            offsets[event.src_path] = offsets.get(event.src_path, 0) + cut
            now = time.time()
            for line in data[:cut].splitlines():
                obj = orjson.loads(line)
                if obj["type"] == "event_msg":
                    ts = datetime.fromisoformat(obj["timestamp"].replace("Z", "+00:00"))
                    latencies.append(now - ts.timestamp())

    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            offsets[path] = os.path.getsize(path)
    observer = Observer()
    observer.schedule(Handler(), root, recursive=True)
    observer.start()
    ready.set()
    deadline = time.monotonic() + READY_TIMEOUT_S * 4
    while time.monotonic() < deadline and (stop_at_holder.value == 0 or
                                           time.time() < stop_at_holder.value):
        time.sleep(0.05)
    observer.stop()
    observer.join()
    result_q.put({"latencies": latencies})


def run_phase(files, rate: float, duration: float, receiver, args: tuple) -> dict:
    """Start ``receiver`` in its own process, append for ``duration``, collect its result."""
    stop_at = mp.Value("d", 0.0)
    results, ready = mp.Queue(), mp.Event()
    proc = mp.Process(target=receiver, args=(*args, ready, results, stop_at))
    proc.start()
    if not ready.wait(READY_TIMEOUT_S):
        proc.kill()
        raise RuntimeError(f"{receiver.__name__} did not get ready in time")
    start_at = time.time() + 0.5
    stop_at.value = start_at + duration + DRAIN_S
    sent = appender(files, rate, duration, start_at)
    got = results.get(timeout=READY_TIMEOUT_S * 4)
    proc.join(READY_TIMEOUT_S)
    return {**got, "sent": sent}


def run_once(n_files: int, rate: float, duration: float) -> dict:
    from orbitdock.client import Client
    from orbitdock.protocol import messages as m

    work = Path(tempfile.mkdtemp(prefix="orbitdock-bench-watch-"))
    codex_home = work / "codex"
    files = make_files(codex_home, n_files)
    out: dict = {}
    try:
        with bench_daemon(env={"CODEX_HOME": str(codex_home), **EXTRA_ENV}, watcher=True) as daemon:
            ids = [tid for tid, _ in files]
            with Client(daemon.endpoints, timeout=5) as client:
                deadline = time.monotonic() + READY_TIMEOUT_S
                while time.monotonic() < deadline:
                    listed = {s.id for s in client.request(m.SubscribeList()).sessions}
                    if set(ids) <= listed:
                        break
                    time.sleep(0.1)
                else:
                    raise RuntimeError("watcher did not create every session in time")
            sub = run_phase(files, rate, duration, subscriber_proc,
                            (daemon.endpoints, ids))
        # The floor gets the machine to itself too: on two cores, a watchdog of its
        # own running beside the daemon's would measure each under the other's load.
        floor = run_phase(files, rate, duration, floor_proc, (str(codex_home / "sessions"),))
        out = {"sent": sub["sent"], "received": len(sub["latencies"]), "gaps": sub["gaps"],
               "lat": summarize(sub["latencies"]), "floor": summarize(floor["latencies"]),
               "floor_received": len(floor["latencies"])}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default="1,200")
    ap.add_argument("--rate", type=float, default=200.0, help="appended lines/s in total")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(machine_line())
    rows = []
    for n in [int(x) for x in args.files.split(",")]:
        runs = []
        for i in range(args.runs):
            r = run_once(n, args.rate, args.duration)
            runs.append(r)
            print(f"  files={n} run {i + 1}: p50 {fmt_ms(r['lat']['p50'])} p99 "
                  f"{fmt_ms(r['lat']['p99'])} max {fmt_ms(r['lat']['max'])} received "
                  f"{r['received']}/{r['sent']} gaps {r['gaps']} | floor p50 "
                  f"{fmt_ms(r['floor']['p50'])} p99 {fmt_ms(r['floor']['p99'])}", flush=True)
        med = lambda key, q: median(x[key][q] for x in runs)  # noqa: E731
        rows.append([n, fmt_ms(med("lat", "p50")), fmt_ms(med("lat", "p99")),
                     fmt_ms(med("lat", "max")), fmt_ms(med("floor", "p50")),
                     fmt_ms(med("floor", "p99")),
                     f"{median(x['received'] for x in runs):.0f}/{runs[0]['sent']}",
                     sum(x["gaps"] for x in runs)])
    print()
    print(command_line())
    print(markdown_table(["files", "p50 ms", "p99 ms", "max ms", "floor p50", "floor p99",
                          "received", "gaps"], rows))


if __name__ == "__main__":
    main()
