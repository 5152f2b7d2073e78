"""A year of sessions: what a daemon with 10 000 sessions in its database costs.

    .venv/bin/python bench/bench_sessions.py [--sessions 10000] [--active 200] [--runs 5]
                                             [--wake 200] [--daemon-cmd CMD]
                                             [--daemon-env KEY=VALUE] [--json FILE]

Seeds a throw-away ORBITDOCK_HOME under /tmp with ``--sessions`` session rows (each
with a few messages), ``--active`` of them not ended (scripted, direct; a tenth of
those with a turn the last daemon's death cut, which a start must settle in an
actor), the rest ended, written straight into the database with the daemon's own
schema and write path (``orbitdock.store``). Then, ``--runs`` times, starts a daemon
on it and measures:

- cold start: from spawning the daemon to the first ``subscribe_list`` reply (the
  first list snapshot a dashboard can show), and how many sessions it lists; beside
  it its floor: spawning a Python that only imports the daemon's modules;
- the daemon's RSS and thread count once started (psutil, from outside);
- re-activation: ``subscribe_session`` of ``--wake`` ended (passivated) sessions, one
  after the other, request -> reply (each wakes its session from the database), and
  the same request to a session that has its actor (the floor), p50/p99;
- RSS and threads again after the wake-ups, once the woken sessions are passivated
  again (``sessions.passivate_ended_after_s`` is shortened to 0.5 s for this).

Prints one markdown table (medians of the runs, and each run's value). Not a test:
nothing is asserted. Every wait is bounded; the daemon and the home are removed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    REPO, BenchDaemon, command_line, exit_on_sigterm, machine_line, markdown_table, median,
)

import psutil  # noqa: E402

from orbitdock.client import Client  # noqa: E402
from orbitdock.config import Config  # noqa: E402
from orbitdock.protocol import messages as m  # noqa: E402
from orbitdock.protocol.models import Message  # noqa: E402
from orbitdock.store import batches, schema  # noqa: E402
from orbitdock.store.commands import SaveMessage, SaveSession  # noqa: E402

MESSAGES_PER_SESSION = 4
SEED_BATCH = 2_000  # commands per seeding transaction
SETTLE_TIMEOUT_S = 30.0  # longest wait for woken sessions to be passivated again
REQUEST_TIMEOUT_S = 30.0


def seed(db_path, sessions: int, active: int) -> tuple[list[str], list[str]]:
    """Write the rows; returns the ended sessions' ids and those with a cut turn."""
    conn = schema.open_database(db_path, Config().persistence)
    now = time.time()
    ended, cut_ids, commands = [], [], []
    try:
        for n in range(sessions):
            sid = f"od-{uuid.uuid4()}"
            is_active = n < active
            cut = is_active and n % 10 == 0  # its turn was running when the daemon died
            at = now - (n * 3600.0 * 24 * 365 / sessions)  # spread over a year
            commands.append(SaveSession(sid, {
                "provider": "scripted", "status": "active" if is_active else "ended",
                "work_status": "reply" if is_active else "ended",
                "attention_reason": "awaitingReply" if is_active else "none",
                "display_name": f"session {n}", "first_prompt": f"fix bug #{n} in module {n % 97}",
                "last_message": f"done with #{n}", "project_path": f"/work/p{n % 40}",
                "project_name": f"p{n % 40}", "model": "scripted", "started_at": at - 600,
                "last_activity_at": at, "ended_at": None if is_active else at,
                "end_reason": None if is_active else "user_requested",
                "revision": 3 * MESSAGES_PER_SESSION, "prompt_count": MESSAGES_PER_SESSION // 2,
                "turn_count": MESSAGES_PER_SESSION // 2,
                "current_turn_id": f"turn-cut-{n}" if cut else None,
                "total_message_count": MESSAGES_PER_SESSION}))
            for seq in range(1, MESSAGES_PER_SESSION + 1):
                commands.append(SaveMessage(sid, Message(
                    id=f"{sid}:m{seq}", seq=seq, type="user" if seq % 2 else "assistant",
                    content=f"message {seq} of session {n} " * 8, timestamp=at)))
            if not is_active:
                ended.append(sid)
            if cut:
                cut_ids.append(sid)
            if len(commands) >= SEED_BATCH or n == sessions - 1:
                conn.execute("BEGIN IMMEDIATE")
                batches.run_batch(conn, commands)
                conn.execute("COMMIT")
                commands = []
    finally:
        conn.close()
    return ended, cut_ids


def cut_turns(db_path, cut_ids: list[str]) -> None:
    """Put the cut turns back (the previous run's start settled them)."""
    conn = schema.open_database(db_path, Config().persistence)
    try:
        with conn:
            conn.executemany("UPDATE sessions SET current_turn_id = ?, work_status = 'working' "
                             "WHERE id = ?", [(f"turn-cut-{sid}", sid) for sid in cut_ids])
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def import_floor() -> float:
    """Seconds to spawn a Python that imports the modules a daemon start imports, and exit."""
    modules = ", ".join(f"actors.{name}" for name in (
        "daemon", "persistence", "supervisor", "gateway", "watcher", "providers",
        "codex_backend"))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {modules}"], cwd=REPO, timeout=60,
                   check=True)
    return time.perf_counter() - t


