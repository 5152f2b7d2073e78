"""Numbers for the live progress line and the final table (text and JSON)."""

from __future__ import annotations

import math
from array import array
from typing import Any, Iterable, Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of a sorted sequence (nan when empty)."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def summarize(values: Iterable[float]) -> dict[str, float]:
    vals = sorted(values)
    return {"n": len(vals), "p50": percentile(vals, 50), "p99": percentile(vals, 99),
            "max": vals[-1] if vals else math.nan}


def steady_state(outcomes: list[tuple], sessions: int, series: list[tuple[Any, Any]],
                 driver: dict[str, Any], load_started: float) -> dict[str, Any]:
    """The same figures after every session completed its first turn (start-up storm excluded).

    ``series``: (receive times, latencies) per subscriber; ``outcomes`` from the driver.
    """
    first: dict[str, float] = {}
    for sid, _tag, _kind, outcome, _sent, ended, _turn in outcomes:
        if outcome == "completed":
            first[sid] = min(ended, first.get(sid, ended))
    if not sessions or len(first) < sessions:
        return {"steady_from_s": None}
    since = max(first.values())
    lat = [x for at, lats in series for a, x in zip(at, lats) if a >= since]
    pick = lambda key: [v for t, v in driver.get(key, []) if t >= since]  # noqa: E731
    return {"steady_from_s": since - load_started, "latency_steady": summarize(lat),
            "approval_to_client_steady": summarize(pick("approval_to_client")),
            "approval_rtt_steady": summarize(pick("approval_rtt"))}


def split_latencies(finals: list[dict[str, Any]], skip: tuple[float, float]
                    ) -> tuple[list[float], list[tuple[list[float], list[float]]]]:
    """The normal subscribers' delta latencies, all together and per subscriber as
    (at, latency) series, without the in-load floor measurement's window ``skip`` (its
    extra processes compete for the same 2 cores)."""
    lat_all: list[float] = []
    others = []
    for fin in finals:
        at, lat = unpack(fin["samples"]["at"]), unpack(fin["samples"]["lat"])
        keep = [(a, x) for a, x in zip(at, lat) if not skip[0] <= a <= skip[1]]
        lat_all.extend(x for _, x in keep)
        others.append(([a for a, _ in keep], [x for _, x in keep]))
    return lat_all, others


def unpack(raw: bytes) -> array:
    out = array("d")
    out.frombytes(raw)
    return out


