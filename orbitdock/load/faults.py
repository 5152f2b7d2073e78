"""Faults injected while the load runs, and what each must leave behind.

* kill -9 of the daemon: read what the database committed, restart on the same
  home, check that every direct session came back with the right status and
  message window (``verify.restore_check``), then let the driver go on. The DB
  read is also the reference for "was it committed at the kill" in the loss check.
* kill -9 of one app-server that serves sessions: its sessions must report the
  loss and be resumed on another process (``last_error`` set to "backend lost…"
  then cleared), the others must not notice.
* a slow subscriber: SIGSTOP (a client that stops reading, including its zmq
  I/O thread) then SIGCONT; the daemon's memory must stay bounded (its
  per-subscriber queue is ``gateway.subscriber_hwm``), the others' latency
  unchanged, and the slow one must end in sync, by snapshot.
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil

from orbitdock.harness import DaemonProcess, app_server_pids, reap_orphans
from orbitdock.load.report import percentile
from orbitdock.load.verify import Kill, read_db, restore_check

logger = logging.getLogger(__name__)

RESUME_WINDOW_S = 5.0  # a "backend lost" this soon after a codex kill belongs to that kill
RESUME_GIVE_UP_S = 15.0  # not cleared by then: not resumed
BUSY_WINDOW_S = 0.5  # an app-server that used CPU in this window before a kill serves sessions
BUSY_CPU_S = 0.02  # ... more than this much (two clock ticks); an idle spare uses none


@dataclass
class KillLog:
    kills: list[Kill] = field(default_factory=list)
    restart_s: list[float] = field(default_factory=list)
    status_mismatch: int = 0
    message_mismatch: int = 0
    notes: list[str] = field(default_factory=list)


def kill_daemon_cycle(ctl: DaemonProcess, log: KillLog, tell_driver: Callable[[str, Any], None],
                      snapshots: Callable[[], dict[str, Any]], direct: set[str],
                      memory_messages: int) -> str:
    """One kill -9 / restart / check cycle; returns the new epoch."""
    at, orphans = ctl.kill9()
    tell_driver("pause", None)
    reap_orphans(orphans)
    db = read_db(ctl.db_path)
    log.kills.append(Kill(at, db))
    t0 = time.monotonic()
    ctl.start()
    log.restart_s.append(time.monotonic() - t0)
    snaps, epoch = snapshots()
    bad_status, bad_messages, notes = restore_check(db, snaps, direct, memory_messages)
    log.status_mismatch += bad_status
    log.message_mismatch += bad_messages
    log.notes.extend(notes[: max(0, 10 - len(log.notes))])
    tell_driver("restarted", epoch)
    tell_driver("resume", None)
    return epoch


def kill_daemon_summary(log: KillLog) -> dict[str, Any]:
    r = log.restart_s
    return {"cycles": len(log.kills), "restart_p50_s": statistics.median(r) if r else 0.0,
            "restart_max_s": max(r) if r else 0.0, "status_mismatch": log.status_mismatch,
            "message_mismatch": log.message_mismatch, "notes": log.notes}


def busy_app_servers(pids: list[int]) -> list[int]:
    """The app-servers among ``pids`` that worked during the last ``BUSY_WINDOW_S``.

    Those host running sessions. An idle spare (``codex.spare_processes``) does not:
    killing it would cost no session anything and flatter the recovery figures.
    """
    def cpu(pid: int) -> float | None:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return None
        return times.user + times.system

    before = {pid: cpu(pid) for pid in pids}
    time.sleep(BUSY_WINDOW_S)
    busy = []
    for pid, was in before.items():
        now = cpu(pid)
        if was is not None and now is not None and now - was > BUSY_CPU_S:
            busy.append(pid)
    return busy


def kill_codex_once(ctl: DaemonProcess, rng: random.Random) -> tuple[float, int] | None:
    """kill -9 one app-server that is serving sessions (any one, if none looks busy)."""
    pids = app_server_pids(ctl.pid) if ctl.pid else []
    if not pids:
        return None
    pid = rng.choice(busy_app_servers(pids) or pids)
    at = time.time()
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return None
    return at, pid


def kill_codex_summary(kills: list[tuple[float, int]], backend_events: list[tuple[str, str, float]],
                       gaps_by_sid: dict[str, int], resume_limit_s: float) -> dict[str, Any]:
    """Match each kill with the sessions that reported the loss and their recovery."""
    affected: set[str] = set()
    resume: list[float] = []
    not_resumed = cut = 0
    events = sorted(backend_events, key=lambda e: e[2])
    starts = sorted(at for at, _pid in kills)
    for i, at in enumerate(starts):
        # a loss belongs to the latest kill before it (kills may come faster than the window)
        until = min(at + RESUME_WINDOW_S, starts[i + 1] if i + 1 < len(starts) else math.inf)
        lost: dict[str, float] = {}
        for sid, kind, ts in events:
            if kind == "lost" and at <= ts < until:
                lost.setdefault(sid, ts)
        for sid, lost_ts in lost.items():
            affected.add(sid)
            # Judged per attempt: a recovery ends cleared, or cut when the next kill hits
            # the process still resuming it (that loss is then judged under the next kill).
            outcome = next(((kind, ts) for s, kind, ts in events
                            if s == sid and ts > lost_ts), None)
            if outcome is None or outcome[1] - at > RESUME_GIVE_UP_S:
                not_resumed += 1
            elif outcome[0] == "cleared":
                resume.append(outcome[1] - at)
            elif outcome[1] >= until:
                cut += 1
            else:
                not_resumed += 1
    resume.sort()
    return {"kills": len(kills), "affected": len(affected), "not_resumed": not_resumed,
            "cut_by_next_kill": cut,
            "recoveries": len(resume),
            "resume_p50_s": percentile(resume, 50) if resume else None,
            "resume_max_s": resume[-1] if resume else None,
            "resumed_late": sum(1 for r in resume if r > resume_limit_s),
            "resume_s": [round(r, 3) for r in resume],  # every recovery, for the tail's shape
            "other_gaps": sum(n for sid, n in gaps_by_sid.items() if sid not in affected)}


class SlowSubscriber:
    """SIGSTOP one subscriber process at ``start_at`` for ``pause_s`` (monotonic times)."""

    def __init__(self, pid: int, start_at: float, pause_s: float):
        self.pid, self.start_at, self.pause_s = pid, start_at, pause_s
        self.stopped_wall: float | None = None
        self.resumed_wall: float | None = None
        self.rss_before = 0
        self.rss_peak = 0
        self.state = "waiting"  # waiting | stopped | done

    def tick(self, now: float, daemon_rss: int) -> str | None:
        """Advance the schedule; returns a note for the progress line."""
        if self.state == "waiting" and now >= self.start_at:
            self.rss_before = daemon_rss
            os.kill(self.pid, signal.SIGSTOP)
            self.stopped_wall, self.state = time.time(), "stopped"
            return " | slow subscriber stopped"
        if self.state == "stopped":
            self.rss_peak = max(self.rss_peak, daemon_rss)
            if now >= self.start_at + self.pause_s:
                self.resume()
                return " | slow subscriber reading again"
            return " | slow subscriber stopped"
        return None

    def resume(self) -> None:
        if self.state == "stopped":
            os.kill(self.pid, signal.SIGCONT)
            self.resumed_wall, self.state = time.time(), "done"

    def summary(self, others: list[tuple[Any, Any]], slow_final: dict[str, Any] | None) -> dict:
        """``others``: (receive times, latencies) arrays of the other subscribers."""
        t0, t1 = self.stopped_wall or 0.0, self.resumed_wall or 0.0
        during, outside = [], []
        for at, lat in others:
            for a, x in zip(at, lat):
                (during if t0 <= a <= t1 else outside).append(x)
        during.sort()
        outside.sort()
        stats = (slow_final or {}).get("stats", {})
        return {"paused_s": max(0.0, t1 - t0), "rss_before": self.rss_before,
                "rss_peak": max(self.rss_peak, self.rss_before),
                "others_p99_during": percentile(during, 99) if during else None,
                "others_p99_outside": percentile(outside, 99) if outside else None,
                "slow_gaps": stats.get("gaps", 0), "slow_resyncs": stats.get("resyncs", 0),
                "slow_synced": bool(slow_final) and not slow_final["mismatched"]
                and not slow_final["behind"]}
