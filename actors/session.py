"""SessionActor: one per session. Owns its state, turn id, approval queue and revision.

Everything about a session happens on this actor's thread: backend events are
reduced by its ``SessionCore``, the resulting wire events are published through
its outlet (a handle on the gateway inbox every actor shares; no socket of its
own), and the derived rows are told to the persistence actor. One event costs two hops:
connector -> this actor -> gateway loop (persistence is told in parallel).

Passivation: an actor with nothing in flight (no turn, approval or backend command;
a passive session's turn runs in the terminal and does not count), or ended, tells
the supervisor once (``Idle``, with when it was last busy); the supervisor says
``PassivateNow`` after ``sessions.passivate_after_s`` (ended:
``passivate_ended_after_s``), and if nothing came meanwhile the actor stops its
connector (a codex thread is unsubscribed), stops taking messages and hands what
reached its inbox meanwhile to the supervisor. Idle actors are never polled. Its
state is in the database; the supervisor re-activates it from there on the next
message for it (``SupervisorActor._activate``).
"""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass
from typing import Any, Callable

import msgspec
import pykka
import zmq

from actors.messages import (
    Backend,
    Checked,
    SessionDiscarded,
    ForSession,
    Idle,
    PassivateDeclined,
    PassivateNow,
    RolloutBatch,
    RolloutIdle,
    SessionCrashed,
    SessionPassivated,
    ThreadOwned,
)
from orbitdock.config import Config
from orbitdock.connectors import events as be
from orbitdock.connectors.base import Connector, Provider
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import SessionState
from orbitdock.protocol.routing import ClientRequest, RequestTable, Scope, answers
from orbitdock.session.core import QUESTION_TYPES, SessionCore
from orbitdock.session.reducer import summary_of
from orbitdock.store.commands import Atomic, CopyMessages
from orbitdock.transport import Outlet

logger = logging.getLogger(__name__)

# What every request carries and no provider operation takes.
ENVELOPE_FIELDS = frozenset(m.Request.__struct_fields__) | {"session_id"}

# Client decisions, with the upstream OrbitDock spellings accepted as aliases.
DECISIONS = {
    "accept": "accept", "approved": "accept", "approve": "accept",
    "accept_for_session": "accept_for_session", "approved_for_session": "accept_for_session",
    "approved_always": "accept_for_session",
    "decline": "decline", "denied": "decline", "deny": "decline",
    "cancel": "cancel", "abort": "cancel",
}


@dataclass(slots=True)
class _Decision:
    """Token for an approval answer in flight: who asked, and which approval."""

    request: ClientRequest
    approval_id: str


@dataclass(slots=True)
class _Rollback:
    """Token for a rollback in flight: who asked, and the first message seq it drops."""

    request: ClientRequest
    seq: int
    turns: int


FILES_NOT_REVERTED = ("files on disk were NOT reverted: the rolled-back turns' edits and "
                      "commands stay in the working tree")


