"""ThreadSink: the backend state of one direct Codex session.

``ThreadSink`` holds that session's thread id, open turns (with the prompts codex
acknowledged but has not echoed, ``prompts.PromptLedger``), open server requests
and per-turn settings. It is owned by the reader thread of its hosting process;
while a crashed process is being replaced it is owned by the pool actor, which
hands it to the new process's reader. Only ``emit`` (thread safe by contract)
leaves it. The session actor's side is ``connector.CodexConnector``.

The messages between connector, sink and ``actors.codex_pool`` are in
``orbitdock.codex.pool_messages``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pykka

from orbitdock.codex import jsonrpc as rpc
from orbitdock.codex import mapping
from orbitdock.codex.appserver import AppServerProcess
from orbitdock.codex.pool_messages import Release, ThreadBound
from orbitdock.codex.prompts import Pending, PromptLedger
from orbitdock.config import CodexConfig
from orbitdock.connectors import events as ev
from orbitdock.connectors.base import Emit

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class SinkOp:
    """One connector command as plain data, run by its sink on the hosting reader thread.

    ``name`` is a ``ThreadSink.cmd_<name>`` method: a provider operation is added by
    writing that method (the connector forwards any name the sink has)."""

    sink: "ThreadSink"
    name: str
    token: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def run(self, ctx: AppServerProcess) -> None:
        self.sink.command(ctx, self)

    def fail(self, reason: str) -> None:
        self.sink.fail_op(self, "unavailable", reason)


class ThreadSink:
    """Backend state of one session; see the module docstring for who owns it."""

    def __init__(self, emit: Emit, *, cwd: str, model: str | None, approval_policy: str | None,
                 sandbox_mode: str | None, resume_thread_id: str | None, config: CodexConfig,
                 pool: pykka.ActorRef | None, session_id: str | None = None,
                 fork_thread_id: str | None = None):
        self._emit_fn = emit
        self.cwd, self.model = cwd, model
        self.approval_policy, self.sandbox_mode = approval_policy, sandbox_mode
        self.thread_id = resume_thread_id  # read by the pool only while it owns the sink
        self._fork_from = fork_thread_id  # a new thread continuing this one's conversation
        self.state = "new"  # new | starting | resuming | ready | failed | stopped
        self._config, self._pool = config, pool
        self.session_id = session_id  # orbitdock's id, for the pool's report
        self._log_extra = {"session_id": session_id}
        self._ctx: AppServerProcess | None = None
        self._mapper = mapping.ThreadMapper()
        self._prompts = PromptLedger()  # open turns and their unechoed prompts
        self._requests: dict[int | str, tuple[str, dict[str, Any]]] = {}
        self._deferred: list[SinkOp] = []
        self._had_turn = False  # decides whether a failed resume may fall back to a new thread
        self._announced = False  # ThreadStarted emitted (thread/start or the first resume)
        self._cut = False  # BackendLost emitted and not yet answered by BackendRecovered
        self._recoveries_left = config.recovery_attempts  # losses in a row while resuming
        self.was_busy = False  # set by on_lost: a turn or a server request was cut (pool reads it)

    def __repr__(self) -> str:
        return f"<ThreadSink {self.thread_id or '?'} {self.state}>"

    # ------------------------------------------------------------ lifecycle
    def begin(self, ctx: AppServerProcess) -> None:
        """First attach: thread/start, or thread/resume of a thread from an earlier run."""
        self._ctx = ctx
        if self.state != "new":
            return
        if self.thread_id:
            self._resume(ctx, initial=True)
        else:
            self._start_thread(ctx, recovering=False)

    def _start_thread(self, ctx: AppServerProcess, *, recovering: bool) -> None:
        self.state = "starting"
        asked_at = time.monotonic()  # the logged time includes any wait for a set-up slot
        if self._fork_from and not recovering:
            # excludeTurns: the fork's history is orbitdock's copy; codex only warns otherwise.
            method, params = "thread/fork", {"threadId": self._fork_from, "excludeTurns": True}
        else:
            method, params = "thread/start", _compact({
                "cwd": self.cwd, "model": self.model, "approvalPolicy": self.approval_policy,
                "sandbox": self.sandbox_mode})
        ctx.request(method, params,
            lambda result, error: self._on_started(result, error, recovering, asked_at))

    def recover(self, ctx: AppServerProcess) -> None:
        """Re-attach to a fresh process after the old one died."""
        self._ctx = ctx
        if self.state == "resuming":
            self._resume(ctx, initial=not self._announced)

    def _resume(self, ctx: AppServerProcess, *, initial: bool) -> None:
        self.state = "resuming"
        ctx.route(self.thread_id, self)  # type: ignore[arg-type]
        params = _compact({"threadId": self.thread_id, "excludeTurns": True, "cwd": self.cwd,
                           "model": self.model, "approvalPolicy": self.approval_policy,
                           "sandbox": self.sandbox_mode})
        asked_at = time.monotonic()  # the logged time includes any wait for a set-up slot

        def resumed(result: Any, error: rpc.RpcError | None) -> None:
            if error is None:
                logger.info("thread %s resumed on %s in %.2fs", self.thread_id, ctx,
                            time.monotonic() - asked_at, extra=self._log_extra)
            self._on_resumed(result, error, initial)

        ctx.request("thread/resume", params, resumed, timeout=self._config.resume_timeout_s)

    def _on_started(self, result: Any, error: rpc.RpcError | None, recovering: bool,
                    asked_at: float) -> None:
        if self.state != "starting":
            return
        if error is not None:
            verb = "thread/fork" if self._fork_from else "thread/start"
            self._fatal(f"{verb} failed: {error.message}")
            return
        self._fork_from = None  # from now on a plain thread: resumed, never forked again
        started = mapping.thread_started(result or {}, fallback_cwd=self.cwd)
        logger.info("thread %s started on %s in %.2fs", started.thread_id, self._ctx,
                    time.monotonic() - asked_at, extra=self._log_extra)
        self.thread_id = started.thread_id
        self.model = self.model or started.model
        self._ctx.route(self.thread_id, self)  # type: ignore[union-attr]
        self._tell_pool_bound()
        self.state = "ready"
        self._announced = True
        self._emit(started)
        if recovering:
            self._emit(ev.BackendRecovered(detail="the thread had no turns; started a new one"))
        self._run_deferred()

    def _on_resumed(self, result: Any, error: rpc.RpcError | None, initial: bool) -> None:
        if self.state != "resuming":
            return
        if error is not None and error.code == rpc.PROCESS_EXITED:
            return  # the pool's on_lost follows and decides whether to resume again
        if error is not None:
            self._ctx.unroute(self.thread_id, self)  # type: ignore[union-attr, arg-type]
            if not initial and not self._had_turn:
                # codex writes the rollout from the first turn on, so a thread that never
                # had one cannot be resumed; with no history to lose, a new thread is
                # equivalent (the session actor sees a second ThreadStarted).
                logger.info("thread %s had no turns (%s); starting a new one", self.thread_id,
                            error.message, extra=self._log_extra)
                self._start_thread(self._ctx, recovering=True)  # type: ignore[arg-type]
                return
            self._fatal(f"thread/resume failed: {error.message}")
            return
        self._had_turn = True  # a resumable thread has a rollout
        self._tell_pool_bound()
        self.state = "ready"
        self._recoveries_left = self._config.recovery_attempts
        if initial:
            self._announced = True
            self._emit(mapping.thread_started(result or {}, fallback_cwd=self.cwd))
        if self._cut:  # always so after a loss; only an initial resume may have none
            self._cut = False
            self._emit(ev.BackendRecovered(detail=f"thread {self.thread_id} resumed"))
        self._run_deferred()

    def on_lost(self, reason: str) -> bool:
        """The hosting process died (called by the pool, which owns the sink now).

        Returns whether the pool should resume the thread in another process: a
        session that was working, or one whose resume this death cut (under load a
        resume can take seconds), ``recovery_attempts`` times in a row at most, so a
        codex that cannot start does not loop. One still starting gives up.
        """
        self._ctx = None
        self.was_busy = bool(self._requests)
        self._requests_lost()
        if self.state == "ready":
            self.was_busy = self._close_open_turns(reason) > 0 or self.was_busy
            self._mapper.reset()
            self.state = "resuming"
            self._cut = True
            self._emit(ev.BackendLost(reason=reason))
            return True
        if self.state == "resuming" and self._recoveries_left > 0:
            self._recoveries_left -= 1
            self._cut = True
            self._emit(ev.BackendLost(reason=f"{reason} (while resuming)"))
            return True
        if self.state in ("new", "starting", "resuming"):
            self._fatal(reason)
        return False

    def _close_open_turns(self, reason: str) -> int:
        """Close every turn codex acknowledged or started, failed with ``reason``.

        A turn acknowledged but never started is started first (the client holds
        its id); a prompt codex acknowledged but never echoed is appended, so it
        is neither lost nor, when codex did echo it, duplicated.
        """
        turns = self._prompts.lost()
        for turn in turns:
            if not turn.started:
                self._emit(ev.TurnStarted(turn_id=turn.turn_id))
            for text in turn.prompts:
                self._emit(ev.UserMessage(text=text, turn_id=turn.turn_id))
            self._emit(ev.TurnCompleted(turn_id=turn.turn_id, status="failed", error=reason))
        return len(turns)

    def superseded(self) -> None:
        """Another session attached the same thread in this process (e.g. a restarted actor)."""
        self.detach(None)

    def detach(self, ctx: AppServerProcess | None) -> None:
        if ctx is not None and self.thread_id and self.state in ("ready", "resuming"):
            ctx.unroute(self.thread_id, self)
            ctx.request("thread/unsubscribe", {"threadId": self.thread_id}, _ignore)
        self.state = "stopped"
        for op in self._deferred:
            self.fail_op(op, "invalid_state", "session stopped")
        self._deferred.clear()

    def _fatal(self, reason: str) -> None:
        self.state = "failed"
        logger.warning("codex session failed: %s", reason, extra=self._log_extra)
        self._emit(ev.BackendLost(reason=reason, fatal=True))
        for op in self._deferred:
            self.fail_op(op, "backend_error", reason)
        self._deferred.clear()
        if self._pool is not None:
            _tell(self._pool, Release(self))

    def _tell_pool_bound(self) -> None:
        if self._pool is not None:
            _tell(self._pool, ThreadBound(self, self.thread_id))  # type: ignore[arg-type]

    def _requests_lost(self) -> None:
        for key in list(self._requests):
            self._emit(ev.ApprovalCleared(key=key))
        self._requests.clear()

    # ------------------------------------------------------------ from the reader
    def on_notification(self, method: str, params: dict[str, Any]) -> None:
        if self.state in ("stopped", "failed"):
            return
        if method == "serverRequest/resolved":
            self._requests.pop(params.get("requestId"), None)
        elif method == "turn/started":
            self._had_turn = True
        for event in self._mapper.notification(method, params):
            if isinstance(event, ev.UserMessage):
                self._prompts.echoed(event.turn_id, event.text)
            elif isinstance(event, ev.TurnStarted):
                self._prompts.started(event.turn_id)
            elif isinstance(event, ev.TurnCompleted):
                self._prompts.completed(event.turn_id)
            self._emit(event)

    def on_server_request(self, req_id: int | str, method: str, params: dict[str, Any]) -> None:
        self._requests[req_id] = (method, params)
        self._emit(self._mapper.server_request(req_id, method, params))

    # ------------------------------------------------------------ commands
    def command(self, ctx: AppServerProcess, op: SinkOp) -> None:
        if self.state in ("new", "starting", "resuming"):
            self._deferred.append(op)  # run once the thread exists again
            return
        if self.state != "ready":
            self.fail_op(op, "invalid_state", f"codex session is {self.state}")
            return
        self._ctx = ctx
        getattr(self, f"cmd_{op.name}")(ctx, op, **op.kwargs)

    def _run_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for op in deferred:
            self.command(self._ctx, op)  # type: ignore[arg-type]

    def fail_op(self, op: SinkOp, code: str, message: str) -> None:
        self._emit(ev.CommandResult(token=op.token, ok=False, error_code=code,
                                    error_message=message))

    def _done(self, op: SinkOp, shape=lambda result: {}):  # noqa: ANN202
        def callback(result: Any, error: rpc.RpcError | None) -> None:
            if error is not None:
                code = "timeout" if error.code == rpc.TIMEOUT else "backend_error"
                self.fail_op(op, code, error.message)
            else:
                self._emit(ev.CommandResult(token=op.token, ok=True, result=shape(result or {})))
        return callback

    def _turn_params(self, text: str, effort: str | None = None) -> dict[str, Any]:
        # Overrides on every turn: a changed autonomy applies from the next turn on.
        return _compact({"threadId": self.thread_id,
                         "input": [{"type": "text", "text": text, "text_elements": []}],
                         "approvalPolicy": self.approval_policy,
                         "sandboxPolicy": mapping.sandbox_policy(self.sandbox_mode),
                         "model": self.model, "effort": effort})

    def _prompt_done(self, op: SinkOp, pending: Pending, turn_of):  # noqa: ANN001, ANN202
        """``_done`` for a request carrying a prompt: the ledger learns its turn first."""
        done = self._done(op, lambda result: {"turn_id": turn_of(result)})

        def callback(result: Any, error: rpc.RpcError | None) -> None:
            if error is None:
                self._prompts.acked(pending, turn_of(result or {}))
            else:
                self._prompts.dropped(pending)
            done(result, error)
        return callback

    def cmd_send_message(self, ctx: AppServerProcess, op: SinkOp, content: str,
                         model: str | None = None, effort: str | None = None) -> None:
        if model and model != self.model:
            self.model = model  # codex keeps a turn's override for the turns after it
            self._emit(ev.ConfigApplied(approval_policy=self.approval_policy,
                                        sandbox_mode=self.sandbox_mode, model=model))
        ctx.request("turn/start", self._turn_params(content, effort),
                    self._prompt_done(op, self._prompts.sent(content),
                                      lambda r: (r.get("turn") or {}).get("id")))

    def cmd_steer(self, ctx: AppServerProcess, op: SinkOp, content: str) -> None:
        text = content
        if not self._mapper.turn_id:  # the turn just ended: the text starts the next one
            self.cmd_send_message(ctx, op, text)
            return
        ctx.request("turn/steer", {
            "threadId": self.thread_id, "expectedTurnId": self._mapper.turn_id,
            "input": [{"type": "text", "text": text, "text_elements": []}]},
            self._prompt_done(op, self._prompts.sent(text), lambda r: r.get("turnId")))

    def cmd_interrupt(self, ctx: AppServerProcess, op: SinkOp) -> None:
        if not self._mapper.turn_id:
            self.fail_op(op, "invalid_state", "no active turn to interrupt")
            return
        ctx.request("turn/interrupt", {"threadId": self.thread_id, "turnId": self._mapper.turn_id},
                    self._done(op))

    def cmd_respond(self, ctx: AppServerProcess, op: SinkOp, key: Any, decision: str | None,
                    answers: dict[str, list[str]] | None) -> None:
        found = _lookup_key(self._requests, key)
        if found is None:
            self.fail_op(op, "stale_approval", f"no open codex request {key!r}")
            return
        method, params = self._requests.pop(found)
        ctx.reply(found, mapping.build_reply(method, params, decision, answers))
        self._emit(ev.CommandResult(token=op.token, ok=True))

    def cmd_rename(self, ctx: AppServerProcess, op: SinkOp, name: str | None) -> None:
        if not name:  # codex has no "clear name"; the name lives in orbitdock
            self._emit(ev.CommandResult(token=op.token, ok=True))
            return
        ctx.request("thread/name/set", {"threadId": self.thread_id, "name": name}, self._done(op))

    def cmd_set_config(self, ctx: AppServerProcess, op: SinkOp, approval_policy: str | None,
                       sandbox_mode: str | None, model: str | None) -> None:
        if sandbox_mode is not None and sandbox_mode not in mapping.SANDBOX_POLICIES:
            self.fail_op(op, "invalid_field", f"unknown sandbox mode {sandbox_mode!r}")
            return
        self.approval_policy = approval_policy or self.approval_policy
        self.sandbox_mode = sandbox_mode or self.sandbox_mode
        self.model = model or self.model
        self._emit(ev.ConfigApplied(approval_policy=self.approval_policy,
                                    sandbox_mode=self.sandbox_mode, model=self.model))
        self._emit(ev.CommandResult(token=op.token, ok=True))

    def _emit(self, event: ev.BackendEvent) -> None:
        try:
            self._emit_fn(event)
        except pykka.ActorDeadError:  # the session actor is gone; nothing to tell
            logger.debug("dropping %s for a stopped session", type(event).__name__,
                         extra=self._log_extra)


def _compact(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _ignore(result: Any, error: rpc.RpcError | None) -> None:
    if error is not None:
        logger.debug("ignored codex error: %s", error.message)


def _lookup_key(requests: dict[Any, Any], key: Any) -> Any:
    """Approval keys may come back stringified from the wire: accept "3" for 3."""
    for candidate in (key, str(key), int(key) if str(key).lstrip("-").isdigit() else None):
        if candidate is not None and candidate in requests:
            return candidate
    return None


def _tell(ref: pykka.ActorRef, message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug("codex pool gone; dropping %s", type(message).__name__)
