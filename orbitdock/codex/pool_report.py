"""What the codex pool tells ``orbitdockctl codex``: its processes, its recoveries, the shell.

Built on the pool actor's thread from its books (``PoolBook``) and owned by it; nothing
here holds a resource. The recovery figures are the daemon's own measurement of what
docs/RELIABILITY.md measures from outside with ``orbitdock-load --kill-codex``: from the
moment a process is found dead to each of its sessions' resumed thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import psutil

from orbitdock.codex.login_shell import ShellStart, warning
from orbitdock.codex.placement import PoolBook


@dataclass
class RecoveryStats:
    """Crash recoveries since the daemon started. A session lost again while it was still
    resuming keeps its first loss time: the wait its user sees is from the first death."""

    processes_lost: int = 0
    resumed: int = 0
    failed: int = 0
    last_s: float | None = None
    slowest_s: float | None = None
    total_s: float = 0.0
    _lost_at: dict[Any, float] = field(default_factory=dict)  # sink -> monotonic loss time

    def lost(self, recovering: Iterable[Any], given_up: Iterable[Any]) -> None:
        """A process died: ``recovering`` sinks are being resumed elsewhere, ``given_up``
        ones will not be (a second loss after their last attempt, or a stopping session)."""
        self.processes_lost += 1
        now = time.monotonic()
        for sink in recovering:
            self._lost_at.setdefault(sink, now)
        for sink in given_up:
            if self._lost_at.pop(sink, None) is not None:
                self.failed += 1

    def resumed_ok(self, sink: Any) -> None:
        began = self._lost_at.pop(sink, None)
        if began is None:
            return  # a thread start, or a resume no crash caused
        elapsed = time.monotonic() - began
        self.resumed += 1
        self.last_s = elapsed
        self.slowest_s = max(self.slowest_s or 0.0, elapsed)
        self.total_s += elapsed

    def gave_up(self, sink: Any) -> None:
        if self._lost_at.pop(sink, None) is not None:
            self.failed += 1

    def forget(self, sink: Any) -> None:
        """The session was stopped while it resumed: neither resumed nor failed."""
        self._lost_at.pop(sink, None)

    def as_dict(self) -> dict[str, Any]:
        return {"processes_lost": self.processes_lost, "resumed": self.resumed,
                "failed": self.failed, "resuming": len(self._lost_at),
                "last_s": self.last_s, "slowest_s": self.slowest_s,
                "mean_s": self.total_s / self.resumed if self.resumed else None}


def process_state(book: PoolBook[Any], proc: Any) -> str:
    if book.is_resuming(proc):
        return "recovering"
    return "serving" if book.hosted[proc] else "spare"


def os_figures(pid: int | None) -> dict[str, Any]:
    """RSS, nice and age of one app-server; empty for a process that is gone."""
    if pid is None:
        return {}
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            return {"rss_bytes": proc.memory_info().rss, "nice": proc.nice(),
                    "uptime_s": time.time() - proc.create_time()}
    except psutil.Error:
        return {}


def process_rows(book: PoolBook[Any]) -> list[dict[str, Any]]:
    """One row per live process: who it hosts and what it costs."""
    rows = []
    for proc in book.procs:
        sinks = book.hosted[proc]
        rows.append({"proc_id": proc.proc_id, "pid": proc.pid, "version": proc.version,
                     "state": process_state(book, proc), "load": len(sinks),
                     "sessions": sorted(s.session_id for s in sinks if s.session_id),
                     "threads": book.threads_of(proc), **os_figures(proc.pid)})
    return rows


def login_shell_dict(start: ShellStart | None, warn_s: float) -> dict[str, Any] | None:
    """The login shell check's result, or None before it has run (or when it is off)."""
    if start is None:
        return None
    return {"shell": start.shell, "error": start.error,
            "ms": None if start.seconds is None else round(start.seconds * 1000, 1),
            "rehash_lines": list(start.rehash_lines), "warning": warning(start, warn_s)}


def pool_report(book: PoolBook[Any], stats: RecoveryStats, shell: ShellStart | None,
                warn_s: float) -> dict[str, Any]:
    return {"processes": process_rows(book), "recoveries": stats.as_dict(),
            "login_shell": login_shell_dict(shell, warn_s)}
