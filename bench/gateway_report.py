"""bench_gateway's report: the markdown tables of all runs, medians and per-run values."""

from __future__ import annotations

from typing import Any

from common import command_line, fmt_ms, fmt_rate, fmt_ratio, machine_line, markdown_table, median

from orbitdock.config import Config


def _at(rec: dict, path: tuple[str, ...]) -> Any:
    """``rec[path[0]][path[1]]...``, or None where a level is missing."""
    value: Any = rec
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _med(recs: list[dict], *path: str) -> float:
    return median(float(v) for r in recs if isinstance(v := _at(r, path), (int, float)))


def _per_run(recs: list[dict], fmt, *path: str) -> str:
    return "/".join(fmt(v) if isinstance(v := _at(r, path), (int, float)) else "—"
                    for r in recs)


def _sum(recs: list[dict], *path: str) -> int:
    return sum(int(_at(r, path) or 0) for r in recs)


def report(all_runs: list[list[dict]], p: Any, started: str, wall_s: float) -> str:
    """The markdown tables of every configuration (``p`` is bench_gateway.Params)."""
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
