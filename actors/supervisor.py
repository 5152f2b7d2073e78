"""SupervisorActor: spawns, routes to, restarts and stops the session actors.

It owns the map session id -> actor (no one else holds it) and is the only
place requests are routed to sessions. A session actor that crashes is
restarted from its persisted state under a restart policy (backoff, and a
limit of ``restart_max`` crashes per ``restart_window_s``); other sessions keep
running. On start it restores every session from the database.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Callable

import pykka
import zmq

from actors.messages import (
    AttachWatcher,
    ClientRequest,
    CodexReportReady,
    ModelsReady,
    ReplyMessages,
    RolloutBatch,
    RolloutIdle,
    RouteAnswer,
    RouteRequest,
    SessionCrashed,
    ThreadOwned,
)
from actors.session import SessionActor
from orbitdock.session.approvals import approval_session
from orbitdock.config import Config
from orbitdock.connectors.base import Connector
from orbitdock.connectors.scripted import ScriptedConnector
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode
from orbitdock.protocol.models import PROVIDERS, SessionState
from orbitdock.session.restart_policy import RestartPolicy
from orbitdock.session.display import display_name_of
from orbitdock.store.queries import LAST_APPROVAL
from orbitdock.store.rows import state_from_row
from orbitdock.transport import Outlet

logger = logging.getLogger(__name__)

ConnectorFactory = Callable[[SessionState], Connector]


class SupervisorActor(pykka.ThreadingActor):
    def __init__(self, config: Config, *, ctx: zmq.Context, inproc_endpoint: str, epoch: str,
                 persistence: pykka.ActorRef, codex_factory: Callable[..., Connector] | None = None,
                 models_provider: Callable[..., Any] | None = None,
                 codex_status_provider: Callable[..., Any] | None = None):
        super().__init__()
        self.cfg = config
        self.ctx = ctx
        self.inproc_endpoint = inproc_endpoint
        self.epoch = epoch
        self.persistence = persistence
        self.codex_factory = codex_factory
        self.models_provider = models_provider
        self.codex_status_provider = codex_status_provider
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
        self.outlet: Outlet | None = None
        self.watcher: pykka.ActorRef | None = None

    # ------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        self.outlet = Outlet(self.ctx, self.inproc_endpoint, self.cfg.gateway.inbound_hwm)
        timeout = self.cfg.persistence.ask_timeout_s
        rows = self.persistence.proxy().load_sessions(self.cfg.sessions.restore_limit).get(timeout=timeout)
        for row in rows:
            state = self._load_state(row)
            if state.thread_id and state.integration_mode == "direct":
                self.owned_threads[state.thread_id] = state.id
            self._spawn(state, restored=True, last_approval=row[LAST_APPROVAL])
        logger.info("restored %d sessions", len(rows))

    def on_stop(self) -> None:
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
        if state.integration_mode == "passive":
            return None
        if state.provider == "scripted":
            wait = self.cfg.sessions.scripted_wait_timeout_s
            return lambda st: ScriptedConnector(script=script, cwd=st.project_path or "/",
                                                model=st.model, wait_timeout_s=wait)
        if state.provider == "codex" and self.codex_factory is not None:
            return lambda st: self.codex_factory(st)
        return None

    def _spawn(self, state: SessionState, *, restored: bool, script: list[dict] | None = None,
               pending_request: ClientRequest | None = None,
               disabled_reason: str | None = None, last_approval: int = 0) -> pykka.ActorRef:
        ref = SessionActor.start(
            self.cfg, state, ctx=self.ctx, inproc_endpoint=self.inproc_endpoint,
            persistence=self.persistence, supervisor=self.actor_ref,
            connector_factory=self._connector_factory(state, script), epoch=self.epoch,
            restored=restored, pending_request=pending_request,
            disabled_reason=disabled_reason, last_approval=last_approval)
        self.sessions[state.id] = ref
        return ref

    # ------------------------------------------------------------ inbox
    def on_receive(self, message: Any) -> Any:
        try:
            return self._receive(message)
        except Exception:
            # The supervisor must outlive any one bad message.
            logger.exception("supervisor: failed handling %s", type(message).__name__)
            if isinstance(message, ClientRequest):
                self._error(message, ErrorCode.INTERNAL, "internal error in the supervisor")
            return None

    def _receive(self, message: Any) -> Any:
        if isinstance(message, ClientRequest):
            self._route(message)
        elif isinstance(message, RolloutBatch):
            self._rollout(message)
        elif isinstance(message, RolloutIdle):
            ref = self.sessions.get(message.session_id)
            if ref is not None and ref.is_alive():
                ref.tell(message)
        elif isinstance(message, SessionCrashed):
            self._restart(message)
        elif isinstance(message, RouteRequest):
            self._answer_route(message)
        elif isinstance(message, tuple) and message and message[0] == "restart_now":
            self._restart_now(message[1])
        elif isinstance(message, ModelsReady):
            if message.models is None:
                self._error(message.request, ErrorCode.BACKEND_ERROR,
                            f"model/list failed: {message.error}")
            else:
                self._reply(message.request, m.ModelsList(models=message.models))
        elif isinstance(message, CodexReportReady):
            self._reply(message.request, m.CodexStatus(report=message.report))
        elif isinstance(message, AttachWatcher):
            self.watcher = message.watcher
        elif isinstance(message, ThreadOwned):
            self.owned_threads[message.thread_id] = message.session_id
        elif message == "count":
            return len(self.sessions)
        return None

    def _reply(self, req: ClientRequest, reply: m.Reply) -> None:
        reply.id = req.request.id
        self.outlet.reply(req.identity, reply)

    def _error(self, req: ClientRequest, code: ErrorCode, text: str,
               session_id: str | None = None) -> None:
        self._reply(req, m.Error(code=str(code), message=text, session_id=session_id))

    def _route(self, req: ClientRequest) -> None:
        r = req.request
        if isinstance(r, m.CreateSession):
            self._create(req, r)
            return
        if isinstance(r, m.ListModels):
            self._list_models(req, r)
            return
        if isinstance(r, m.GetCodexStatus):
            self._codex_status(req)
            return
        if r.scope == "watcher":
            if self.watcher is None or not self.watcher.is_alive():
                self._error(req, ErrorCode.UNAVAILABLE,
                            "the rollout watcher is not running (disabled, or --no-watcher)")
            else:
                self.watcher.tell(req)
            return
        if isinstance(r, m.GetMessages):
            session_id = r.session_id
        else:
            session_id = getattr(r, "session_id", None)
            if session_id is None and hasattr(r, "approval_id"):
                session_id = approval_session(r.approval_id)
        if session_id in self.failed:
            self._refuse(session_id, req)
            return
        ref = self.sessions.get(session_id or "")
        if ref is None and session_id not in self.restarting:
            what = f"approval {r.approval_id}" if hasattr(r, "approval_id") else "session"
            self._error(req, ErrorCode.NOT_FOUND, f"no such {what}: {session_id}", session_id)
            return
        if isinstance(r, m.GetMessages):
            self.persistence.tell(ReplyMessages(req))
            return
        self._tell_or_hold(session_id, ref, req)

    def _create(self, req: ClientRequest, r: m.CreateSession) -> None:
        if r.provider not in PROVIDERS:
            self._error(req, ErrorCode.INVALID_FIELD,
                        f"unknown provider {r.provider!r}; expected one of {', '.join(PROVIDERS)}")
            return
        if r.provider == "codex" and self.codex_factory is None:
            self._error(req, ErrorCode.UNAVAILABLE, "codex is not available in this daemon")
            return
        if r.provider == "claude":
            self._error(req, ErrorCode.UNAVAILABLE,
                        "claude sessions cannot be created by orbitdock yet")
            return
        now = time.time()
        state = SessionState(
            id=f"od-{uuid.uuid4()}", provider=r.provider, project_path=r.cwd,
            project_name=r.cwd.rstrip("/").rsplit("/", 1)[-1] or r.cwd, model=r.model,
            approval_policy=r.approval_policy, sandbox_mode=r.sandbox_mode, custom_name=r.name,
            started_at=now, last_activity_at=now, message_limit=self.cfg.sessions.memory_messages)
        state.display_name = display_name_of(state)
        self._spawn(state, restored=False, script=r.script, pending_request=req)

    def _list_models(self, req: ClientRequest, r: m.ListModels) -> None:
        if self.models_provider is None:
            self._error(req, ErrorCode.UNAVAILABLE, "no model catalog: codex is not available")
            return
        actor = self.actor_ref
        # The callback runs on a codex reader thread: it only tells this actor.
        self.models_provider(lambda models, error: actor.tell(ModelsReady(req, models, error)))

    def _codex_status(self, req: ClientRequest) -> None:
        if self.codex_status_provider is None:
            self._error(req, ErrorCode.UNAVAILABLE, "codex is not available in this daemon")
            return
        actor = self.actor_ref
        # The callback runs on the pool's thread: it only tells this actor.
        self.codex_status_provider(lambda report: actor.tell(CodexReportReady(req, report)))

    def _deliver(self, session_id: str, message: Any) -> None:
        """Send to a session, or hold it while the session is being restarted."""
        if session_id in self.failed:
            self._refuse(session_id, message)
            return
        ref = self.sessions.get(session_id)
        if ref is None and session_id not in self.restarting:
            if isinstance(message, ClientRequest):
                self._error(message, ErrorCode.NOT_FOUND, f"no such session: {session_id}",
                            session_id)
            return
        self._tell_or_hold(session_id, ref, message)

    def _tell_or_hold(self, session_id: str, ref: pykka.ActorRef | None, message: Any) -> None:
        # A dead ref still in the map crashed and its SessionCrashed is on the way:
        # what comes for it meanwhile waits for the successor, behind what it had queued.
        if session_id not in self.restarting:
            try:
                ref.tell(message)
                return
            except pykka.ActorDeadError:
                pass
        self.restarting.setdefault(session_id, []).append(message)

    def _rollout(self, batch: RolloutBatch) -> None:
        if batch.session_id in self.failed:
            self._refuse(batch.session_id, batch)
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
                id=batch.session_id, provider="codex", integration_mode="passive",
                started_at=meta.started_at or now, last_activity_at=now,
                transcript_path=batch.offset.path, thread_id=meta.thread_id,
                message_limit=self.cfg.sessions.memory_messages)
            state.display_name = display_name_of(state)
            ref = self._spawn(state, restored=False)
        self._tell_or_hold(batch.session_id, ref, batch)

    def _answer_route(self, request: RouteRequest) -> None:
        """Tell the watcher a passive session's actor, after every batch it sent before."""
        sid = request.session_id
        if sid in self.owned_threads or sid in self.failed:
            request.reply_to.tell(RouteAnswer(sid, None, passive=False))
            return
        ref = self.sessions.get(sid)
        if sid in self.restarting or (ref is not None and not ref.is_alive()):
            self.route_waiters.setdefault(sid, []).append(request.reply_to)
            return
        request.reply_to.tell(RouteAnswer(sid, ref))

    # ------------------------------------------------------------ restarts
    def _restart(self, crash: SessionCrashed) -> None:
        sid = crash.session_id
        policy = self.policies.setdefault(sid, RestartPolicy(
            self.cfg.sessions.restart_max, self.cfg.sessions.restart_window_s,
            self.cfg.sessions.restart_backoff_s))
        self.sessions.pop(sid, None)
        # What the dead actor had queued is older than anything held since: it goes first.
        self.restarting.setdefault(sid, [])[:0] = crash.undelivered
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
        threading.Timer(delay, self.actor_ref.tell, args=(("restart_now", sid),)).start()

    def _abandon(self, sid: str, error: str) -> None:
        logger.error("session actor cannot start (%s); refusing its messages until the "
                     "daemon restarts", error, extra={"session_id": sid})
        self.failed[sid] = error
        for message in self.restarting.pop(sid, []):
            self._refuse(sid, message)
        for watcher in self.route_waiters.pop(sid, []):
            watcher.tell(RouteAnswer(sid, None, passive=False))

    def _refuse(self, sid: str, message: Any) -> None:
        if isinstance(message, ClientRequest):
            self._error(message, ErrorCode.INTERNAL,
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
        held = self.restarting.pop(sid, [])
        state = self._load_state(row)
        ref = self._spawn(state, restored=True, disabled_reason=disabled_reason,
                          last_approval=row[LAST_APPROVAL])
        self.outlet.publish(sid, m.SessionReset(session_id=sid, rev=state.revision,
                                                reason="session actor restarted"))
        for message in held:
            self._deliver(sid, message)
        for watcher in self.route_waiters.pop(sid, []):
            watcher.tell(RouteAnswer(sid, ref))