def one_run(home, ended: list[str], cut_ids: list[str], wake: int, daemon_cmd,
            run: int, daemon_env: dict[str, str]) -> dict:
    env = {"ORBITDOCK_SESSIONS__PASSIVATE_ENDED_AFTER_S": "0.5",
           "ORBITDOCK_SESSIONS__PASSIVATE_CHECK_S": "0.25", **daemon_env}
    cut_turns(home / "orbitdock.db", cut_ids)
    floor_s = import_floor()
    d = BenchDaemon(env=env, cmd=daemon_cmd)
    d.home.rmdir()
    d.home = home  # the seeded home (kept between runs)
    t0 = time.perf_counter()
    d.start()
    try:
        with Client(d.endpoints, timeout=REQUEST_TIMEOUT_S) as client:
            listed = client.request(m.SubscribeList())
            cold_s = time.perf_counter() - t0
            proc = psutil.Process(d.proc.pid)
            rss0, threads0 = proc.memory_info().rss, proc.num_threads()
            live = next(s.id for s in listed.sessions if s.status == "active")
            floor, woke = [], []
            picks = ended[run * wake % len(ended):][:wake] or ended[:wake]
            for sid in picks:
                t = time.perf_counter()
                client.request(m.SubscribeSession(session_id=live))
                floor.append(time.perf_counter() - t)
                t = time.perf_counter()
                client.request(m.SubscribeSession(session_id=sid))
                woke.append(time.perf_counter() - t)
            threads_woken = proc.num_threads()
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while proc.num_threads() > threads0 and time.monotonic() < deadline:
                time.sleep(0.1)
            rss1, threads1 = proc.memory_info().rss, proc.num_threads()
            status = client.request(m.GetStatus())
        return {"cold_start_s": cold_s, "import_floor_s": floor_s,
                "listed": len(listed.sessions), "rss_mb": rss0 / 2**20,
                "threads": threads0, "wake_p50_ms": percentile(woke, 0.5) * 1000,
                "wake_p99_ms": percentile(woke, 0.99) * 1000,
                "live_p50_ms": percentile(floor, 0.5) * 1000,
                "live_p99_ms": percentile(floor, 0.99) * 1000,
                "threads_while_woken": threads_woken, "threads_after": threads1,
                "rss_after_mb": rss1 / 2**20, "actors_after": status.actors}
    finally:
        d.stop(keep_home=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--active", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--wake", type=int, default=200, help="ended sessions woken per run")
    ap.add_argument("--daemon-cmd", help="daemon command instead of `python -m actors.daemon`")
    ap.add_argument("--daemon-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra daemon environment, e.g. ORBITDOCK_CODEX__BINARY=/nonexistent")
    ap.add_argument("--json", help="also write every run's figures here")
    a = ap.parse_args()
    exit_on_sigterm()
    daemon_cmd = shlex.split(a.daemon_cmd) if a.daemon_cmd else None
    holder = BenchDaemon()  # only for its throw-away home
    home = holder.home
    started = dt.datetime.now(dt.timezone.utc)
    t = time.perf_counter()
    ended, cut_ids = seed(home / "orbitdock.db", a.sessions, a.active)
    seed_s = time.perf_counter() - t
    runs = []
    try:
        for run in range(a.runs):
            try:
                runs.append(one_run(home, ended, cut_ids, a.wake, daemon_cmd, run,
                                    dict(kv.split("=", 1) for kv in a.daemon_env)))
            except Exception:
                traceback.print_exc()
            print(f"run {run + 1}/{a.runs}: {runs[-1] if runs else 'failed'}", file=sys.stderr)
    finally:
        holder.stop()
    if not runs:
        sys.exit("bench_sessions: every run failed")
    keys = [("cold_start_s", "cold start → first list snapshot, s", "{:.2f}"),
            ("import_floor_s", "floor: spawn a Python importing the daemon's modules, s",
             "{:.2f}"),
            ("listed", "sessions in that snapshot", "{:.0f}"),
            ("rss_mb", "daemon RSS after start, MB", "{:.1f}"),
            ("threads", "daemon threads after start", "{:.0f}"),
            ("wake_p50_ms", "re-activation request → reply p50, ms", "{:.2f}"),
            ("wake_p99_ms", "re-activation request → reply p99, ms", "{:.2f}"),
            ("live_p50_ms", "same request, live session p50, ms", "{:.2f}"),
            ("live_p99_ms", "same request, live session p99, ms", "{:.2f}"),
            ("threads_while_woken", f"threads right after waking {a.wake}", "{:.0f}"),
            ("threads_after", "threads once they are passivated again", "{:.0f}"),
            ("rss_after_mb", "RSS then, MB", "{:.1f}")]
    rows = [[label, fmt.format(median([r[k] for r in runs])),
             "/".join(fmt.format(r[k]) for r in runs)] for k, label, fmt in keys]
    print(f"Command: `{command_line()}`")
    print(f"Started {started:%Y-%m-%d %H:%M} UTC, {len(runs)} run(s); seeding "
          f"{a.sessions} sessions ({a.active} active of which {len(cut_ids)} with a cut turn, "
          f"{len(ended)} ended, "
          f"{MESSAGES_PER_SESSION} messages each) took {seed_s:.1f} s.")
    print(f"Machine: {machine_line()}")
    print()
    print(markdown_table(["figure", "median", "per run"], rows))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"args": vars(a), "runs": runs}, fh, indent=1)


if __name__ == "__main__":
    main()
