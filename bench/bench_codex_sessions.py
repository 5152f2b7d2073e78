"""Direct Codex sessions at scale: N app-server threads, each turn one approval + streamed text.

    .venv/bin/python bench/bench_codex_sessions.py [--sessions 50,200] [--runs 3]
        [--duration 60] [--unpooled 10,50] [--json FILE] [--keep]

For each configuration it runs the load tool (``orbitdock.load.scenario.run``: its
own daemon on a throw-away home, the load model on 127.0.0.1, subscriber
processes, the loss check) with turns of kind exec/patch only, so every turn
streams text *and* waits on one approval that the driver subscriber accepts.
Reported per configuration (median over ``--runs``, with the per-run values):
approval-request -> client latency p50/p99, approval round trip, turn
completion rate, delta latency and the raw pyzmq floor, daemon RSS, codex
processes and RSS, and the marginal RSS per session (total RSS slope between
the smallest and each larger session count of the same pooling).

A run lasts ``--duration`` seconds, or 0.6 s per session if longer (200 sessions: 120 s),
because the start-up of 200 threads alone takes about a minute on 2 cores.
``--unpooled`` runs ``codex.threads_per_process=1`` (one app-server per
session) at the given counts; 200 of them would need ~32 GB (about 160 MB
each), more than this machine has, which is why the default stops at 50.
Not a test: nothing is asserted; markdown goes to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import command_line, fmt_ms, machine_line, markdown_table, median  # noqa: E402

from orbitdock.load.model import ModelParams  # noqa: E402
from orbitdock.load.scenario import RunConfig, run  # noqa: E402
from orbitdock.load.turns import DriverParams  # noqa: E402

DURATION_PER_SESSION_S = 0.6  # a run lasts at least this many seconds per session


def one(sessions: int, tpp: int | None, duration: float, subscribers: int,
        keep: bool = False) -> dict[str, Any]:
    cfg = RunConfig(
        sessions=sessions, duration=duration, subscribers=subscribers,
        threads_per_process=tpp, quiet=True, drain_s=120.0, keep=keep,
        driver=DriverParams(kinds=("exec", "patch"), think_s=0.5,
                            ramp_s=min(20.0, duration / 3), turn_timeout_s=120.0),
        model=ModelParams())
    t0 = time.monotonic()
    res = run(cfg)
    total_rss = res["daemon_rss"] + res["codex_rss"]
    outcomes = res["turn_outcomes"]
    started = sum(outcomes.values())
    return {
        "sessions": sessions, "tpp": tpp or 16, "wall_s": time.monotonic() - t0,
        "appr_p50": res["approval_to_client"]["p50"], "appr_p99": res["approval_to_client"]["p99"],
        "rtt_p50": res["approval_rtt"]["p50"], "rtt_p99": res["approval_rtt"]["p99"],
        "lat_p50": res["latency"]["p50"], "lat_p99": res["latency"]["p99"],
        "floor_p99": (res.get("floor_during") or res.get("floor") or {}).get("p99"),
        "steady_from_s": res.get("steady_from_s"),
        "appr_steady_p99": (res.get("approval_to_client_steady") or {}).get("p99"),
        "lat_steady_p99": (res.get("latency_steady") or {}).get("p99"),
        "completed": res["turns_completed"], "started": started,
        "completion": res["turns_completed"] / started if started else 0.0,
        "turns_per_s": res["turns_completed"] / res["load_s"],
        "daemon_rss": res["daemon_rss"], "daemon_rss_peak": res["daemon_rss_peak"],
        "codex_procs": res["codex_procs"], "codex_rss": res["codex_rss"],
        "total_rss": total_rss, "cpu_pct": res["daemon_cpu_pct"],
        "lost": res["lost"], "duplicated": res["duplicated"], "ok": res["ok"],
        "failures": res["failures"], "outcomes": outcomes, "examples": res["examples"],
        "daemon_log": res["daemon_log"], "model_incidents": res["model_incidents"],
        "home": res["home"], "codex_home": res["codex_home"],
    }


def marginal(recs: dict[tuple[int, int], list[dict]]) -> dict[tuple[int, int], float]:
    """MB per extra session: total RSS slope from the smallest count of the same pooling."""
    out = {}
    for tpp in {k[1] for k in recs}:
        counts = sorted(n for n, t in recs if t == tpp)
        if len(counts) < 2:
            continue
        base = median(r["total_rss"] for r in recs[(counts[0], tpp)])
        for n in counts[1:]:
            top = median(r["total_rss"] for r in recs[(n, tpp)])
            out[(n, tpp)] = (top - base) / (n - counts[0]) / 2**20
    return out


def report(recs: dict[tuple[int, int], list[dict]], started: str, wall: float,
           machine: str) -> str:
    slopes = marginal(recs)
    rows = []
    for (n, tpp), rs in sorted(recs.items(), key=lambda kv: (kv[0][1] == 1, kv[0][0])):
        med = lambda k: median(r[k] for r in rs)  # noqa: E731
        rows.append([
            n, "pooled (16/process)" if tpp != 1 else "1 process/session", len(rs),
            f"{fmt_ms(med('appr_p50'))} / {fmt_ms(med('appr_p99'))} "
            f"(steady {fmt_ms(med('appr_steady_p99'))})",
            f"{fmt_ms(med('rtt_p50'))} / {fmt_ms(med('rtt_p99'))}",
            f"{100 * med('completion'):.1f}% ({med('completed'):.0f}); worst run "
            f"{100 * min(r['completion'] for r in rs):.1f}%",
            f"{med('turns_per_s'):.1f}",
            f"{fmt_ms(med('lat_p50'))} / {fmt_ms(med('lat_p99'))} (steady "
            f"{fmt_ms(med('lat_steady_p99'))}; floor {fmt_ms(med('floor_p99'))})",
            f"{med('daemon_rss') / 2**20:.0f}", f"{med('codex_procs'):.0f}",
            f"{med('codex_rss') / 2**20:.0f}",
            f"{slopes[(n, tpp)]:.1f}" if (n, tpp) in slopes else "—",
            f"{sum(r['lost'] for r in rs)} / {sum(r['duplicated'] for r in rs)}",
            f"{sum(not r['ok'] for r in rs)}",
        ])
    header = ["sessions", "codex processes", "runs", "approval→client p50/p99 ms (steady p99)",
              "approval round trip p50/p99 ms", "turns completed", "turns/s",
              "delta p50/p99 ms (steady p99; pyzmq floor p99 during load)", "daemon RSS MB",
              "app-servers",
              "app-server RSS MB", "marginal MB/session", "lost / dup", "runs failing checks"]
    return "\n".join([
        f"Run {started}, {wall / 60:.1f} min: `{command_line()}`", "",
        f"Machine: {machine}", "", markdown_table(header, rows), ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", default="10,50,200", help="pooled session counts")
    ap.add_argument("--unpooled", default="10,50", help="counts with threads_per_process=1")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--subscribers", type=int, default=2)
    ap.add_argument("--json", help="write every run's record here")
    ap.add_argument("--keep", action="store_true",
                    help="keep each run's daemon and codex homes (for post-mortems)")
    args = ap.parse_args(argv)
    configs = [(int(n), None) for n in args.sessions.split(",") if n] + \
              [(int(n), 1) for n in args.unpooled.split(",") if n]
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = machine_line()  # load average at the start, not at the end
    t0 = time.monotonic()
    recs: dict[tuple[int, int], list[dict]] = {}
    for run_no in range(args.runs):
        for n, tpp in configs:
            # 200 sessions need ~60 s on 2 cores before every one has finished a first
            # turn: give large counts a longer run so the steady state is measured too.
            rec = one(n, tpp, max(args.duration, DURATION_PER_SESSION_S * n), args.subscribers,
                      args.keep)
            recs.setdefault((n, rec["tpp"]), []).append(rec)
            print(f"run {run_no + 1}: {n} sessions tpp={rec['tpp']}: appr p99 "
                  f"{fmt_ms(rec['appr_p99'])} ms, {rec['completed']}/{rec['started']} turns, "
                  f"RSS {rec['total_rss'] / 2**20:.0f} MB, lost {rec['lost']} "
                  f"[{rec['wall_s']:.0f}s] {'' if rec['ok'] else rec['failures']}",
                  file=sys.stderr, flush=True)
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump({f"{k[0]}x{k[1]}": v for k, v in recs.items()}, fh, indent=1,
                              default=str)
    print(report(recs, started, time.monotonic() - t0, machine))
    failed = [r["failures"] for rs in recs.values() for r in rs if not r["ok"]]
    for failures in failed:  # a median can hide a failed run: name each one, and exit 1
        print(f"FAILED run: {failures}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
