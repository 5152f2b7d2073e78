"""The bridge's one link to the daemon: the ZeroMQ client and the mirrors, on the event loop.

The link lives in the server's asyncio thread, which therefore owns every socket of the
bridge: the ZeroMQ sockets' file descriptors are watched by the loop (``add_reader``;
they are edge-triggered, so each wake-up drains until no socket has input left), and the
server calls the link directly (a connection opened or closed, a parsed client message,
an HTTP request). No thread hop and no lock stands between a daemon event and the
WebSocket write. The link answers with batches of ``(connection ids, JSON frame)``
through the ``deliver`` callback, each frame encoded once whatever the number of
receivers.

One ``Subscription`` (snapshot + revisioned deltas, resync on a gap, a reset or a new
daemon epoch) keeps a mirror of each session some connection follows, and of the list;
one ``Client`` carries the connections' requests. A connection that subscribes gets the
mirror's state as ``session_snapshot`` (or nothing, when its ``since_revision`` is the
mirror's revision of the same daemon life), then every later event in revision order, so
a client that resumes after the bridge or its own connection went away has no gap and no
duplicate, whatever happened meanwhile: the snapshot is the daemon's, not a bounded
replay buffer's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec
import zmq

from orbitdock.client import Client, DaemonNotRunning, Subscription, find_daemon
from orbitdock.config import Config
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.ws import inbound, outbound

logger = logging.getLogger("orbitdock.ws")

Deliver = Callable[[list[tuple[tuple[int, ...], bytes]]], None]

# daemon error code -> upstream's, per request (default: the provider's error)
_ERRORS = {"not_found": "not_found", "invalid_field": "invalid_argument",
           "invalid_argument": "invalid_argument", "unsupported": "unsupported",
           "timeout": "timeout", "wrong_verb": "invalid_argument", "too_large": "too_large",
           "bad_frame": "parse_error", "unknown_type": "parse_error", "internal": "internal"}
_FAILED = {inbound.InterruptSession: "interrupt_failed", inbound.ResumeSession: "resume_failed"}


def upstream_error(code: str, msg: inbound.Upstream | None, provider: str = "codex") -> str:
    if code in _ERRORS:
        if code == "wrong_verb" and isinstance(msg, inbound.AnswerQuestion):
            return "invalid_answer_payload"
        return _ERRORS[code]
    if code == "invalid_state" and isinstance(msg, inbound.ResumeSession):
        return "already_active"
    failed = _FAILED.get(type(msg))
    if failed:
        return failed
    return "claude_error" if provider == "claude" else "codex_error"


@dataclass
class _Conn:
    sessions: set[str] = field(default_factory=set)
    wants_list: bool = False


@dataclass
class _Pending:
    conn_id: int | None
    msg: inbound.Upstream | None
    sent_at: float
    future: asyncio.Future | None = None  # an HTTP request's (status, body)
    shape: Callable[[m.Wire], tuple[int, Any]] | None = None  # its reply -> (status, body)


_HTTP_STATUS = {"not_found": 404, "invalid_field": 400, "invalid_argument": 400}


class Link:
    """Owns the bridge's ZeroMQ sockets; driven by the event loop. See the module docstring."""

    def __init__(self, cfg: Config, deliver: Deliver, version: str):
        self.cfg = cfg
        self.deliver = deliver
        self.version = version
        self.limit = cfg.ws.max_field_chars
        self._encode = msgspec.json.Encoder().encode
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ctx: zmq.Context | None = None
        self.sub: Subscription | None = None
        self.client: Client | None = None
        self._fds: list[int] = []
        self._tick: asyncio.TimerHandle | None = None
        self._next_connect = 0.0
        self._conns: dict[int, _Conn] = {}
        self._watchers: dict[str, set[int]] = {}  # session -> conns receiving its events
        self._awaiting: dict[str, dict[int, inbound.SubscribeSession]] = {}
        self._list_conns: set[int] = set()
        self._list_waiting: set[int] = set()
        self._list_status: dict[str, str] = {}
        self._inflight: dict[str, _Pending] = {}
        self._out: list[tuple[tuple[int, ...], bytes]] = []

    # ------------------------------------------------------------ life
    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.ctx = zmq.Context()
        self._on_tick()

    def stop(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
        for fd in self._fds:
            self.loop.remove_reader(fd)
        if self.sub is not None:
            self.sub.close()
        if self.client is not None:
            self.client.close()
        if self.ctx is not None:
            self.ctx.term()

    def _on_tick(self) -> None:
        """Connect (and retry), expire requests, let the Subscription check its own
        timeouts; every ``ws.link_tick_ms``."""
        if self.sub is None and time.monotonic() >= self._next_connect:
            self._connect()
        self._pump()
        self._tick = self.loop.call_later(self.cfg.ws.link_tick_ms / 1000, self._on_tick)

    def _pump(self) -> None:
        """Take everything the daemon sent: the zmq descriptors are edge-triggered, so the
        loop only wakes again for input that arrives after this drained the sockets."""
        try:
            if self.sub is not None:
                socks = (self.sub.sub, self.sub.requests.sock, self.client.sock)
                while True:
                    self._on_applied(self.sub.poll(0))
                    self._on_replies()
                    if not any(sock.getsockopt(zmq.EVENTS) & zmq.POLLIN for sock in socks):
                        break
            self._expire()
        except Exception:
            logger.exception("daemon link failed on input")
        self._flush()

    def _connect(self) -> bool:
        try:
            endpoints = find_daemon(self.cfg)
        except DaemonNotRunning as exc:
            self._next_connect = time.monotonic() + self.cfg.ws.daemon_retry_s
            logger.debug("daemon not running yet: %s", exc)
            return False
        self.sub = Subscription(endpoints, config=self.cfg, ctx=self.ctx)
        self.client = Client(endpoints, timeout=self.cfg.client.request_timeout_s, ctx=self.ctx)
        for sock in (self.sub.sub, self.sub.requests.sock, self.client.sock):
            fd = sock.getsockopt(zmq.FD)
            self.loop.add_reader(fd, self._pump)
            self._fds.append(fd)
        if self._list_conns or self._list_waiting:
            self.sub.watch_list()
        for sid in set(self._watchers) | set(self._awaiting):
            self.sub.watch_session(sid)
        logger.info("connected to orbitdockd at %s", endpoints.request)
        return True

    def _emit(self, conns: set[int] | tuple[int, ...] | list[int], frame: dict[str, Any]) -> None:
        if conns:
            self._out.append((tuple(conns), self._encode(frame)))

    def _flush(self) -> None:
        if self._out:
            batch, self._out = self._out, []
            self.deliver(batch)

    # ------------------------------------------------------------ the server's calls
    def open(self, conn_id: int) -> None:
        self._conns[conn_id] = _Conn()
        epoch = self.sub.epoch if self.sub is not None else None
        self._emit((conn_id,), outbound.server_info(epoch, self.version))
        self._flush()

    def close(self, conn_id: int) -> None:
        self._close(conn_id)

    def message(self, conn_id: int, msg: inbound.Upstream) -> None:
        self._on_message(conn_id, msg)
        self._after_send()

    def health(self) -> asyncio.Future:
        """(status, body) of ``/health``."""
        return self._http(m.GetStatus(), self._status_body)

    def messages(self, session_id: str, before: int | None, limit: int) -> asyncio.Future:
        """(status, body) of a page of the daemon's stored messages (``get_messages``)."""
        return self._http(m.GetMessages(session_id=session_id, before_seq=before, limit=limit),
                          self._page_body)

    def _after_send(self) -> None:
        # Sending on a zmq socket can consume its pending input notification: look again.
        self._flush()
        self.loop.call_soon(self._pump)

    # ------------------------------------------------------------ subscriptions
    def _close(self, conn_id: int) -> None:
        conn = self._conns.pop(conn_id, None)
        if conn is None:
            return
        self._list_conns.discard(conn_id)
        self._list_waiting.discard(conn_id)
        for sid in conn.sessions:
            self._drop_watch(sid, conn_id)
        for rid, pending in list(self._inflight.items()):
            if pending.conn_id == conn_id:
                pending.conn_id = None  # the reply is dropped when it comes

    def _drop_watch(self, sid: str, conn_id: int) -> None:
        self._watchers.get(sid, set()).discard(conn_id)
        self._awaiting.get(sid, {}).pop(conn_id, None)
        if not self._watchers.get(sid) and not self._awaiting.get(sid):
            self._watchers.pop(sid, None)
            self._awaiting.pop(sid, None)
            if self.sub is not None:
                self.sub.unwatch_session(sid)

    def _refuse(self, conn_id: int, code: str, text: str, sid: str | None) -> None:
        self._emit((conn_id,), outbound.error(code, text, sid))

    def _on_message(self, conn_id: int, msg: inbound.Upstream) -> None:
        conn = self._conns.get(conn_id)
        if conn is None:
            return
        if isinstance(msg, inbound.SubscribeList):
            self._subscribe_list(conn_id, conn)
        elif isinstance(msg, inbound.SubscribeSession):
            self._subscribe_session(conn_id, conn, msg)
        elif isinstance(msg, inbound.UnsubscribeSession):
            conn.sessions.discard(msg.session_id)
            self._drop_watch(msg.session_id, conn_id)
        else:
            self._request(conn_id, msg)

    def _subscribe_list(self, conn_id: int, conn: _Conn) -> None:
        conn.wants_list = True
        if self.sub is not None and self.sub.list_synced:
            self._list_conns.add(conn_id)
            self._emit((conn_id,), outbound.sessions_list(self.sub.summaries.values()))
            return
        self._list_waiting.add(conn_id)
        if self.sub is not None and not self.sub.list_wanted:
            self.sub.watch_list()

    def _subscribe_session(self, conn_id: int, conn: _Conn,
                           msg: inbound.SubscribeSession) -> None:
        sid = msg.session_id
        conn.sessions.add(sid)
        self._watchers.get(sid, set()).discard(conn_id)
        mirror = self.sub.sessions.get(sid) if self.sub is not None else None
        if mirror is not None and mirror.synced:
            self._start_stream(conn_id, msg, mirror.state, mirror.epoch)
            return
        self._awaiting.setdefault(sid, {})[conn_id] = msg
        if self.sub is not None:
            self.sub.watch_session(sid)

    def _start_stream(self, conn_id: int, msg: inbound.SubscribeSession, state: Any,
                      epoch: str | None) -> None:
        """The conn gets the snapshot it needs, then every later event."""
        same_life = msg.since_epoch is None or msg.since_epoch == epoch
        caught_up = msg.since_revision is not None and same_life and (
            msg.since_revision == state.revision)
        wants_snapshot = msg.include_snapshot or msg.since_revision is not None
        if wants_snapshot and not caught_up:
            self._emit((conn_id,), outbound.session_snapshot(state, epoch, self.limit))
        self._watchers.setdefault(state.id, set()).add(conn_id)

    def _question_ids(self, msg: inbound.AnswerQuestion) -> list[str]:
        mirror = self.sub.sessions.get(msg.session_id) if self.sub is not None else None
        if mirror is None or not mirror.synced:
            return []
        for request in mirror.state.approvals:
            if request.id == msg.request_id:
                return [q.id for q in request.questions]
        return []

    def _request(self, conn_id: int, msg: inbound.Upstream) -> None:
        sid = getattr(msg, "session_id", None)
        try:
            question_ids = (self._question_ids(msg) if isinstance(msg, inbound.AnswerQuestion)
                            else None)
            request = inbound.to_request(msg, question_ids=question_ids)
        except inbound.Refused as exc:
            self._refuse(conn_id, exc.code, exc.message, exc.session_id or sid)
            return
        if not self._send(request, _Pending(conn_id, msg, time.monotonic())):
            self._refuse(conn_id, "timeout", "orbitdockd is not reachable", sid)

    def _send(self, request: m.Request, pending: _Pending) -> bool:
        if self.client is None:
            return False
        request.id = self.client.new_id()
        try:
            self.client.send_raw(codec.encode(request),
                                 timeout=self.cfg.ws.send_timeout_ms / 1000)
        except Exception as exc:  # RequestTimeout: not connected to a live daemon
            logger.warning("request %s not sent: %s", type(request).__name__, exc)
            return False
        self._inflight[request.id] = pending
        return True

    def _http(self, request: m.Request,
              shape: Callable[[m.Wire], tuple[int, Any]]) -> asyncio.Future:
        future = self.loop.create_future()
        if self._send(request, _Pending(None, None, time.monotonic(), future, shape)):
            self._after_send()
        else:
            future.set_result((503, {"status": "unreachable",
                                     "error": "orbitdockd is not running or not answering"}))
        return future

    def _status_body(self, reply: m.Wire) -> tuple[int, Any]:
        if not isinstance(reply, m.ServerStatus):
            return 503, {"status": "error", "error": getattr(reply, "message", str(reply))}
        body = {k: v for k, v in msgspec.to_builtins(reply).items()
                if k not in ("type", "v", "id")}
        body.update(status="ok", bridge_clients=len(self._conns), bridge_pid=os.getpid())
        return 200, body

    def _page_body(self, reply: m.Wire) -> tuple[int, Any]:
        if isinstance(reply, m.Error):
            return _HTTP_STATUS.get(reply.code, 503), outbound.error(
                upstream_error(reply.code, None), reply.message, reply.session_id)
        assert isinstance(reply, m.MessagesPage)
        messages = [outbound.message(x, reply.session_id, self.limit) for x in reply.messages]
        return 200, {"session_id": reply.session_id, "messages": messages,
                     "has_more_before": reply.has_more_before,
                     "oldest_sequence": messages[0]["sequence"] if messages else None}

    # ------------------------------------------------------------ replies
    def _on_replies(self) -> None:
        sock = self.client.sock
        while sock.poll(0):
            reply = codec.decode_inbound(sock.recv())
            pending = self._inflight.pop(reply.id, None)
            if pending is not None:
                self._answer(pending, reply)

    def _expire(self) -> None:
        now = time.monotonic()
        limit = self.cfg.client.request_timeout_s
        for rid, pending in list(self._inflight.items()):
            if now - pending.sent_at < limit:
                continue
            del self._inflight[rid]
            if pending.future is not None and not pending.future.done():
                pending.future.set_result((503, {"status": "timeout",
                                                 "error": f"no reply within {limit}s"}))
            elif pending.conn_id is not None:
                self._refuse(pending.conn_id, "timeout", f"no reply from orbitdockd within "
                             f"{limit}s", getattr(pending.msg, "session_id", None))

    def _provider(self, sid: str | None) -> str:
        row = self.sub.summaries.get(sid or "") if self.sub is not None else None
        return row.provider if row is not None else "codex"

    def _answer(self, pending: _Pending, reply: m.Wire) -> None:
        if pending.future is not None:
            if not pending.future.done():  # the HTTP side may have given up
                pending.future.set_result(pending.shape(reply))
            return
        conn_id, msg = pending.conn_id, pending.msg
        if conn_id is None or conn_id not in self._conns:
            return
        sid = getattr(msg, "session_id", None)
        if isinstance(reply, m.Error):
            if reply.code == "stale_approval" and isinstance(
                    msg, (inbound.ApproveTool, inbound.AnswerQuestion)):
                self._emit((conn_id,), self._decision_result(msg, "stale"))
                return
            code = upstream_error(reply.code, msg, self._provider(reply.session_id or sid))
            self._emit((conn_id,), outbound.error(code, reply.message, reply.session_id or sid,
                                                  orbitdock_code=reply.code))
            return
        if isinstance(msg, (inbound.CreateSession, inbound.ResumeSession)):
            assert isinstance(reply, m.SessionSnapshot)
            new_sid = reply.session.id
            conn = self._conns[conn_id]
            mirror = self.sub.sessions.get(new_sid)
            if new_sid in conn.sessions and mirror is not None and mirror.synced:
                self._emit((conn_id,), outbound.session_snapshot(mirror.state, mirror.epoch,
                                                                 self.limit))
            else:
                self._subscribe_session(conn_id, conn,
                                        inbound.SubscribeSession(session_id=new_sid))
        elif isinstance(msg, (inbound.ApproveTool, inbound.AnswerQuestion)):
            self._emit((conn_id,), self._decision_result(msg, "applied"))
        elif isinstance(reply, m.ModelsList):
            models = [dict(msgspec.to_builtins(o), supports_reasoning_summaries=False)
                      for o in reply.models]
            self._emit((conn_id,), {"type": "models_list", "models": models})

    def _decision_result(self, msg: Any, outcome: str) -> dict[str, Any]:
        mirror = self.sub.sessions.get(msg.session_id) if self.sub is not None else None
        state = mirror.state if mirror is not None and mirror.synced else None
        head = state.approvals[0].id if state is not None and state.approvals else None
        return {"type": "approval_decision_result", "session_id": msg.session_id,
                "request_id": msg.request_id, "outcome": outcome,
                "active_request_id": head,
                "approval_version": state.revision if state is not None else 0}

    # ------------------------------------------------------------ the daemon's stream
    def _on_applied(self, applied: list[m.Wire]) -> None:
        coalesced = self._coalesce(applied)
        for index, item in enumerate(applied):
            if isinstance(item, m.SessionEvent):
                conns = self._watchers.get(item.session_id)
                if not conns:
                    continue
                state = self.sub.sessions[item.session_id].state
                if isinstance(item, m.MessageUpdated):
                    fields = coalesced.get(index)
                    if fields is not None:
                        self._emit(conns, outbound.message_updated(item, state, fields,
                                                                   self.limit))
                    continue
                for frame in outbound.session_event(item, state, self.limit):
                    self._emit(conns, frame)
            elif isinstance(item, m.SessionCreated):
                self._on_list_upsert(item.session)
            elif isinstance(item, m.SessionSnapshot):
                self._on_snapshot(item.session.id)
            elif isinstance(item, m.SessionsList):
                self._list_status = {s.id: s.status for s in item.sessions}
                self._list_conns |= self._list_waiting
                self._list_waiting.clear()
                self._emit(self._list_conns, outbound.sessions_list(item.sessions))
            elif isinstance(item, m.Error):
                self._on_snapshot_error(item)

    @staticmethod
    def _coalesce(applied: list[m.Wire]) -> dict[int, set[str]]:
        """Streaming updates of one message in one batch go out as one ``message_updated``
        (the last, carrying every field they changed): upstream resends text whole, so a
        frame per delta would cost the square of the text's length. Busy batches coalesce
        more, an idle stream still sends each delta at once."""
        last: dict[tuple[str, str], int] = {}
        fields: dict[tuple[str, str], set[str]] = {}
        for index, item in enumerate(applied):
            if isinstance(item, m.MessageUpdated):
                key = (item.session_id, item.message_id)
                last[key] = index
                fields.setdefault(key, set()).update(outbound.changed_fields(item.changes))
        return {index: fields[key] for key, index in last.items()}

    def _on_list_upsert(self, row: Any) -> None:
        was = self._list_status.get(row.id)
        self._list_status[row.id] = row.status
        self._emit(self._list_conns, outbound.session_created(row))
        if row.status == "ended" and was not in (None, "ended"):
            self._emit(self._list_conns, {"type": "session_ended", "session_id": row.id,
                                          "reason": row.end_reason or "ended"})

    def _on_snapshot(self, sid: str) -> None:
        mirror = self.sub.sessions.get(sid)
        if mirror is None or not mirror.synced:
            return
        # A resync (gap, reset, new daemon life): every follower replaces its copy.
        self._emit(self._watchers.get(sid, set()),
                   outbound.session_snapshot(mirror.state, mirror.epoch, self.limit))
        for conn_id, msg in self._awaiting.pop(sid, {}).items():
            self._start_stream(conn_id, msg, mirror.state, mirror.epoch)

    def _on_snapshot_error(self, error: m.Error) -> None:
        sid = error.session_id
        if sid is None:
            return
        waiting = self._awaiting.pop(sid, {})
        followers = self._watchers.pop(sid, set())
        conns = set(waiting) | followers
        for conn_id in conns:
            conn = self._conns.get(conn_id)
            if conn is not None:
                conn.sessions.discard(sid)
        self._emit(conns, outbound.error(upstream_error(error.code, None), error.message, sid))
        if self.sub is not None:
            self.sub.unwatch_session(sid)