class SessionActor(pykka.ThreadingActor):
    def __init__(self, config: Config, state: SessionState, *, ctx: zmq.Context,
                 inproc_endpoint: str, persistence: pykka.ActorRef,
                 supervisor: pykka.ActorRef | None,
                 connector_factory: Callable[[SessionState], Connector] | None,
                 epoch: str, restored: bool = False, provider: Provider | None = None,
                 pending_request: ClientRequest | None = None,
                 disabled_reason: str | None = None, last_approval: int = 0,
                 fork_thread_id: str | None = None):
        super().__init__()
        self.epoch = epoch
        self.cfg = config
        self.state = state
        self.session_id = state.id
        self.ctx = ctx
        self.inproc_endpoint = inproc_endpoint
        self.persistence = persistence
        self.supervisor = supervisor
        self.connector_factory = connector_factory
        self.provider = provider  # checks config values; shared, immutable
        self.restored = restored
        self.pending_request = pending_request
        self.disabled_reason = disabled_reason  # set when the supervisor gave up restarting
        self.last_approval = last_approval  # a restored session numbers approvals on after it
        # A fork in the making: nothing is saved or published (and the client waits) until
        # the backend made the thread; if it cannot, the session never existed.
        self.fork_thread_id = fork_thread_id
        self.connector: Connector | None = None
        self.outlet: Outlet | None = None
        self.core: SessionCore | None = None
        # A restored session's row is already in the gateway's list (seeded from the
        # database, or listed before it was passivated): only a change is sent.
        self._last_summary = summary_of(state) if restored else None
        self._summary_sent_at = 0.0
        self._summary_period = config.gateway.list_coalesce_ms / 1000.0
        self._backend_failed = False  # the last connector gave up; its successor clears that
        self._flush_max = config.sessions.flush_max_events
        self._unflushed = 0  # backend events handled since the last publish
        self._active_at = time.monotonic()  # last message other than PassivateNow
        self._in_flight = 0  # backend commands sent whose CommandResult has not come
        # Our Idle the supervisor holds: None, or whether it said "ended" (an end comes
        # sooner, so a session that ends after saying Idle says it again).
        self._offered: bool | None = None
        self._passivated = False
        self._log = logging.LoggerAdapter(logger, {"session_id": state.id})

    # ------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        try:
            self._start()
        except Exception as exc:
            # pykka stops an actor whose on_start raised without calling on_failure: tell
            # the supervisor, which would otherwise hold this session's messages for a
            # restart that never comes.
            self._log.exception("session actor failed to start")
            self._refuse_pending(exc)
            self.actor_stopped.set()  # refuse tells from now on, as pykka will, then drain
            self._hand_over(repr(exc), at_start=True)  # pykka calls no on_stop either
            raise

    def _start(self) -> None:
        self.requests = RequestTable(self, Scope.SESSION, forwarded=self._forward)
        self.outlet = Outlet(self.inproc_endpoint, self.cfg.gateway.inbound_hwm)
        self.core = SessionCore(self.state, last_approval=self.last_approval,
                                tool_output_max_chars=self.cfg.sessions.tool_output_max_chars,
                                life=self.epoch)
        if self.disabled_reason is not None:
            self.connector_factory = None
            self.core.reset_after_restart(self.disabled_reason)
            self.core.end(self.disabled_reason)
        elif self.restored and self.state.integration_mode != "passive":
            # A passive session's turn goes on in the terminal; its rollout tells us more.
            self.core.reset_after_restart("orbitdockd restarted while this turn ran")
        elif self.state.status == "active" and self.connector_factory is not None:
            try:
                self._start_connector(resume=False)
            except ProtocolError as exc:
                if self.pending_request is None:
                    raise
                self._refuse_create(exc.message, exc.code)
                return
        if self.pending_request is not None and self.connector is None:
            self.outlet.answer(self.pending_request, self._snapshot())
            self.pending_request = None
        # With a backend starting, the create is answered (and the session saved and
        # listed) once the backend has its thread, or refused if it cannot start one.
        self._flush()
        self._offer_idle()

    def _refuse_pending(self, exc: Exception) -> None:
        """The create (or resume) that started this actor gets a coded answer, never silence."""
        if self.pending_request is None:
            return
        try:
            outlet = self.outlet or Outlet(self.inproc_endpoint, self.cfg.gateway.inbound_hwm)
            outlet.refuse(self.pending_request, ErrorCode.SESSION_START_FAILED,
                          f"the session's actor failed to start: {exc!r}", self.session_id)
        except Exception:
            self._log.exception("could not answer the request that started this session")
        self.pending_request = None

    def on_stop(self) -> None:
        if self.connector is not None:
            try:
                self.connector.stop()
            except Exception:
                self._log.exception("connector stop failed")
        if self.outlet is not None:
            self.outlet.close()

    def on_failure(self, exc_type, exc_value, traceback) -> None:
        self._log.error("session actor crashed: %r", exc_value)
        if self.connector is not None:  # pykka skips on_stop after a failure
            try:
                self.connector.stop()
            except Exception:
                self._log.exception("connector stop after crash failed")
            self.connector = None
        # pykka marked us stopped before this hook, so nothing joins the inbox now.
        self._hand_over(repr(exc_value))

    def _hand_over(self, error: str, at_start: bool = False) -> None:
        """Report the crash with what was queued for us (client requests, rollout batches),
        so the restarted actor handles it first instead of it vanishing with this inbox."""
        if self.supervisor is not None:
            self.supervisor.tell(SessionCrashed(self.session_id, error, self._undelivered(),
                                                at_start=at_start))
        if self.outlet is not None:
            self.outlet.close()
            self.outlet = None

    def _undelivered(self, keep_backend: bool = False) -> list[Any]:
        """Empty the inbox of a stopped actor: what its successor must handle, in order
        (after a crash backend events are left out: the old backend is gone with this
        actor; the passivation sweep's own messages never carry over)."""
        drained = []
        while True:
            try:
                envelope = self.actor_inbox.get_nowait()
            except queue.Empty:
                return drained
            message = envelope.message
            if isinstance(message, PassivateNow):
                continue
            if keep_backend or not isinstance(message, Backend):
                drained.append(message)

    def _emit(self, event: Any) -> None:
        # Called on connector threads: only hand the event to this actor's inbox.
        try:
            self.actor_ref.tell(Backend(event, time.time()))
        except pykka.ActorDeadError:
            if self._passivated and self.supervisor is not None:
                # Raced the passivation: the supervisor re-activates the session for it.
                try:
                    self.supervisor.tell(ForSession(self.session_id, Backend(event, time.time())))
                    return
                except pykka.ActorDeadError:
                    pass
            # Stopped (shutdown, end) while its backend was still finishing a turn:
            # the state was already settled and persisted; nothing left to deliver to.
            self._log.debug("backend event after stop dropped: %s", type(event).__name__)

    def _start_connector(self, resume: bool) -> None:
        self.connector = self.connector_factory(self.state)
        self.connector.start(self._emit, resume_thread_id=self.state.thread_id if resume else None,
                             fork_thread_id=self.fork_thread_id)

    def _drop_failed_connector(self) -> None:
        """The backend gave up for good (codex refused the thread, never answered, or cannot
        start): the next prompt, decision or resume starts a new connector instead of
        being refused by the dead one until the daemon restarts."""
        if self.connector is not None:
            self.connector.stop()
            self.connector = None
        self._in_flight = 0  # their results died with it
        self._backend_failed = True

    def _ensure_connector(self) -> Connector:
        if self.connector is None:
            if self.connector_factory is None:
                raise ProtocolError(ErrorCode.INVALID_STATE,
                                    "passive session: orbitdock only watches it")
            self._start_connector(resume=self.state.thread_id is not None)
        return self.connector

    # ------------------------------------------------------------ output
    def _flush(self, extra_commands: list[Any] | None = None, atomic_tail: Any = None) -> None:
        if self.pending_request is not None:
            return  # a new session's backend is not up yet: nothing of it exists outside
        self._unflushed = 0
        events, commands = self.core.drain()
        for event in events:
            self.outlet.publish(self.session_id, event)
        if extra_commands:
            commands.extend(extra_commands)
        if atomic_tail is not None:
            self.persistence.tell(Atomic(commands + [atomic_tail]))
        elif len(commands) == 1:
            self.persistence.tell(commands[0])
        elif commands:
            self.persistence.tell(commands)  # one inbox message for the lot: in order
        last = self._last_summary
        now = time.monotonic()
        # Within the period after a send, a change of activity time alone can wait.
        recent = last is not None and now - self._summary_sent_at < self._summary_period
        if recent and all(type(event) is m.MessageUpdated for event in events):
            return  # streamed deltas move no list field but the activity time
        summary = self.core.summary()
        if summary == last or (recent and msgspec.structs.replace(
                summary, last_activity_at=last.last_activity_at) == last):
            return
        self._last_summary = summary
        self._summary_sent_at = now
        self.outlet.summary(summary)

    def _error(self, req: ClientRequest, code: ErrorCode, text: str) -> None:
        self.outlet.refuse(req, code, text, self.session_id)

    def _snapshot(self) -> m.SessionSnapshot:
        return m.SessionSnapshot(epoch=self.epoch, session=self.state)

    # ------------------------------------------------------------ inbox
    def on_receive(self, message: Any) -> Any:
        if type(message) is PassivateNow:
            self._on_passivate_now()
            return None
        self._active_at = time.monotonic()
        if isinstance(message, Backend):
            self._on_backend(message.event, message.at or None)
        elif isinstance(message, ClientRequest):
            self._on_request(message)
        elif isinstance(message, Checked):  # a config change, checked by the provider
            if message.error is not None:
                self.outlet.refuse_with(message.request, message.error)
            else:
                self._configure(message.request)
                self._flush()
        elif isinstance(message, RolloutBatch):
            self._apply_rollout(message)
        elif isinstance(message, RolloutIdle):
            self.core.end("timeout")
            self._flush()
        elif message == "snapshot":
            return msgspec.structs.replace(self.state)
        # Behind a backlog (a burst), handle what is queued before publishing: the
        # events go out in one go, with one session-row write and one summary check.
        # An idle inbox publishes at once, so latency is unchanged when keeping up.
        if self._unflushed and (self._unflushed >= self._flush_max
                                or self.actor_inbox.empty()):
            self._flush()
        if self._offered is None or (not self._offered and self.state.status == "ended"):
            self._offer_idle()
        return None

    # ------------------------------------------------------------ passivation
    def _passivable(self) -> bool:
        if self._in_flight or self.supervisor is None or self.pending_request is not None:
            return False  # (a new session waiting for its backend's thread is not idle)
        st = self.state
        # A direct session's turn or approval lives in its backend, which passivation
        # would stop; a passive session's lives in the terminal, and its rows are saved.
        return st.status == "ended" or st.integration_mode == "passive" or (
            st.current_turn_id is None and not st.approvals)

    def _offer_idle(self) -> None:
        if self._passivable():
            self._offered = self.state.status == "ended"
            self.supervisor.tell(Idle(self.session_id, self._active_at, self._offered))

    def _on_passivate_now(self) -> None:
        if not self._passivable() or self._unflushed:
            self._offered = None  # offered again once passivable
            self.supervisor.tell(PassivateDeclined(self.session_id, None))
            return
        ended = self.state.status == "ended"
        wait = self.cfg.sessions.passivate_ended_after_s if ended \
            else self.cfg.sessions.passivate_after_s
        if time.monotonic() - self._active_at < wait:  # busy since its Idle: not yet
            self.supervisor.tell(PassivateDeclined(self.session_id, self._active_at, ended))
            return
        self._passivate()

    def _passivate(self) -> None:
        """Release thread and backend; the state is already told to persistence."""
        self._flush()
        if self.connector is not None:
            try:
                self.connector.stop()  # codex: the thread is unsubscribed (resumed on demand)
            except Exception:
                self._log.exception("connector stop at passivation failed")
            self.connector = None
        self._passivated = True
        self.actor_stopped.set()  # tells fail from now on (the senders re-route)
        pykka.ActorRegistry.unregister(self.actor_ref)
        self._log.debug("passivated at revision %d", self.state.revision)
        # The loop ends after this message; what reached the inbox goes to the supervisor.
        self.supervisor.tell(SessionPassivated(self.session_id,
                                               self._undelivered(keep_backend=True)))

    def _apply_rollout(self, batch: RolloutBatch) -> None:
        times = batch.timestamps or [None] * len(batch.events)
        for event, ts in zip(batch.events, times):
            try:
                self.core.handle(event, now=ts)
            except Exception:  # noqa: BLE001 - see below
                # One event we cannot apply must not crash the actor: that would drop
                # the whole batch, and re-read after a restart it would crash again
                # until the restart policy gave up on the session.
                self._log.exception("rollout %s: a %s before byte %d could not be applied; "
                                    "skipped (code %s)", batch.offset.path,
                                    type(event).__name__, batch.offset.offset,
                                    ErrorCode.INTERNAL)
        self._flush(atomic_tail=batch.offset)

    def _on_backend(self, event: Any, at: float | None = None) -> None:
        if isinstance(event, be.CommandResult):
            if event.token is not None:
                self._in_flight = max(0, self._in_flight - 1)
            req = event.token
            if isinstance(req, _Decision):
                self.core.finish_decision(req.approval_id, accepted=event.ok)
                if event.ok:
                    self.outlet.answer(req.request, m.ApprovalDecisionResult(
                        session_id=self.session_id, approval_id=req.approval_id,
                        outcome="applied"))
                else:
                    self._error(req.request, ErrorCode(event.error_code or ErrorCode.BACKEND_ERROR),
                                event.error_message or "backend rejected the decision")
                self._flush()
            elif isinstance(req, _Rollback):
                self._rolled_back(req, event)
            elif isinstance(req, ClientRequest):
                if event.ok:
                    self.outlet.answer(req, m.Ack(session_id=self.session_id, result=event.result))
                else:
                    self._error(req, ErrorCode(event.error_code or ErrorCode.BACKEND_ERROR),
                                event.error_message or "backend refused the command")
            return
        if self.pending_request is not None and isinstance(event, be.BackendLost) and event.fatal:
            self._refuse_create(event.reason)
            return
        self.core.handle(event, now=at)
        if isinstance(event, be.BackendLost) and event.fatal:
            self._drop_failed_connector()
        elif isinstance(event, be.ThreadStarted):
            if self.supervisor is not None:
                self.supervisor.tell(ThreadOwned(event.thread_id, self.session_id))
            if self._backend_failed:
                self._backend_failed = False
                self.core.handle(be.BackendRecovered("a new backend took over"), now=at)
            if self.pending_request is not None:  # the create is answered once its thread is
                self._answer_create()
        self._unflushed += 1  # published by on_receive (see there)

    def _answer_create(self) -> None:
        """A new session's (or a fork's) thread exists: its row goes first, a fork's copy of
        its parent's messages after it (same transaction order), then the client gets the
        snapshot."""
        req, self.pending_request = self.pending_request, None
        extra = None
        if self.fork_thread_id is not None:
            self.fork_thread_id = None
            extra = [CopyMessages(self.state.forked_from_session_id, self.session_id,
                                  self.state.total_message_count)]
        self._flush(extra_commands=extra)
        self.outlet.answer(req, self._snapshot())

    def _refuse_create(self, reason: str, code: ErrorCode = ErrorCode.BACKEND_ERROR) -> None:
        """A new session's (or a fork's) backend gave up before it had a thread: refuse the
        request and discard the session (nothing of it was saved, listed or published)."""
        req, self.pending_request = self.pending_request, None
        verb = "fork failed" if self.fork_thread_id else "the backend refused the session"
        self._log.warning("%s: %s", verb, reason)
        self.outlet.refuse(req, code, f"{verb}: {reason}",
                           self.state.forked_from_session_id or self.session_id)
        self._drop_failed_connector()
        if self.supervisor is not None:
            self.supervisor.tell(SessionDiscarded(self.session_id))

    def _on_request(self, req: ClientRequest) -> None:
        try:
            reply = self.requests.handler(req.request)(req)
            if reply is not None:
                self.outlet.answer(req, reply)
        except ProtocolError as exc:
            self._error(req, exc.code, exc.message)
        except Exception as exc:
            # A bug: answer the client, then let the actor fail so the supervisor
            # restarts it from its persisted state.
            self._error(req, ErrorCode.INTERNAL, f"session actor failed: {exc!r}; restarting it")
            raise
        self._flush()

    def _require_active(self) -> None:
        if self.state.status == "ended":
            raise ProtocolError(ErrorCode.INVALID_STATE, "session has ended; resume it first")

    def _forward(self, req: ClientRequest) -> None:
        """Every request that declares ``forward``: its fields go to the connector's
        operation of that name, which answers through a ``CommandResult``."""
        r = req.request
        if r.needs_active:
            self._require_active()
        fields = {name: getattr(r, name) for name in r.__struct_fields__
                  if name not in ENVELOPE_FIELDS}
        self._ensure_connector().call(r.forward, req, **fields)
        self._in_flight += 1

    @answers(m.RollbackSession)
    def _rollback(self, req: ClientRequest) -> None:
        """Codex drops the turns first (thread/revert); their messages go once it did."""
        self._require_active()
        connector = self._ensure_connector()
        if self.state.current_turn_id is not None:
            raise ProtocolError(ErrorCode.INVALID_STATE, "a turn is running: roll back after it ends")
        turn_id, seq = self.core.rollback_plan(req.request.turns)
        connector.call("revert", _Rollback(req, seq, req.request.turns), before_turn_id=turn_id)

    def _rolled_back(self, token: _Rollback, result: be.CommandResult) -> None:
        if not result.ok:
            self._error(token.request, ErrorCode(result.error_code or ErrorCode.BACKEND_ERROR),
                        result.error_message or "backend refused the rollback")
            return
        dropped = self.core.rollback(token.seq)
        self._flush()  # the reset goes out (and the rows away) before the reply
        self.outlet.answer(token.request, m.Ack(session_id=self.session_id, result={
            "turns_dropped": token.turns, "messages_dropped": dropped,
            "files_reverted": False, "warning": FILES_NOT_REVERTED}))

    @answers(m.SubscribeSession)
    def _subscribe(self, req: ClientRequest) -> m.SessionSnapshot:
        return self._snapshot()

    def _decide(self, req: ClientRequest, approval_id: str, decision: str,
                answers: dict[str, list[str]] | None) -> None:
        # Looked up before the connector: an unknown or decided id must not wake an idle
        # session's backend (thread/resume), and is stale whatever the session is.
        try:
            key = self.core.begin_decision(approval_id, decision)
        except KeyError:
            raise ProtocolError(ErrorCode.STALE_APPROVAL,
                                f"approval {approval_id} is no longer pending") from None
        try:
            self._ensure_connector().respond(_Decision(req, approval_id), key,
                                             decision=decision, answers=answers)
            self._in_flight += 1
        except ProtocolError:
            self.core.finish_decision(approval_id, accepted=False)
            raise

    @answers(m.ApproveTool)
    def _approve(self, req: ClientRequest) -> None:
        r: m.ApproveTool = req.request
        decision = DECISIONS.get(r.decision, r.decision)
        approval = self.core.approval(r.approval_id)
        if approval is not None and approval.type in QUESTION_TYPES:
            questions = "; ".join(
                f"{q.id}: {q.question}" + (f" [{', '.join(str(o.get('label')) for o in q.options)}]"
                                           if q.options else "")
                for q in approval.questions or [])
            raise ProtocolError(ErrorCode.WRONG_VERB,
                                f"approval {r.approval_id} is a question: answer it "
                                f"(answer_question) instead of {r.decision!r}"
                                + (f"; questions: {questions}" if questions else ""))
        if approval is not None and approval.available_decisions and decision not in DECISIONS \
                and decision not in approval.available_decisions:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"decision {r.decision!r} not offered: "
                                f"{approval.available_decisions}")
        self._decide(req, r.approval_id, decision, None)

    @answers(m.AnswerQuestion)
    def _answer_question(self, req: ClientRequest) -> None:
        r: m.AnswerQuestion = req.request
        approval = self.core.approval(r.approval_id)
        if approval is not None and approval.type not in QUESTION_TYPES:
            raise ProtocolError(ErrorCode.WRONG_VERB,
                                f"approval {r.approval_id} is a {approval.type} approval, not a "
                                "question: approve or deny it (approve_tool)")
        self._decide(req, r.approval_id, "answered", r.answers)

    @answers(m.RenameSession)
    def _rename(self, req: ClientRequest) -> m.Ack:
        name = req.request.name
        self.core.rename(name)
        if self.connector is not None:
            self.connector.rename(None, name)
        return m.Ack(session_id=self.session_id)

    @answers(m.UpdateSessionConfig)
    def _check_config(self, req: ClientRequest) -> None:
        r: m.UpdateSessionConfig = req.request
        if self.provider is None:  # a passive session: orbitdock's own view of it
            self._configure(req)
            self._flush()
            return
        actor = self.actor_ref
        # The verdict may come from a provider's thread: it only tells this actor.
        self.provider.check_config(approval_policy=r.approval_policy,
                                   sandbox_mode=r.sandbox_mode, model=r.model,
                                   checked=lambda error: actor.tell(Checked(req, error)))

    def _configure(self, req: ClientRequest) -> None:
        r: m.UpdateSessionConfig = req.request
        self.core.configure(approval_policy=r.approval_policy, sandbox_mode=r.sandbox_mode,
                            model=r.model)
        if self.connector is not None:
            self.connector.set_config(None, approval_policy=r.approval_policy,
                                      sandbox_mode=r.sandbox_mode, model=r.model)
        self.outlet.answer(req, m.Ack(session_id=self.session_id))

    @answers(m.EndSession)
    def _end(self, req: ClientRequest) -> m.Ack:
        if self.connector is not None:
            self.connector.stop()
            self.connector = None
            self._in_flight = 0
        self.core.end("user_requested")
        return m.Ack(session_id=self.session_id)

    @answers(m.ResumeSession)
    def _resume(self, req: ClientRequest) -> m.SessionSnapshot:
        if self.connector_factory is None:
            raise ProtocolError(ErrorCode.INVALID_STATE, "passive sessions cannot be resumed")
        if self.state.status == "ended":
            self.core.handle(be.BackendRecovered("resumed by user"))
        if self.connector is None:
            self._start_connector(resume=self.state.thread_id is not None)
        return self._snapshot()
