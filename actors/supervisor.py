"""SupervisorActor: spawns, routes to, restarts and stops the session actors.

It owns the map session id -> actor (no one else holds it) and is where every
request the gateway does not answer itself is routed, by the scope the request
declares: its own (``create_session``), a session's actor, a provider by name,
the watcher or the persistence actor. It knows no provider by name: providers
come from the registry (``actors/providers.py``). A session actor that crashes is
restarted from its persisted state under a restart policy (backoff, and a
limit of ``restart_max`` crashes per ``restart_window_s``); other sessions keep
running.

Cost follows activity (the virtual actor pattern): at start only the sessions the
last daemon left unsettled (a turn or an approval of ours cut by its death) get an
actor, which closes them as interrupted; every other session is *dormant*, known by
id, its state in the database and its row in the gateway's list. An actor with nothing in flight tells the supervisor once (``Idle``, with
when it was last busy); a sweep every ``sessions.passivate_check_s`` finds the ones
idle for ``passivate_after_s`` (ended: ``passivate_ended_after_s``), holds the
session's messages from then on and says ``PassivateNow``; the actor releases its
thread and backend (``SessionPassivated``) or declines (it was busy since: scheduled
again). Idle actors are never polled; the sweep only reads the supervisor's map.
Any message for a dormant session (a request, a watcher batch or route question, a
late backend event) re-activates it from the database, as at start, and is then
delivered in order with what was held; its revisions continue from the persisted
one, so subscribers see no gap and no reset.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from typing import Any, Callable

import msgspec
import pykka
import zmq

from actors.messages import (
    AttachWatcher,
    Checked,
    SessionDiscarded,
    ForSession,
    Idle,
    OwnerOf,
    PassivateDeclined,
    PassivateNow,
    ProviderAnswer,
    SessionPassivated,
    Tick,
    RestartNow,
    RolloutBatch,
    RolloutIdle,
    RouteAnswer,
    RouteRequest,
    SessionCrashed,
    ThreadOwned,
)
from actors.session import SessionActor
from orbitdock.config import Config
from orbitdock.connectors.base import Connector, Provider
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import SessionState
from orbitdock.protocol.routing import ClientRequest, RequestTable, Scope, answers, target_session
from orbitdock.session.display import display_name_of
from orbitdock.session.life import LIFE_MOVES, SessionLife
from orbitdock.session.restart_policy import RestartPolicy
from orbitdock.store.queries import LAST_APPROVAL
from orbitdock.store.rows import state_from_row
from orbitdock.timers import ActorTimer
from orbitdock.transport import Outlet

logger = logging.getLogger(__name__)

ConnectorFactory = Callable[[SessionState], Connector]


class SupervisorActor(pykka.ThreadingActor):
    def __init__(self, config: Config, *, ctx: zmq.Context, inproc_endpoint: str, epoch: str,
                 persistence: pykka.ActorRef, providers: dict[str, Provider] | None = None,
                 registered: tuple[str, ...] = ()):
        super().__init__()
        self.cfg = config
        self.ctx = ctx
        self.inproc_endpoint = inproc_endpoint
        self.epoch = epoch
        self.persistence = persistence
        self.providers = dict(providers or {})
        self.registered = tuple(registered) or tuple(self.providers)  # known, maybe not up
        self.sessions: dict[str, pykka.ActorRef] = {}
        self.owned_threads: dict[str, str] = {}  # codex thread id -> direct session id
        # Sessions between a crash and their restart: messages for them wait here.
        self.restarting: dict[str, list[Any]] = {}
        # Watchers asking for a restarting session's actor: answered once it runs again.
        self.route_waiters: dict[str, list[pykka.ActorRef]] = {}
        # Sessions whose actor could not even start, after every restart: their messages
        # are refused (rollout lines stay uncommitted, read again by the next daemon).
        self.failed: dict[str, str] = {}
        self.policies: dict[str, RestartPolicy] = {}
        # Sessions in the database without an actor (ended, or passivated when idle).
        self.dormant: set[str] = set()
        # Sessions told PassivateNow: their messages are held until the actor answers.
        self.passivating: set[str] = set()
        # Idle live sessions: when to say PassivateNow (time.monotonic()).
        self.passivate_at: dict[str, float] = {}
        # Refs of just-passivated actors, kept one sweep: a tell that passed pykka's alive
        # check as the actor stopped lands in its inbox after the drain; it is picked up
        # here (``_late_messages``) instead of lost.
        self.retired: dict[str, tuple[pykka.ActorRef, float]] = {}
        self.activations = 0  # dormant sessions brought back (status, tests, benchmark)
        self.outlet: Outlet | None = None
        self.watcher: pykka.ActorRef | None = None
        self.timer: ActorTimer | None = None  # restart backoffs

    # ------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        self.requests = RequestTable(self, Scope.SUPERVISOR)
        self.timer = ActorTimer(self.actor_ref, "supervisor-timer")
        self.routes = {Scope.SUPERVISOR: self._answer, Scope.SESSION: self._to_session,
                       Scope.PROVIDER: self._to_provider, Scope.WATCHER: self._to_watcher,
                       Scope.PERSISTENCE: self._to_persistence}
        unrouted = set(Scope) - {Scope.GATEWAY} - set(self.routes)
        if unrouted:
            raise RuntimeError(f"supervisor routes no request of scope {sorted(unrouted)}")
        self.outlet = Outlet(self.inproc_endpoint, self.cfg.gateway.inbound_hwm)
        timeout = self.cfg.persistence.ask_timeout_s
        proxy = self.persistence.proxy()
        keep = self.cfg.sessions.memory_messages
        started = time.perf_counter()
        rows = proxy.load_for_restore(self.cfg.sessions.restore_limit, keep).get(timeout=timeout)
        read_s = time.perf_counter() - started
        for row, messages, approvals in rows:
            self._spawn(state_from_row(row, messages, approvals, keep), restored=True,
                        last_approval=row[LAST_APPROVAL])
        # Dormant direct sessions still own their codex threads (their rollouts are ours).
        self.owned_threads.update(proxy.load_owned_threads().get(timeout=timeout))
        self.dormant = set(proxy.load_session_ids().get(timeout=timeout)) - set(self.sessions)
        logger.info("restored %d sessions in %.0f ms (reads %.0f ms); %d dormant", len(rows),
                    (time.perf_counter() - started) * 1000, read_s * 1000, len(self.dormant))
        self.timer.after(self.cfg.sessions.passivate_check_s, Tick("passivate"), key="sweep")

    def on_stop(self) -> None:
        if self.timer is not None:
            self.timer.stop()
        timeout = self.cfg.sessions.stop_timeout_s
        futures = [ref.stop(block=False) for ref in self.sessions.values()]
        for future in futures:
            try:
                future.get(timeout=timeout)
            except (pykka.Timeout, pykka.ActorDeadError):
                pass
        if self.outlet is not None:
            self.outlet.close()

    def _load_state(self, row: dict[str, Any]) -> SessionState:
        timeout = self.cfg.persistence.ask_timeout_s
        proxy = self.persistence.proxy()
        sid = row["id"]
        messages = proxy.load_messages(sid, self.cfg.sessions.memory_messages).get(timeout=timeout)
        approvals = proxy.load_pending_approvals(sid).get(timeout=timeout)
        return state_from_row(row, messages, approvals, self.cfg.sessions.memory_messages)

    # ------------------------------------------------------------ spawning
    def _connector_factory(self, state: SessionState,
                           script: list[dict] | None = None) -> ConnectorFactory | None:
        provider = self.providers.get(state.provider)
        if provider is None or (state.integration_mode == "passive"
                                and not provider.passive_connector):
            return None
        return lambda st: provider.connector(st, script=script)

    def _spawn(self, state: SessionState, *, restored: bool, script: list[dict] | None = None,
               pending_request: ClientRequest | None = None, disabled_reason: str | None = None,
               last_approval: int = 0,
               fork_thread_id: str | None = None) -> tuple[pykka.ActorRef, list[Any]]:
        """Start the session's actor and make it LIVE; returns it and the messages that were
        held for it (a restart's)."""
        ref = SessionActor.start(
            self.cfg, state, ctx=self.ctx, inproc_endpoint=self.inproc_endpoint,
            persistence=self.persistence, supervisor=self.actor_ref,
            connector_factory=self._connector_factory(state, script),
            provider=self.providers.get(state.provider), epoch=self.epoch,
            restored=restored, pending_request=pending_request,
            disabled_reason=disabled_reason, last_approval=last_approval,
            fork_thread_id=fork_thread_id)
        return ref, self._move(state.id, SessionLife.LIVE, ref=ref)

    # ------------------------------------------------------------ session life
    def _life(self, sid: str) -> SessionLife | None:
        if sid in self.failed:
            return SessionLife.FAILED
        if sid in self.restarting:
            return SessionLife.RESTARTING
        return SessionLife.LIVE if sid in self.sessions else None

    def _move(self, sid: str, to: SessionLife, *, ref: pykka.ActorRef | None = None,
              error: str = "") -> list[Any]:
        """Move a session to ``to`` (SessionLife); returns its held messages: to deliver
        (-> LIVE), to refuse (-> FAILED), or to hold more in (-> RESTARTING)."""
        was = self._life(sid)
        if to not in LIFE_MOVES[was]:
            logger.error("supervisor: unexpected session move %s -> %s", was, to,
                         extra={"session_id": sid})
        if to is SessionLife.LIVE:
            self.sessions[sid] = ref  # type: ignore[assignment]
            return self.restarting.pop(sid, [])
        self.sessions.pop(sid, None)
        if to is SessionLife.RESTARTING:
            return self.restarting.setdefault(sid, [])
        self.failed[sid] = error
        return self.restarting.pop(sid, [])

    # ------------------------------------------------------------ inbox
    def on_receive(self, message: Any) -> Any:
        try:
            return self._receive(message)
        except Exception:
            # The supervisor must outlive any one bad message.
            logger.exception("supervisor: failed handling %s", type(message).__name__)
            if isinstance(message, ClientRequest):
                self.outlet.refuse(message, ErrorCode.INTERNAL, "internal error in the supervisor")
            return None

    def _receive(self, message: Any) -> Any:
        if isinstance(message, ClientRequest):
            try:
                self.routes[message.request.scope](message)
            except ProtocolError as exc:
                self.outlet.refuse_with(message, exc)
        elif isinstance(message, RolloutBatch):
            self._rollout(message)
        elif isinstance(message, RolloutIdle):
            ref = self.sessions.get(message.session_id)
            if message.session_id in self.dormant:
                self._activate(message.session_id, [message])  # an idle passive one ends
            elif ref is not None and ref.is_alive():
                ref.tell(message)
        elif isinstance(message, SessionCrashed):
            self._restart(message)
        elif isinstance(message, RouteRequest):
            self._answer_route(message)
        elif isinstance(message, RestartNow):
            self._restart_now(message.session_id)
        elif isinstance(message, ProviderAnswer):
            self.outlet.answer(message.request, message.reply)
        elif isinstance(message, Checked):
            self._checked(message.request, message.error, message.then)
        elif isinstance(message, SessionDiscarded):
            ref = self.sessions.pop(message.session_id, None)
            if ref is not None:
                ref.stop(block=False)
        elif isinstance(message, AttachWatcher):
            self.watcher = message.watcher
        elif isinstance(message, ThreadOwned):
            self.owned_threads[message.thread_id] = message.session_id
        elif isinstance(message, OwnerOf):
            return self.owned_threads.get(message.thread_id)
        elif isinstance(message, Idle):
            self._schedule(message.session_id, message.since, message.ended)
        elif isinstance(message, SessionPassivated):
            self._passivated(message)
        elif isinstance(message, PassivateDeclined):
            self._passivation_declined(message)
        elif isinstance(message, ForSession):
            self._deliver(message.session_id, message.message)
        elif isinstance(message, Tick):
            self._sweep()
        elif message == "count":
            return len(self.sessions)
        elif message == "activity":
            return {"live": len(self.sessions), "dormant": len(self.dormant),
                    "activations": self.activations}
        return None

    # ------------------------------------------------------------ routes, by scope
    def _answer(self, req: ClientRequest) -> None:
        reply = self.requests.handler(req.request)(req)
        if reply is not None:
            self.outlet.answer(req, reply)

    def _to_provider(self, req: ClientRequest) -> None:
        name = req.request.provider
        provider = self.providers.get(name)
        if provider is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, f"{name} is not available in this daemon"
                                f" (available: {', '.join(self.providers) or 'none'})")
        actor = self.actor_ref
        # ``done`` may run on any thread (a codex reader, the pool): it only tells this actor.
        provider.answer(req, lambda reply: actor.tell(ProviderAnswer(req, reply)))

    def _to_watcher(self, req: ClientRequest) -> None:
        if self.watcher is None or not self.watcher.is_alive():
            raise ProtocolError(ErrorCode.UNAVAILABLE,
                                "the rollout watcher is not running (disabled, or --no-watcher)")
        self.watcher.tell(req)

    def _to_persistence(self, req: ClientRequest) -> None:
        """History pages come from the database; a session they name must exist (live or
        dormant: a dormant one is not woken to read its history).
        Database-wide requests (backup, check) name no session and go straight on."""
        session_id = target_session(req.request)
        if session_id is None or self._known(req, session_id):
            self.persistence.tell(req)

    def _to_session(self, req: ClientRequest) -> None:
        session_id = target_session(req.request)
        if self._known(req, session_id):
            self._deliver(session_id, req)

    def _known(self, req: ClientRequest, session_id: str | None) -> bool:
        """Whether the session exists; refuses the request when it does not."""
        if session_id in self.failed:
            self._refuse(session_id, req)
            return False
        if session_id in self.sessions or session_id in self.restarting \
                or session_id in self.dormant:
            return True
        approval_id = getattr(req.request, "approval_id", None)
        what = f"approval {approval_id}" if approval_id else "session"
        self.outlet.refuse(req, ErrorCode.NOT_FOUND, f"no such {what}: {session_id}", session_id)
        return False

    @answers(m.CreateSession)
    def _create(self, req: ClientRequest) -> None:
        r: m.CreateSession = req.request
        provider = self.providers.get(r.provider)
        if provider is None and r.provider in self.registered:
            raise ProtocolError(ErrorCode.UNAVAILABLE, f"{r.provider} is not available in this "
                                "daemon (the log says why)")
        if provider is None:
            raise ProtocolError(ErrorCode.INVALID_ARGUMENT,
                                f"provider: unknown {r.provider!r}; expected one of "
                                f"{', '.join(self.registered)}")
        if not provider.creatable:
            raise ProtocolError(ErrorCode.UNAVAILABLE,
                                f"{r.provider} sessions cannot be created by orbitdock yet")
        now = time.time()
        state = SessionState(
            id=f"od-{uuid.uuid4()}", provider=r.provider, project_path=r.cwd,
            project_name=r.cwd.rstrip("/").rsplit("/", 1)[-1] or r.cwd, model=r.model,
            approval_policy=r.approval_policy, sandbox_mode=r.sandbox_mode, custom_name=r.name,
            started_at=now, last_activity_at=now, message_limit=self.cfg.sessions.memory_messages)
        state.display_name = display_name_of(state)
        spawn = dict(state=state, script=r.script)
        actor = self.actor_ref
        # The verdict may come from a provider's thread (a codex reader): it only tells.
        provider.check_create(r, lambda error: actor.tell(Checked(req, error, spawn)))
        return None  # the new session's actor answers with its snapshot

    def _checked(self, req: ClientRequest, error: ProtocolError | None,
                 spawn: dict[str, Any]) -> None:
        """A create's or a fork's values passed (or failed) the provider's check."""
        if error is not None:
            self.outlet.refuse_with(req, error)
            return
        self._spawn(restored=False, pending_request=req, **spawn)

    @answers(m.ForkSession)
    def _fork(self, req: ClientRequest) -> None:
        """A new direct session on a fork of the parent's backend thread, carrying the
        parent's messages (as stored: the parent's actor told every write before)."""
        r: m.ForkSession = req.request
        if r.session_id not in self.sessions:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no such session: {r.session_id}")
        row = self.persistence.proxy().load_session(r.session_id).get(
            timeout=self.cfg.persistence.ask_timeout_s)
        if row is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no such session: {r.session_id}")
        parent = self._load_state(row)
        if not parent.thread_id:
            raise ProtocolError(ErrorCode.INVALID_STATE, "the session has no backend thread yet "
                                "(no turn ran): nothing to fork")
        provider = self.providers.get(parent.provider)
        if provider is None or not provider.creatable:
            raise ProtocolError(ErrorCode.UNAVAILABLE,
                                f"{parent.provider} sessions cannot be forked in this daemon")
        sid, now = f"od-{uuid.uuid4()}", time.time()
        state = SessionState(
            id=sid, provider=parent.provider, project_path=parent.project_path,
            project_name=parent.project_name, git_branch=parent.git_branch,
            model=r.model or parent.model, effort=parent.effort,
            approval_policy=r.approval_policy or parent.approval_policy,
            sandbox_mode=r.sandbox_mode or parent.sandbox_mode, custom_name=r.name,
            first_prompt=parent.first_prompt, last_message=parent.last_message,
            prompt_count=parent.prompt_count, tool_count=parent.tool_count,
            turn_count=parent.turn_count, token_usage=parent.token_usage,
            started_at=now, last_activity_at=now, forked_from_session_id=parent.id,
            messages=[msgspec.structs.replace(msg, id=f"{sid}:m{msg.seq}")
                      for msg in parent.messages],
            total_message_count=parent.total_message_count,
            message_limit=self.cfg.sessions.memory_messages)
        state.display_name = display_name_of(state)
        spawn = dict(state=state, fork_thread_id=parent.thread_id)
        actor = self.actor_ref
        provider.check_config(approval_policy=r.approval_policy, sandbox_mode=r.sandbox_mode,
                              model=r.model,
                              checked=lambda error: actor.tell(Checked(req, error, spawn)))
        return None  # the fork's actor answers once the backend made the thread

    def _deliver(self, session_id: str, message: Any) -> None:
        """Send to a session, or hold it while the session is being restarted."""
        if session_id in self.failed:
            self._refuse(session_id, message)
            return
        if session_id in self.dormant:
            self._activate(session_id, [message])
            return
        ref = self.sessions.get(session_id)
        if ref is None and session_id not in self.restarting:
            if isinstance(message, ClientRequest):
                self.outlet.refuse(message, ErrorCode.NOT_FOUND,
                                   f"no such session: {session_id}", session_id)
            return
        self._tell_or_hold(session_id, ref, message)

    def _tell_or_hold(self, session_id: str, ref: pykka.ActorRef | None, message: Any) -> None:
        # A dead ref still in the map crashed (or passivated) and its SessionCrashed (or
        # SessionPassivated) is on the way: what comes for it meanwhile waits for the
        # successor, behind what it had queued.
        if session_id not in self.restarting and session_id not in self.passivating:
            try:
                ref.tell(message)
                return
            except pykka.ActorDeadError:
                pass
        self._move(session_id, SessionLife.RESTARTING).append(message)

    def _rollout(self, batch: RolloutBatch) -> None:
        if batch.session_id in self.failed:
            self._refuse(batch.session_id, batch)
            return
        if batch.session_id in self.dormant:
            self._activate(batch.session_id, [batch])
            return
        ref = self.sessions.get(batch.session_id)
        if ref is None and batch.session_id not in self.restarting:
            if batch.session_id in self.owned_threads or batch.meta is None:
                # Our own direct session's rollout (or lines with no session_meta yet):
                # keep the file position, create no shadow session.
                self.persistence.tell(batch.offset)
                return
            meta = batch.meta
            now = time.time()
            state = SessionState(
                id=batch.session_id, provider=batch.provider, integration_mode="passive",
                started_at=meta.started_at or now, last_activity_at=now,
                transcript_path=batch.offset.path, thread_id=meta.thread_id,
                message_limit=self.cfg.sessions.memory_messages)
            state.display_name = display_name_of(state)
            ref, _ = self._spawn(state, restored=False)
        self._tell_or_hold(batch.session_id, ref, batch)

    def _answer_route(self, request: RouteRequest) -> None:
        """Tell the watcher a passive session's actor, after every batch it sent before."""
        sid = request.session_id
        if sid in self.owned_threads or sid in self.failed:
            request.reply_to.tell(RouteAnswer(sid, None, passive=False))
            return
        if sid in self.dormant:  # the watcher has lines for it: wake it
            request.reply_to.tell(RouteAnswer(sid, self._activate(sid, [])))
            return
        ref = self.sessions.get(sid)
        if sid in self.restarting or sid in self.passivating or (
                ref is not None and not ref.is_alive()):
            self.route_waiters.setdefault(sid, []).append(request.reply_to)
            return
        request.reply_to.tell(RouteAnswer(sid, ref))

    # ------------------------------------------------------------ restarts
    def _restart(self, crash: SessionCrashed) -> None:
        sid = crash.session_id
        policy = self.policies.setdefault(sid, RestartPolicy(
            self.cfg.sessions.restart_max, self.cfg.sessions.restart_window_s,
            self.cfg.sessions.restart_backoff_s))
        self.passivating.discard(sid)
        self.passivate_at.pop(sid, None)
        # What the dead actor had queued is older than anything held since: it goes first.
        held = self._move(sid, SessionLife.RESTARTING)
        held[:0] = crash.undelivered
        if crash.at_start:
            # Requests do not wait out the restarts of an actor that cannot start: they
            # are answered now, with the cause; other messages wait for the successor.
            for message in [msg for msg in held if isinstance(msg, ClientRequest)]:
                self.outlet.refuse(message, ErrorCode.SESSION_START_FAILED,
                                   f"the session's actor failed to start: {crash.error}", sid)
            held[:] = [msg for msg in held if not isinstance(msg, ClientRequest)]
        delay = policy.next_delay(time.monotonic())
        if delay is None and crash.at_start:
            self._abandon(sid, crash.error)  # even a disabled actor could not start
            return
        if delay is None:
            logger.error("session crashed more than %d times in %.0fs; giving up on it",
                         policy.max_restarts, policy.window_s, extra={"session_id": sid})
            # Keep it visible (history, snapshot) but ended, with no backend attached.
            self._restart_now(sid, disabled_reason=f"failed: crashed repeatedly ({crash.error})")
            return
        logger.warning("restarting crashed session in %.2fs", delay, extra={"session_id": sid})
        self.timer.after(delay, RestartNow(sid))

    def _abandon(self, sid: str, error: str) -> None:
        logger.error("session actor cannot start (%s); refusing its messages until the "
                     "daemon restarts", error, extra={"session_id": sid})
        for message in self._move(sid, SessionLife.FAILED, error=error):
            self._refuse(sid, message)
        for watcher in self.route_waiters.pop(sid, []):
            watcher.tell(RouteAnswer(sid, None, passive=False))

    def _refuse(self, sid: str, message: Any) -> None:
        if isinstance(message, ClientRequest):
            self.outlet.refuse(message, ErrorCode.SESSION_START_FAILED,
                               f"session cannot start: {self.failed[sid]}", sid)
        else:
            logger.debug("dropping %s for a session that cannot start", type(message).__name__,
                         extra={"session_id": sid})

    def _restart_now(self, sid: str, disabled_reason: str | None = None) -> None:
        if sid in self.sessions:
            return
        timeout = self.cfg.persistence.ask_timeout_s
        row = self.persistence.proxy().load_session(sid).get(timeout=timeout)
        if row is None:  # it crashed before its first save: nothing to restart from
            self._abandon(sid, "its actor failed before saving any state")
            return
        state = self._load_state(row)
        ref, held = self._spawn(state, restored=True, disabled_reason=disabled_reason,
                                last_approval=row[LAST_APPROVAL])
        self.outlet.publish(sid, m.SessionReset(session_id=sid, rev=state.revision,
                                                reason="session actor restarted"))
        for message in held:
            self._deliver(sid, message)
        for watcher in self.route_waiters.pop(sid, []):
            watcher.tell(RouteAnswer(sid, ref))

    # ------------------------------------------------------------ passivation
    def _schedule(self, sid: str, since: float, ended: bool) -> None:
        cfg = self.cfg.sessions
        if sid in self.sessions and cfg.passivate_after_s > 0:
            self.passivate_at[sid] = since + (cfg.passivate_ended_after_s if ended
                                              else cfg.passivate_after_s)

    def _sweep(self) -> None:
        """Passivate the sessions whose idle time ran out (no actor is woken to ask)."""
        self.timer.after(self.cfg.sessions.passivate_check_s, Tick("passivate"), key="sweep")
        now = time.monotonic()
        for sid in [sid for sid, (_, at) in self.retired.items()
                    if now - at >= self.cfg.sessions.passivate_check_s]:
            late = self._late_messages(sid)
            if late and sid in self.dormant:
                self._activate(sid, late)
            else:
                for message in late:
                    self._deliver(sid, message)
        due = [sid for sid, at in self.passivate_at.items() if at <= now]
        for sid in due:
            del self.passivate_at[sid]
            ref = self.sessions.get(sid)
            if ref is None or sid in self.passivating or sid in self.restarting:
                continue
            # From here the session's messages are held: none can reach the actor after
            # it checked it is still idle, so none is lost with its inbox.
            self.passivating.add(sid)
            try:
                ref.tell(PassivateNow())
            except pykka.ActorDeadError:
                pass  # it crashed meanwhile: SessionCrashed brings the held messages along

    def _passivated(self, done: SessionPassivated) -> None:
        sid = done.session_id
        self.passivating.discard(sid)
        ref = self.sessions.pop(sid, None)
        if ref is not None:
            self.retired[sid] = (ref, time.monotonic())
        held = done.undelivered + self.restarting.pop(sid, [])
        if held or self.route_waiters.get(sid):
            self._activate(sid, held)  # something came for it meanwhile
        else:
            self.dormant.add(sid)

    def _passivation_declined(self, declined: PassivateDeclined) -> None:
        sid = declined.session_id
        self.passivating.discard(sid)
        if declined.since is not None:
            self._schedule(sid, declined.since, declined.ended)
        ref = self.sessions.get(sid)
        for message in self.restarting.pop(sid, []):
            self._tell_or_hold(sid, ref, message)
        for watcher in self.route_waiters.pop(sid, []):
            watcher.tell(RouteAnswer(sid, ref))

    def _activate(self, sid: str, held: list[Any]) -> pykka.ActorRef | None:
        """Bring a dormant session back from the database, as at start (no reset: its
        revisions go on from the persisted one), then hand it ``held`` in order."""
        self.dormant.discard(sid)
        held = self._late_messages(sid) + held
        timeout = self.cfg.persistence.ask_timeout_s
        row = self.persistence.proxy().load_session(sid).get(timeout=timeout)
        if row is None:  # deleted behind our back: nothing to wake
            for message in held:
                if isinstance(message, ClientRequest):
                    self.outlet.refuse(message, ErrorCode.NOT_FOUND,
                                       f"no such session: {sid}", sid)
            return None
        ref, earlier = self._spawn(self._load_state(row), restored=True,
                                   last_approval=row[LAST_APPROVAL])
        held = earlier + held  # (held while it passivated: older than what woke it)
        self.activations += 1
        for message in held:
            self._tell_or_hold(sid, ref, message)
        for watcher in self.route_waiters.pop(sid, []):
            watcher.tell(RouteAnswer(sid, ref))
        return ref

    def _late_messages(self, sid: str) -> list[Any]:
        """What reached a passivated actor's inbox after it handed its inbox over."""
        ref, _ = self.retired.pop(sid, (None, 0.0))
        late = []
        while ref is not None:
            try:
                message = ref.actor_inbox.get_nowait().message
            except queue.Empty:
                break
            if not isinstance(message, PassivateNow):
                late.append(message)
        if late:
            logger.info("%d message(s) raced the passivation; delivered", len(late),
                        extra={"session_id": sid})
        return late
