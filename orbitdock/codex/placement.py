"""Which app-server process hosts which session: the codex pool's books and its rules.

Pure bookkeeping, no processes and no threads: ``actors.codex_pool`` owns one
``PoolBook`` on its actor thread and asks it where a session goes, which processes are
idle, how many spares are missing and which idle ones to stop. A process here is any
hashable handle (``AppServerProcess`` in the daemon, plain objects in the tests); a sink
is anything with a ``thread_id`` (and, for a recovery, ``was_busy``).

The rules (the pool's module docstring says why):
- a thread goes back to the process that loaded it, while that process lives (codex
  keeps it loaded and writer-locked there);
- new sessions go to the least-loaded process with room, idle ones (the spares) last;
- a recovery puts at most ``batch`` resumes of one wave on a process, idle (or fresh)
  processes only unless ``recovery_on_busy``;
- a session of a recovery still resuming on its process is *held back*: the pool keeps
  its new work until the process's last resume of the wave is done, or the hold ends;
- no spare is started while a recovery's resumes run; idle processes beyond the spares
  are stopped, those holding no loaded thread first.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Hashable, TypeVar

from orbitdock.config import CodexConfig

P = TypeVar("P", bound=Hashable)


class PoolBook(Generic[P]):
    """The pool's state: processes, who is hosted where, thread homes, resumes in flight."""

    def __init__(self, config: CodexConfig) -> None:
        self.config = config
        self.procs: list[P] = []
        self.hosted: dict[P, set[Any]] = {}  # process -> its sinks
        self.where: dict[Any, P] = {}  # sink -> its process
        self.homes: dict[str, P] = {}  # thread id -> process that loaded it
        self.resuming: dict[P, set[Any]] = {}  # recoveries in flight, per process
        self.recovering: dict[P, set[Any]] = {}  # every sink of that wave, resumed or not

    # ------------------------------------------------------------ processes
    def add(self, proc: P) -> None:
        self.procs.append(proc)
        self.hosted[proc] = set()

    def drop(self, proc: P) -> set[Any]:
        """Forget a process (it exited or is being stopped); returns the sinks it hosted."""
        if proc in self.procs:
            self.procs.remove(proc)
        self.resuming.pop(proc, None)
        self.recovering.pop(proc, None)
        sinks = self.hosted.pop(proc, set())
        self.homes = {t: p for t, p in self.homes.items() if p is not proc}
        for sink in sinks:
            self.where.pop(sink, None)
        return sinks

    def live_home(self, sink: Any) -> P | None:
        """The running process that still has ``sink``'s thread loaded, if any."""
        home = self.homes.get(sink.thread_id or "")
        return home if home in self.hosted else None

    # ------------------------------------------------------------ sessions
    def assign(self, sink: Any, proc: P) -> None:
        self.hosted[proc].add(sink)
        self.where[sink] = proc

    def unassign(self, sink: Any) -> P | None:
        proc = self.where.pop(sink, None)
        if proc is not None:
            self.hosted[proc].discard(sink)
        return proc

    def bound(self, sink: Any, thread_id: str) -> None:
        """``sink``'s thread is now loaded in its process."""
        proc = self.where.get(sink)
        if proc is not None:
            self.homes[thread_id] = proc

    def least_loaded(self) -> P | None:
        """The least-loaded process with room, idle ones (the spares) last."""
        return min(self._with_room(), key=lambda p: (not self.hosted[p], len(self.hosted[p])),
                   default=None)

    def _with_room(self) -> list[P]:
        return [p for p in self.procs if len(self.hosted[p]) < self.config.threads_per_process]

    # ------------------------------------------------------------ recovery
    def recovery_batch(self) -> int:
        return max(1, min(self.config.recovery_batch, self.config.threads_per_process))

    def recovery_target(self, wave: dict[P, int], idle: set[P]) -> P | None:
        """A process with room and fewer than ``recovery_batch`` resumes of this wave: an
        idle one, or (``recovery_on_busy``) one already serving sessions, where codex
        resumes a thread behind its sessions' work (0.6 s against 0.1 s each, loaded)."""
        batch = self.recovery_batch()
        open_procs = [p for p in self._with_room()
                      if wave.get(p, 0) < batch
                      and (p in idle or self.config.recovery_on_busy)]
        return min(open_procs, key=lambda p: (wave.get(p, 0), len(self.hosted[p])),
                   default=None)

    def plan_recovery(self, sinks: list[Any], spawn: Callable[[Any], P | None]
                      ) -> tuple[list[tuple[Any, P]], dict[P, int], set[P]]:
        """Where each sink of a dead process resumes: ``(plan, wave, idle)``.

        A sink whose thread is still loaded on a live process goes back there. The other
        processes are chosen as if filled one after another (``recovery_target``; a fresh
        one from ``spawn(sink)`` when none has room, which must add it to the book, or
        None to leave the sink out), then the sinks are dealt to them round-robin, busy
        ones (``was_busy``) first: each process resumes its sessions largely one after
        another, so the cut sessions (someone is waiting) lead every queue instead of
        stacking on the first process, where their restarted turns would also slow that
        process's later resumes. ``wave`` counts the resumes per process, ``idle`` holds
        the processes that were idle before, or fresh."""
        wave: dict[P, int] = {}
        idle = set(self.idle())
        slots: list[tuple[int, P]] = []  # (place in its queue, proc), in fill order
        homed: list[tuple[Any, P]] = []
        dealt: list[Any] = []
        for sink in sorted(sinks, key=lambda s: not s.was_busy):  # stable: busy ones first
            home = self.live_home(sink)
            if home is not None:  # its thread is still loaded there: nowhere else will do
                homed.append((sink, home))
                wave[home] = wave.get(home, 0) + 1
                continue
            proc = self.recovery_target(wave, idle)
            if proc is None:
                proc = spawn(sink)
                if proc is None:
                    continue
                idle.add(proc)
            slots.append((wave.get(proc, 0), proc))
            wave[proc] = wave.get(proc, 0) + 1
            dealt.append(sink)
        round_robin = [proc for _, proc in sorted(slots, key=lambda slot: slot[0])]  # stable
        return homed + list(zip(dealt, round_robin)), wave, idle

    def start_resume(self, sink: Any, proc: P) -> None:
        self.resuming.setdefault(proc, set()).add(sink)
        self.recovering.setdefault(proc, set()).add(sink)
        self.assign(sink, proc)

    def resume_done(self, sink: Any) -> P | None:
        """``sink`` resumed (or gave up); returns its process once its last resume is done."""
        proc = self.where.get(sink)
        pending = self.resuming.get(proc) if proc is not None else None
        if pending is None or sink not in pending:
            return None
        pending.discard(sink)
        if pending:
            return None
        del self.resuming[proc]
        self.recovering.pop(proc, None)
        return proc

    def is_resuming(self, proc: P) -> bool:
        return bool(self.resuming.get(proc))

    def held_back(self, sink: Any) -> bool:
        """Whether a recovery that includes ``sink`` still resumes on its process (its new
        work would take the CPU the remaining resumes need)."""
        proc = self.where.get(sink)
        return proc is not None and sink in self.recovering.get(proc, ())

    def end_hold(self, proc: P) -> None:
        """Hold ``proc``'s recovered sessions back no longer (its resumes go on)."""
        self.recovering.pop(proc, None)

    # ------------------------------------------------------------ spares
    def idle(self) -> list[P]:
        return [p for p in self.procs if not self.hosted[p]]

    def spares_missing(self) -> int:
        if not any(self.hosted.get(p) for p in self.procs):
            return 0  # no session runs: nothing to recover, no spare to keep
        if self.resuming:
            return 0  # a process start would take CPU from the resumes: after them
        return max(0, self.config.spare_processes - len(self.idle()))

    def idle_excess(self) -> list[P]:
        """Idle processes beyond ``spare_processes`` (ended sessions, recoveries), those
        holding no loaded thread first: each costs an app-server's memory for nothing."""
        idle = self.idle()
        homes = set(self.homes.values())
        return sorted(idle, key=lambda p: p in homes)[:max(0, len(idle) -
                                                          self.config.spare_processes)]

    def threads_of(self, proc: P) -> list[str]:
        return sorted(t for t, home in self.homes.items() if home is proc)

    def least_busy(self) -> P | None:
        """Any process, fewest sessions first (for requests tied to no session)."""
        return min(self.procs, key=lambda p: len(self.hosted[p]), default=None)