def ms(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    value = seconds * 1000.0
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def mb(nbytes: float | None) -> str:
    return "—" if not nbytes else f"{nbytes / 2**20:.0f} MB"


def progress_line(elapsed: float, r: dict[str, Any]) -> str:
    o = r.get("outcomes", {})
    done = o.get("completed", 0)
    bad = sum(v for k, v in o.items() if k != "completed")
    return (f"[{elapsed:6.1f}s] sessions {r.get('sessions', 0)} | turns ok {done} other {bad} "
            f"in-flight {r.get('in_flight', 0)} | {r.get('ev_s', 0):.0f} ev/s | lat p50 "
            f"{ms(r.get('p50'))} p99 {ms(r.get('p99'))} ms | appr p99 {ms(r.get('rtt_p99'))} ms | "
            f"gaps {r.get('gaps', 0)} resync {r.get('resyncs', 0)} | daemon "
            f"{r.get('cpu', 0):.0f}% {mb(r.get('rss'))} | codex {r.get('codex_procs', 0)} × "
            f"{mb(r.get('codex_rss'))}{r.get('note', '')}")


def table(res: dict[str, Any]) -> str:
    """The final table: one metric per line, aligned."""
    lat = res.get("latency", {})
    rows: list[tuple[str, str]] = [
        ("sessions (direct / passive)", f"{res['sessions']} / {res.get('passive', 0)}"),
        ("subscribers", str(res["subscribers"])),
        ("duration", f"{res['elapsed_s']:.1f} s (load {res['duration_s']:.0f} s)"),
        ("turns completed / other", f"{res['turns_completed']} / {res['turns_other']}  "
                                    f"{res.get('turn_outcomes', {})}"),
        ("events applied / s (per subscriber)", f"{res.get('events_per_s', 0):.0f}"),
        ("delta latency p50 / p99 / max",
         f"{ms(lat.get('p50'))} / {ms(lat.get('p99'))} / {ms(lat.get('max'))} ms "
         f"(n={lat.get('n', 0)})"),
    ]
    for key, label in (("floor_during", "raw pyzmq floor, during the load"),
                       ("floor", "raw pyzmq floor, after it (idle)")):
        f = res.get(key)
        if f:
            rows.append((label, f"{ms(f.get('p50'))} / {ms(f.get('p99'))} / {ms(f.get('max'))} ms "
                                f"(n={f.get('n', 0)})"))
    a, r = res.get("approval_to_client", {}), res.get("approval_rtt", {})
    rows += [
        ("approval -> client p50 / p99", f"{ms(a.get('p50'))} / {ms(a.get('p99'))} ms "
                                         f"(n={a.get('n', 0)})"),
        ("approval round-trip p50 / p99", f"{ms(r.get('p50'))} / {ms(r.get('p99'))} ms"),
    ]
    if res.get("steady_from_s") is not None:
        ls, as_, rs = (res["latency_steady"], res["approval_to_client_steady"],
                       res["approval_rtt_steady"])
        rows.append((f"steady state (from +{res['steady_from_s']:.0f} s)",
                     f"delta p50/p99 {ms(ls.get('p50'))}/{ms(ls.get('p99'))} ms, approval -> "
                     f"client {ms(as_.get('p50'))}/{ms(as_.get('p99'))} ms, round-trip "
                     f"{ms(rs.get('p50'))}/{ms(rs.get('p99'))} ms"))
    rows += [
        ("gaps detected / resynced", f"{res['gaps']} / {res['resyncs']}"),
        ("daemon CPU / RSS (peak)", f"{res.get('daemon_cpu_pct', 0):.0f}% of a core / "
         f"{mb(res.get('daemon_rss'))} ({mb(res.get('daemon_rss_peak'))})"),
        ("codex processes / RSS (peak)", f"{res.get('codex_procs', 0)} / "
         f"{mb(res.get('codex_rss'))} ({mb(res.get('codex_rss_peak'))})"),
    ]
    shell = res.get("login_shell")
    if shell:
        cost = (f"{shell['seconds'] * 1000:.0f} ms" if shell["seconds"] is not None
                else shell["error"])
        rehash = "; runs pyenv rehash" if shell["rehash_lines"] else ""
        rows.append(("codex login shell start", f"{cost} ({shell['shell']}{rehash})"))
    for key, label in (("kill_daemon", "daemon kill -9 cycles"), ("kill_codex", "app-server kills"),
                       ("slow", "slow subscriber"), ("fuzz", "fuzzed frames"),
                       ("passive_check", "passive rollouts")):
        if res.get(key):
            rows.append((label, _fault_text(key, res[key])))
    rows += [
        ("mirrors != server", str(res.get("mismatched", 0))),
        ("daemon log errors / crashes", f"{res.get('daemon_log', {}).get('errors', 0)} / "
                                        f"{res.get('daemon_log', {}).get('crashes', 0)}"),
        # connections the model server ended without a whole reply (sim.server incidents)
        ("model server incidents", ", ".join(f"{k} {n}" for k, n in sorted(
            (res.get("model_incidents") or {}).items())) or "0"),
        ("uncommitted at kill (allowed)", f"{res.get('uncommitted_at_kill', 0)} (oldest seen "
         f"{ms(res.get('uncommitted_max_age_s'))} ms before; "
         f"{res.get('uncommitted_late', 0)} older than the grace)"),
        ("lost", str(res["lost"])),
        ("duplicated", str(res["duplicated"])),
        ("result", "PASS" if res["ok"] else "FAIL: " + "; ".join(res["failures"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _daemon_account(acc: dict[str, Any] | None) -> str:
    """What the daemon itself counted (from finding a process dead, not from the kill)."""
    if acc is None:
        return "; the daemon's own account: unavailable"
    return (f"; the daemon's own account: {acc['processes_lost']} lost, {acc['resumed']} "
            f"resumed (mean/slowest {ms(acc['mean_s'])}/{ms(acc['slowest_s'])} ms), "
            f"{acc['failed']} failed")


def _fault_text(key: str, f: dict[str, Any]) -> str:
    if key == "kill_daemon":
        return (f"{f['cycles']} cycles, restart p50/max {f['restart_p50_s']:.2f}/"
                f"{f['restart_max_s']:.2f} s, status mismatches {f['status_mismatch']}, "
                f"message mismatches {f['message_mismatch']}")
    if key == "kill_codex":
        return (f"{f['kills']} kills, {f.get('recoveries', 0)} recoveries of {f['affected']} "
                f"sessions, resume p50/max {ms(f.get('resume_p50_s'))}/"
                f"{ms(f.get('resume_max_s'))} ms ({f.get('resumed_late', 0)} over the target), "
                f"not resumed {f['not_resumed']}, cut by the next kill "
                f"{f.get('cut_by_next_kill', 0)}, gaps on other sessions {f['other_gaps']}"
                + _daemon_account(f.get("daemon_account")))
    if key == "slow":
        return (f"stopped {f['paused_s']:.0f} s; daemon RSS {mb(f['rss_before'])} -> peak "
                f"{mb(f['rss_peak'])}; others' p99 {ms(f['others_p99_during'])} ms during vs "
                f"{ms(f['others_p99_outside'])} ms outside; slow one gaps {f['slow_gaps']}, "
                f"resyncs {f['slow_resyncs']}, in sync at end: {f['slow_synced']}")
    if key == "fuzz":
        return (f"{f['sent']} sent, {f['errors']} coded errors, {f['non_error']} non-error, "
                f"{f['unanswered']} unanswered, {f['sent'] / max(f['elapsed_s'], 1e-9):.0f}/s, "
                f"daemon alive: {f['daemon_alive']}")
    if key == "passive_check":
        return (f"{f['sessions']} sessions, {f['turns']} turns written, "
                f"missing {f['missing_sessions']}")
    return str(f)
