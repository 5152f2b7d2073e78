"""CodexPoolActor: the codex app-server processes behind every direct Codex session.

Owns (on the pool actor's thread) the live processes and their books: which
session sink is hosted where and which process last held each thread id
(``orbitdock.codex.placement.PoolBook``, which also holds the placement rules).
Sessions are packed up to ``codex.threads_per_process`` per process, least-loaded
first; processes start lazily on the first session (or model list) that needs one.

The pool is the only poster to a process. That is what makes crash recovery
race-free: when a process exits (its reader tells us, as its last act) nothing
else can add work to it, so the ops that never ran are collected here and
re-posted to the replacement process, after the resume of their session.

When a process dies, each session that was working gets BackendLost, is placed
on another process and resumed there (``thread/resume``, bounded by
``resume_timeout_s``); its connector then emits BackendRecovered, or
BackendLost(fatal=True) with codex's error text. A process that dies while its
sessions are still resuming sends them round again (``recovery_attempts`` in a
row at most). Sessions on other processes see nothing.

All the resumes are in flight at once (nothing waits for one answer before
sending the next), but one codex process works through its resumes largely one
after another, and a process serving sessions does them behind its sessions'
work. So recovery spreads them: at most ``recovery_batch`` to any one process,
idle processes first, fresh ones for the rest (processes already serving
sessions too, with ``recovery_on_busy``), never more than
``threads_per_process`` on one. Sessions whose turn or approval was cut (someone
is waiting) are dealt first, round-robin, so they lead every process's queue. With
``resume_hold_s`` > 0 (off by default: no gain was measured), the pool also holds the
new work of the sessions it resumed on a process, in order, until that process's last
resume is done or ``resume_hold_s`` has passed: a turn started there would take the CPU
the remaining resumes need.

While any session runs, ``spare_processes`` idle processes are kept started and
initialized. New sessions fill processes that already serve sessions before an
idle one, so a spare stays empty until the others are full; recovery takes the
spare first, so a crash's first resumes need no process start. A used spare is
replaced ``spare_delay_s`` after the last resume of a recovery is done (a process
start would take CPU from them), and idle processes beyond ``spare_processes``
(left by ended sessions) are stopped.

Processes serving sessions run niced (``codex.session_nice``) while spares and
recovering ones keep the daemon's priority until their resumes are done; on Linux that
weighs only with ``codex.shared_session``, the default (``orbitdock.codex.priority``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka

from orbitdock.codex.appserver import AppServerProcess
from orbitdock.codex.held_work import HeldWork
from orbitdock.codex.install import CodexNotFound, find_codex
from orbitdock.codex.login_shell import ShellStart, check_in_background
from orbitdock.codex.placement import PoolBook
from orbitdock.codex.pool_ops import Begin, DetachOp, ModelsOp, Recover
from orbitdock.codex.priority import app_server_argv, nice_is_inert, raise_nice
from orbitdock.codex.pool_messages import (Attach, Command, Describe, Detach, ListModels,
                                           ModelsReply, Release, ThreadBound)
from orbitdock.codex.pool_report import RecoveryStats, pool_report, process_rows
from orbitdock.codex.sink import SinkOp, ThreadSink
from orbitdock.config import CodexConfig
from orbitdock.timers import ActorTimer
from orbitdock.protocol.models import ModelOption

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _BalanceSpares:  # from the spare timer: idle processes up (or down) to spare_processes
    pass


@dataclass(slots=True)
class _HoldExpired:  # from the timer: post the process's held work now
    proc: AppServerProcess
    hold_id: int


@dataclass(slots=True)
class _ModelsFetched:  # from a reader thread: model/list answered, keep the catalog
    models: list[ModelOption]


@dataclass(slots=True)
class _LoginShellChecked:  # from the login shell check's thread
    start: ShellStart


@dataclass(slots=True)
class _ProcessExited:
    proc: AppServerProcess
    reason: str


class CodexPoolActor(pykka.ThreadingActor):
    """See the module docstring. ``env`` is the child's whole environment (CODEX_HOME etc.)."""

    def __init__(self, config: CodexConfig, *, env: dict[str, str],
                 binary: str | Path | None = None, cwd: str | None = None):
        super().__init__()
        self._config, self._env, self._binary, self._cwd = config, env, binary, cwd
        self._ids = itertools.count(1)
        self._book: PoolBook[AppServerProcess] = PoolBook(config)  # where every session is
        self._boosted: set[AppServerProcess] = set()  # still at the daemon's priority
        self._timer: ActorTimer | None = None  # spare balancing and hold ends; on_start
        self._held: HeldWork[AppServerProcess, SinkOp] | None = None  # resuming sessions' work
        self._recoveries = RecoveryStats()
        self._login_shell: ShellStart | None = None  # measured when the first process starts
        self._models: list[ModelOption] | None = None  # model/list's catalog, once fetched
        self._stopping = False
        if nice_is_inert(config.session_nice, config.shared_session):
            logger.warning("codex.session_nice = %d has no effect between app-servers: Linux's "
                           "autogroup scheduler is on and codex.shared_session is off "
                           "(orbitdock.codex.priority)", config.session_nice)

    def on_start(self) -> None:
        self._timer = ActorTimer(self.actor_ref, "codex-pool-timer")
        self._held = HeldWork(self._config.resume_hold_s, self._timer, _HoldExpired)

    # ------------------------------------------------------------ messages
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Command):
            self._command(message.op)
        elif isinstance(message, Attach):
            self._attach(message.sink)
        elif isinstance(message, Detach):
            self._recoveries.forget(message.sink)
            self._resume_done(message.sink)
            proc = self._book.unassign(message.sink)
            if proc is not None:
                proc.post(DetachOp(message.sink))
                self._schedule_spares()
        elif isinstance(message, ThreadBound):
            self._book.bound(message.sink, message.thread_id)
            self._recoveries.resumed_ok(message.sink)
            self._resume_done(message.sink)
        elif isinstance(message, Release):
            self._recoveries.gave_up(message.sink)
            self._resume_done(message.sink)
            self._book.unassign(message.sink)
            self._schedule_spares()
        elif isinstance(message, ListModels):
            self._list_models(message.reply)
        elif isinstance(message, _ModelsFetched):
            self._models = message.models
        elif isinstance(message, Describe):
            return self._describe(message)
        elif isinstance(message, _LoginShellChecked):
            self._login_shell = message.start
        elif isinstance(message, _ProcessExited):
            self._on_exited(message.proc, message.reason)
        elif isinstance(message, _BalanceSpares):
            self._balance_spares()
        elif isinstance(message, _HoldExpired):
            if self._held.is_current(message.proc, message.hold_id):
                self._book.end_hold(message.proc)
                self._release_held(message.proc, "the hold ended; resumes still running")
        else:
            logger.warning("codex pool: unexpected message %r", message)
        return None

    def on_stop(self) -> None:
        self._stopping = True
        self._timer.stop()
        for proc in self._held.holding():
            for op in self._held.take(proc):
                op.fail("orbitdock is shutting down")
        deadline = time.monotonic() + self._config.stop_timeout_s
        threads = [threading.Thread(target=proc.stop, args=(deadline,), daemon=True)
                   for proc in self._book.procs]
        for thread in threads:  # in parallel: N processes cost one stop timeout, not N
            thread.start()
        for thread in threads:
            thread.join(timeout=3 * self._config.stop_timeout_s)
        for proc in list(self._book.procs):
            proc.close()
            self._book.drop(proc)

    # ------------------------------------------------------------ placement
    def _attach(self, sink: ThreadSink) -> None:
        proc = self._place(sink)
        if proc is not None:
            proc.post(Begin(sink))
            self._schedule_spares()

    def _command(self, op: SinkOp) -> None:
        proc = self._book.where.get(op.sink)
        if proc is None:
            op.fail("the codex session is not attached (stopped or failed)")
        elif self._held.hold_s > 0 and self._book.held_back(op.sink):
            self._held.hold(proc, op)
        else:
            proc.post(op)

    def _release_held(self, proc: AppServerProcess, why: str) -> None:
        """Post the work held for ``proc``, in the order it came."""
        ops = self._held.take(proc)
        if ops:
            logger.info("%s: posting %d held command(s) (%s)", proc, len(ops), why)
        for op in ops:
            self._command(op)  # (a session that stopped meanwhile fails it)

    def _place(self, sink: ThreadSink) -> AppServerProcess | None:
        """Choose (or start) the process for ``sink``; on failure the sink is told (fatal)."""
        # A thread stays loaded (and writer-locked) in the process that had it, even
        # after its session unsubscribed: resuming it anywhere else would be refused.
        proc = self._book.live_home(sink) or self._book.least_loaded()
        if proc is None:
            proc = self._spawn_for(sink, recovery=False)
            if proc is None:
                return None
        if not self._book.is_resuming(proc):
            self._settle(proc)  # a spare taking new sessions becomes an ordinary process
        self._book.assign(sink, proc)
        return proc

    def _spawn(self, *, recovery: bool) -> AppServerProcess:
        """Start a process: at the daemon's priority for a spare or a recovery, else niced."""
        binary = self._binary or find_codex(self._config.binary)
        argv = app_server_argv(str(binary), self._config.config_overrides,
                               0 if recovery else self._config.session_nice)
        proc = AppServerProcess(next(self._ids), argv, env=self._env, config=self._config,
                                on_exit=self._exited_from_reader, cwd=self._cwd)
        proc.start()
        if proc.proc_id == 1 and self._config.login_shell_warn_ms > 0:  # once, with the first
            check_in_background(self._env, self._config.login_shell_warn_ms / 1000,
                                self._config.login_shell_timeout_s, self._tell_login_shell)
        self._book.add(proc)
        if recovery and self._config.session_nice > 0:
            self._boosted.add(proc)
        return proc

    def _settle(self, proc: AppServerProcess) -> None:
        """Nice a boosted process like the others: it serves sessions now."""
        if proc not in self._boosted:
            return
        self._boosted.discard(proc)
        changed = raise_nice(proc.pid, self._config.session_nice) if proc.pid else 0
        logger.info("%s serves sessions: nice +%d (%d threads)", proc,
                    self._config.session_nice, changed)

    def _resume_done(self, sink: ThreadSink) -> None:
        """A recovering session resumed (or gave up): settle its process after the last."""
        proc = self._book.resume_done(sink)
        if proc is not None:
            self._settle(proc)
            self._release_held(proc, "its resumes are done")
            self._schedule_spares()  # held back while resumes were running

    # ------------------------------------------------------------ crashes
    def _exited_from_reader(self, proc: AppServerProcess, reason: str) -> None:
        """Called on the dying process's reader thread, as its very last act."""
        try:
            self.actor_ref.tell(_ProcessExited(proc, reason))
        except pykka.ActorDeadError:
            proc.close()

    def _on_exited(self, proc: AppServerProcess, reason: str) -> None:
        self._boosted.discard(proc)
        sinks = self._book.drop(proc)
        unrun = proc.unrun_ops() + self._held.take(proc)  # the held work came later
        if self._stopping:
            for op in unrun:
                op.fail("orbitdock is shutting down")
            return
        if sinks or unrun:
            logger.warning("%s exited (%s); %d session(s) to recover", proc, reason, len(sinks))
        recovering = [sink for sink in sinks if sink.on_lost(reason)]
        if sinks:
            self._recoveries.lost(recovering, [s for s in sinks if s not in recovering])
        self._recover(recovering)
        self._schedule_spares()
        for op in unrun:
            if isinstance(op, SinkOp) and op.sink in self._book.where:
                self._command(op)  # after the Recover above: held, or deferred by the sink
            elif isinstance(op, ModelsOp) and not op.retried:
                self._list_models(op.reply, retried=True)  # not tied to a process: retry once
            else:
                op.fail(reason)

    def _spawn_for(self, sink: ThreadSink, *, recovery: bool) -> AppServerProcess | None:
        """A fresh process for ``sink``, or None after telling the sink why not (fatal)."""
        try:
            return self._spawn(recovery=recovery)
        except (OSError, CodexNotFound) as exc:
            logger.error("cannot start codex app-server: %s", exc)
            sink.on_lost(f"cannot start codex app-server: {exc}")
            return None

    def _recover(self, sinks: list[ThreadSink]) -> None:
        """Place the sessions of a dead process (``PoolBook.plan_recovery``) and resume them."""
        plan, wave, idle = self._book.plan_recovery(
            sinks, lambda sink: self._spawn_for(sink, recovery=True))
        for sink, proc in plan:
            self._book.start_resume(sink, proc)
            proc.post(Recover(sink))
        if wave:
            logger.info("resuming on %s", ", ".join(
                f"{proc} ({count}, {'idle or new' if proc in idle else 'busy'})"
                for proc, count in wave.items()))

    # ------------------------------------------------------------ spares
    def _spares_missing(self) -> int:
        return 0 if self._stopping else self._book.spares_missing()

    def _idle_excess(self) -> list[AppServerProcess]:
        return [] if self._stopping else self._book.idle_excess()

    def _schedule_spares(self) -> None:
        if not (self._spares_missing() or self._idle_excess()):
            return
        # One pending balance at most: its key is free again once it is told.
        self._timer.after(self._config.spare_delay_s, _BalanceSpares(), key=_BalanceSpares)

    def _balance_spares(self) -> None:
        for proc in self._idle_excess():
            self._retire(proc)
        for _ in range(self._spares_missing()):
            try:
                proc = self._spawn(recovery=True)
            except (OSError, CodexNotFound) as exc:
                logger.warning("cannot start a spare codex app-server: %s", exc)
                return
            logger.info("started %s as a spare", proc)

    def _retire(self, proc: AppServerProcess) -> None:
        """Stop an idle process: off the books at once, so nothing is placed on it."""
        self._book.drop(proc)
        self._boosted.discard(proc)
        logger.info("stopping %s: idle beyond codex.spare_processes", proc)
        # stop() waits for the child; its exit comes back as _ProcessExited, with no sessions
        threading.Thread(target=proc.stop, name=f"codex-{proc.proc_id}-retire",
                         daemon=True).start()

    # ------------------------------------------------------------ queries
    def _list_models(self, reply: ModelsReply, retried: bool = False) -> None:
        if self._models is not None:  # the binary's catalog does not change while it runs
            reply(list(self._models), None)
            return
        pool = self.actor_ref

        def keep(models: list[ModelOption] | None, error: str | None) -> None:  # reader thread
            if models is not None:
                try:
                    pool.tell(_ModelsFetched(list(models)))
                except pykka.ActorDeadError:
                    pass
            reply(models, error)

        proc = self._book.least_busy()
        if proc is None:
            try:
                proc = self._spawn(recovery=False)
            except (OSError, CodexNotFound) as exc:
                reply(None, f"cannot start codex app-server: {exc}")
                return
        proc.post(ModelsOp(keep, retried))

    def _describe(self, message: Describe) -> list[dict[str, Any]] | None:
        if message.reply is None:
            return process_rows(self._book)
        message.reply(pool_report(self._book, self._recoveries, self._login_shell,
                                  self._config.login_shell_warn_ms / 1000))
        return None

    def _tell_login_shell(self, start: ShellStart) -> None:  # on the check's thread
        try:
            self.actor_ref.tell(_LoginShellChecked(start))
        except pykka.ActorDeadError:
            pass


def list_models(pool: pykka.ActorRef, timeout: float) -> list[ModelOption]:
    """Blocking convenience for the CLI and tests (actors use ``ListModels`` instead)."""
    done = threading.Event()
    box: list[Any] = []

    def reply(models: list[ModelOption] | None, error: str | None) -> None:
        box.append((models, error))
        done.set()

    pool.tell(ListModels(reply))
    if not done.wait(timeout):
        raise TimeoutError(f"codex model/list did not answer within {timeout}s")
    models, error = box[0]
    if error is not None:
        raise RuntimeError(error)
    return models
