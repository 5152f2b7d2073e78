"""The bridge's one link to the daemon: its ZeroMQ sockets, on the event loop.

The link lives in the server's asyncio thread, which therefore owns every socket of the
bridge: the ZeroMQ sockets' file descriptors are watched by the loop (``add_reader``;
they are edge-triggered, so each wake-up drains until no socket has input left), and the
server calls the link directly (a connection opened or closed, a parsed client message,
an HTTP request). No thread hop and no lock stands between a daemon event and the
WebSocket write. The link answers with batches of ``(connection ids, JSON payload)``
through the ``deliver`` callback, each frame encoded once whatever the number of
receivers.

One ``Subscription`` (snapshot + revisioned deltas, resync on a gap, a reset or a new
daemon epoch) keeps the mirrors; who follows which of them, and the stream's frames, are
``orbitdock.ws.followers``. One ``Client`` carries the connections' requests; their
replies are told in upstream terms by ``orbitdock.ws.answers``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import msgspec
import zmq

from orbitdock.claude.hooks import BLOCKING_EVENTS
from orbitdock.client import Client, DaemonNotRunning, Subscription, find_daemon
from orbitdock.config import Config
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.ws import answers, inbound, outbound
from orbitdock.ws.followers import Followers

logger = logging.getLogger("orbitdock.ws")

Deliver = Callable[[list[tuple[tuple[int, ...], bytes]]], None]



@dataclass
class _Pending:
    conn_id: int | None
    msg: inbound.Upstream | None
    sent_at: float
    future: asyncio.Future | None = None  # an HTTP request's (status, body)
    shape: Callable[[m.Wire], tuple[int, Any]] | None = None  # its reply -> (status, body)
    quiet: bool = False  # no error frame when no reply comes in time


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
        self._batch_s = cfg.ws.batch_ms / 1000
        self._last_pump = 0.0  # loop time of the last pump a wake-up started
        self._batch: asyncio.TimerHandle | None = None  # the pump a busy stream waits for
        self._next_connect = 0.0
        self.followers = Followers(self._emit, self.limit, cfg.ws.snapshot_target_bytes)
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
        if self._batch is not None:
            self._batch.cancel()
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

    def _on_readable(self) -> None:
        """The daemon sent something. An idle stream is taken at once; a busy one at most
        once per ``ws.batch_ms``: what arrives meanwhile goes out with it, one write per
        client and one ``message_updated`` per streaming message (per event and client,
        the send syscall is the bridge's main cost). Meanwhile the descriptors are not
        watched (a zmq descriptor stays readable until its socket is drained)."""
        now = self.loop.time()
        due = self._last_pump + self._batch_s
        if now >= due:
            self._last_pump = now
            self._pump()
        elif self._batch is None:
            for fd in self._fds:
                self.loop.remove_reader(fd)
            self._batch = self.loop.call_at(due, self._batched_pump)

    def _batched_pump(self) -> None:
        self._batch = None
        self._last_pump = self.loop.time()
        for fd in self._fds:
            self.loop.add_reader(fd, self._on_readable)
        self._pump()

    def _pump(self) -> None:
        """Take everything the daemon sent: the zmq descriptors are edge-triggered, so the
        loop only wakes again for input that arrives after this drained the sockets."""
        try:
            if self.sub is not None:
                socks = (self.sub.sub, self.sub.requests.sock, self.client.sock)
                while True:
                    self.followers.on_applied(self.sub.poll(0))
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
            self.loop.add_reader(fd, self._on_readable)
            self._fds.append(fd)
        self.followers.attach(self.sub)
        logger.info("connected to orbitdockd at %s", endpoints.request)
        return True

    def _emit(self, conns: Iterable[int], frame: dict[str, Any]) -> None:
        if conns:
            self._out.append((tuple(conns), self._encode(frame)))

    def _flush(self) -> None:
        if self._out:
            batch, self._out = self._out, []
            self.deliver(batch)

    # ------------------------------------------------------------ the server's calls
    def open(self, conn_id: int) -> None:
        self.followers.open(conn_id)
        epoch = self.sub.epoch if self.sub is not None else None
        self._emit((conn_id,), outbound.server_info(epoch, self.version))
        self._flush()

    def close(self, conn_id: int) -> None:
        self.followers.close(conn_id)
        for pending in self._inflight.values():
            if pending.conn_id == conn_id:
                pending.conn_id = None  # the reply is dropped when it comes

    def message(self, conn_id: int, msg: inbound.Upstream) -> None:
        if conn_id in self.followers.conns:
            if isinstance(msg, inbound.SubscribeList):
                self.followers.subscribe_list(conn_id)
            elif isinstance(msg, inbound.SubscribeSession):
                self.followers.subscribe_session(conn_id, msg)
            elif isinstance(msg, inbound.UnsubscribeSession):
                self.followers.unsubscribe_session(conn_id, msg.session_id)
            else:
                self._request(conn_id, msg)
        self._after_send()

    def health(self) -> asyncio.Future:
        """(status, body) of ``/health``."""
        return self._http(m.GetStatus(), lambda reply: answers.status_body(
            reply, len(self.followers.conns)))

    def messages(self, session_id: str, before: int | None, limit: int) -> asyncio.Future:
        """(status, body) of a page of the daemon's stored messages (``get_messages``)."""
        return self._http(m.GetMessages(session_id=session_id, before_seq=before, limit=limit),
                          lambda reply: answers.page_body(reply, self.limit))

    def _after_send(self) -> None:
        # Sending on a zmq socket can consume its pending input notification: look again.
        self._flush()
        self.loop.call_soon(self._pump)

    # ------------------------------------------------------------ requests
    def _refuse(self, conn_id: int, code: str, text: str, sid: str | None) -> None:
        self._emit((conn_id,), outbound.error(code, text, sid))

    def _request(self, conn_id: int, msg: inbound.Upstream) -> None:
        sid = getattr(msg, "session_id", None)
        try:
            question_ids = (answers.question_ids(self.followers.mirror_state(sid), msg.request_id)
                            if isinstance(msg, inbound.AnswerQuestion) else None)
            request = inbound.to_request(msg, question_ids=question_ids,
                                         provider=self.followers.known_provider(sid))
        except inbound.Refused as exc:
            self._refuse(conn_id, exc.code, exc.message, exc.session_id or sid)
            return
        if request is None:
            return  # a hook upstream ignores too
        # A PermissionRequest hook is answered when a client decides, or after
        # claude.permission_wait_s: no reply in time is no fault (its sender never waits).
        quiet = isinstance(request, m.ClaudeHook) and request.event in BLOCKING_EVENTS
        if not self._send(request, _Pending(conn_id, msg, time.monotonic(), quiet=quiet)):
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
            elif pending.conn_id is not None and not pending.quiet:
                self._refuse(pending.conn_id, "timeout", f"no reply from orbitdockd within "
                             f"{limit}s", getattr(pending.msg, "session_id", None))

    def _answer(self, pending: _Pending, reply: m.Wire) -> None:
        if pending.future is not None:
            if not pending.future.done():  # the HTTP side may have given up
                pending.future.set_result(pending.shape(reply))
            return
        conn_id, msg = pending.conn_id, pending.msg
        if conn_id is None or conn_id not in self.followers.conns:
            return
        if isinstance(msg, (inbound.CreateSession, inbound.ResumeSession,
                            inbound.ForkSession)) and not isinstance(reply, m.Error):
            assert isinstance(reply, m.SessionSnapshot)
            if isinstance(msg, inbound.ForkSession):
                self._emit((conn_id,), outbound.session_forked(msg.source_session_id,
                                                               reply.session))
            self.followers.follow_new(conn_id, reply.session.id)
            return
        sid = getattr(msg, "session_id", None)
        frame = answers.reply_frame(msg, reply, self.followers.mirror_state(sid),
                                    self.followers.provider(getattr(reply, "session_id", None)
                                                            or sid))
        if frame is not None:
            self._emit((conn_id,), frame)
