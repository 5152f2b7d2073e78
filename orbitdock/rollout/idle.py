"""When a passive session goes idle: its files, when codex last wrote, and the verdict.

Pure bookkeeping for ``actors.watcher``, which owns one ``IdleClocks`` on its thread,
schedules the checks it asks for and tells the session ``RolloutIdle`` on the verdict.
A session is idle once none of its files has had a line for ``timeout_s`` (file times,
so a restart judges by when codex wrote, not when orbitdock read); a new line makes it
live again and starts a new clock. At most one check per session is pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SessionClock:
    paths: set[str] = field(default_factory=set)
    last_write: float = 0.0  # newest mtime of its files: when codex last wrote a line
    idle_sent: bool = False
    check_pending: bool = False


IDLE = "idle"  # check() verdicts: tell the session it is idle,
LATER = "later"  # check again after the returned delay,
NOTHING = "nothing"  # or nothing to do (unknown, already idle)


class IdleClocks:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.sessions: dict[str, SessionClock] = {}

    def touch(self, sid: str, path: str, mtime: float, now: float) -> float | None:
        """A line of ``sid`` was written at ``mtime`` in ``path``: the delay of the check
        to schedule, or None when one is already pending."""
        clock = self.sessions.setdefault(sid, SessionClock())
        clock.paths.add(path)
        clock.last_write = max(clock.last_write, mtime)
        clock.idle_sent = False
        if clock.check_pending:
            return None
        clock.check_pending = True
        return clock.last_write + self.timeout_s - now

    def check(self, sid: str, now: float, importing: bool,
              retry_s: float) -> tuple[str, float]:
        """The scheduled check ran: ``(IDLE, 0)``, ``(LATER, delay)`` or ``(NOTHING, 0)``.
        A session still being imported is not idle, whatever its file times say."""
        clock = self.sessions.get(sid)
        if clock is None:
            return NOTHING, 0.0
        clock.check_pending = False
        if clock.idle_sent:
            return NOTHING, 0.0
        remaining = retry_s if importing else clock.last_write + self.timeout_s - now
        if remaining > 0:
            clock.check_pending = True
            return LATER, remaining
        clock.idle_sent = True
        return IDLE, 0.0

    def counts(self) -> tuple[int, int]:
        """(sessions with a clock, those told they are idle), for the watcher's status."""
        return len(self.sessions), sum(1 for c in self.sessions.values() if c.idle_sent)

    def paths(self, sid: str) -> set[str]:
        clock = self.sessions.get(sid)
        return clock.paths if clock is not None else set()

    def moved(self, sid: str | None, src: str, dest: str) -> None:
        clock = self.sessions.get(sid or "")
        if clock is not None:
            clock.paths.discard(src)
            clock.paths.add(dest)
