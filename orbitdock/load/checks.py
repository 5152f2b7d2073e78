"""Verdicts of a run: which results make it fail, and the daemon log's error lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orbitdock.load import fuzz


def log_errors(path: Path | None, limit: int = 5) -> dict[str, Any]:
    """Error-level lines of the daemon's JSON log (all of its lives: the file is appended)."""
    out: dict[str, Any] = {"errors": 0, "crashes": 0, "first": []}
    if path is None or not path.exists():
        return out
    with open(path, "rb") as fh:
        for line in fh:
            if b'"level": "error"' not in line and b'"level": "critical"' not in line:
                continue
            out["errors"] += 1
            if b"crashed" in line or b"Traceback" in line:
                out["crashes"] += 1
            if len(out["first"]) < limit:
                out["first"].append(line.decode(errors="replace")[:300])
    return out



def count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def merge_counts(dicts) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def failures(res: dict[str, Any], c) -> list[str]:
    """Correctness failures (performance targets are reported, not enforced)."""
    out = []
    if res["lost"]:
        out.append(f"{res['lost']} lost")
    if res["duplicated"]:
        out.append(f"{res['duplicated']} duplicated")
    if res["mismatched"]:
        out.append(f"{res['mismatched']} client mirrors differ from the server")
    kd = res.get("kill_daemon")
    if kd and (kd["status_mismatch"] or kd["message_mismatch"]):
        out.append(f"restore: {kd['status_mismatch']} status / {kd['message_mismatch']} "
                   "message mismatches")
    kc = res.get("kill_codex")
    if kc and (kc["not_resumed"] or not kc["kills"]):
        out.append(f"app-server kill: {kc['not_resumed']} sessions not resumed"
                   if kc["kills"] else "app-server kill: no app-server to kill")
    account = kc and kc.get("daemon_account")
    if account and account["failed"]:
        out.append(f"app-server kill: the daemon gave up on {account['failed']} sessions")
    fz = res.get("fuzz")
    if fz:
        allowed = fuzz.WINDOW * res["kill_daemon"]["cycles"] if kd else 0
        if fz.get("failed") or fz["non_error"] or fz["undecodable"] or fz["unanswered"] > allowed:
            out.append(f"fuzz: {fz['non_error']} non-error, {fz['unanswered']} unanswered")
    sl = res.get("slow")
    if sl and not sl["slow_synced"]:
        out.append("slow subscriber did not end in sync")
    if not (c.kill_daemon or c.kill_codex):
        bad = {k: v for k, v in res["turn_outcomes"].items()
               if k not in ("completed", "interrupted")}
        if bad:
            out.append(f"turns not completed without faults: {bad}")
    if res["drain_busy"]:
        out.append(f"{len(res['drain_busy'])} sessions still busy after the drain")
    if res["turns_completed"] == 0 and c.sessions:
        out.append("no turn completed")
    if res["daemon_log"]["crashes"]:
        out.append(f"{res['daemon_log']['crashes']} crashes in the daemon log")
    if res["daemon_exit"] not in (0, None):
        out.append(f"daemon exited with {res['daemon_exit']} on SIGTERM")
    return out
