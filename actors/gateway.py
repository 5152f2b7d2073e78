"""The ZeroMQ gateway: ROUTER for requests, XPUB for events (the zguide Clone pattern).

``GatewayActor`` is the lifecycle handle; the sockets live on the ``GatewayLoop``
thread it starts, which owns the ROUTER, the XPUB and the inproc PULL through
which actors hand it frames (the one ``GatewayInbox`` every actor's ``Outlet`` puts
into, woken through an eventfd polled beside the sockets; see
``orbitdock.transport``). Nothing else touches these sockets.

The loop also owns the live session list (latest summary of every session not
ended, plus a list revision), seeded at start from the database's rows, so
sessions without an actor (passivated) stay listed; a session that ends is
published once more, as ended, and dropped (the history is ``list_sessions``): ``subscribe_list`` is
answered from it directly and list upserts are
published at most every ``list_coalesce_ms``, so a burst of deltas in one
session costs one list event, not one per delta.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

import msgspec
import pykka
import psutil
import zmq

from orbitdock import __version__
from orbitdock.config import Config
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.routing import ClientRequest, RequestTable, Scope, answers
from orbitdock.protocol.topics import HEARTBEAT, LIST, session_id_of
from orbitdock.protocol.models import StorageHealth
from orbitdock.transport import (OP_PUBLISH, OP_REPLY, OP_STORAGE, OP_SUMMARY, GatewayInbox,
                                 gateway_inbox, release_gateway_inbox)

logger = logging.getLogger(__name__)

XPUB_SUBSCRIBE = 1  # first byte of an XPUB subscription message (0 = unsubscribe)


class GatewayLoop(threading.Thread):
    def __init__(self, config: Config, ctx: zmq.Context, *, epoch: str, request_endpoint: str,
                 event_endpoint: str, inproc_endpoint: str, supervisor: pykka.ActorRef,
                 summaries: list[m.SessionSummary] = ()):
        super().__init__(name="gateway-loop", daemon=True)
        self.cfg = config.gateway
        self.ctx = ctx
        self.epoch = epoch
        self.endpoints = (request_endpoint, event_endpoint, inproc_endpoint)
        self.supervisor = supervisor
        self.started_at = time.time()
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self._stop_requested = threading.Event()
        # The live list: seeded from the database's rows (sessions not ended, with an actor
        # or dormant), then upserted by the actors; ended ones leave it once published.
        self._summaries: dict[str, m.SessionSummary] = {s.id: s for s in summaries}
        self._dirty: dict[str, None] = {}  # ordered set of sessions with unpublished summaries
        self._list_rev = 0
        self._subscriptions = 0
        self.frames_rejected = 0
        self._hb_seq = 0
        self._tails: dict[bytes, list[int]] = {}  # session topic -> [latest rev, heartbeats left]
        self.requests = RequestTable(self, Scope.GATEWAY)  # the rest goes to the supervisor
        self._storage = StorageHealth()  # as the persistence actor last told it
        self._decode_storage = msgspec.msgpack.Decoder(StorageHealth).decode

    def stop(self) -> None:
        self._stop_requested.set()

    # ------------------------------------------------------------ loop
    def run(self) -> None:
        try:
            router, xpub = self._bind()
        except BaseException as exc:  # surfaced to GatewayActor.on_start
            self.startup_error = exc
            release_gateway_inbox(self.endpoints[2])  # nobody will read it: writers drop
            self.ready.set()
            return
        inbox = gateway_inbox(self.endpoints[2], self.cfg.inbound_hwm)
        self.ready.set()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(xpub, zmq.POLLIN)
        poller.register(inbox.fileno(), zmq.POLLIN)
        backlog = True  # frames may be queued already (actors restored before the loop ran)
        hb_interval = self.cfg.heartbeat_interval_s
        list_interval = self.cfg.list_coalesce_ms / 1000.0
        next_hb = time.monotonic()
        next_list = time.monotonic() + list_interval
        try:
            while not self._stop_requested.is_set():
                now = time.monotonic()
                if now >= next_hb:
                    self._heartbeat(xpub)
                    next_hb = now + hb_interval
                if self._dirty and now >= next_list:
                    self._publish_list(xpub)
                    next_list = now + list_interval
                wait = min(next_hb, next_list if self._dirty else next_hb) - time.monotonic()
                events = dict(poller.poll(0 if backlog else max(0, int(wait * 1000)) + 1))
                if backlog or inbox.fileno() in events:
                    inbox.rearm()  # before draining: a frame put after the drain wakes us
                    backlog = not self._drain_inbox(inbox, router, xpub)
                if router in events:
                    self._drain_router(router, xpub)
                if xpub in events:
                    self._drain_subscriptions(xpub)
            # Final drain so replies and events handed over before stop still go out.
            while not self._drain_inbox(inbox, router, xpub):
                pass
            self._publish_list(xpub)
        finally:
            release_gateway_inbox(self.endpoints[2])
            for sock in (router, xpub):
                sock.close(linger=0)

    def _bind(self):
        request_ep, event_ep, _ = self.endpoints
        router = self.ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.MAXMSGSIZE, self.cfg.disconnect_frame_bytes)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(request_ep)
        xpub = self.ctx.socket(zmq.XPUB)
        xpub.setsockopt(zmq.XPUB_VERBOSER, 1)  # see every (un)subscribe, to welcome and count
        xpub.setsockopt(zmq.SNDHWM, self.cfg.subscriber_hwm)
        xpub.setsockopt(zmq.LINGER, 0)
        # libzmq writes this first on every new connection, ahead of any event: a client
        # that reconnects to a restarted daemon learns its epoch before its first delta
        # and cannot apply the new daemon's events to the old daemon's mirror.
        xpub.setsockopt(zmq.XPUB_WELCOME_MSG, HEARTBEAT + codec.encode(
            m.Heartbeat(epoch=self.epoch, seq=0, ts=time.time())))
        xpub.bind(event_ep)
        for endpoint in (request_ep, event_ep):
            if endpoint.startswith("ipc://"):
                os.chmod(endpoint[len("ipc://"):], 0o600)
        return router, xpub

    # ------------------------------------------------------------ outbound
    def _drain_inbox(self, inbox: GatewayInbox, router: zmq.Socket, xpub: zmq.Socket) -> bool:
        """Handle at most ``drain_batch`` frames; True when the inbox is empty.

        Bounded so a burst can never starve heartbeats or requests.
        """
        tails = self._tails
        tail_heartbeats = self.cfg.tail_heartbeats
        for _ in range(self.cfg.drain_batch):
            try:
                frame = inbox.get_nowait()
            except queue.Empty:
                return True
            op = frame[0]
            if op == OP_PUBLISH:
                xpub.send(memoryview(frame)[9:])
                tails[bytes(frame[9:frame.index(b"|", 11) + 1])] = [
                    int.from_bytes(frame[1:9], "big"), tail_heartbeats]
            elif op == OP_REPLY:
                size = frame[1]
                self._send_reply(router, frame[2:2 + size], frame[2 + size:])
            elif op == OP_SUMMARY:
                summary = codec.decode_summary(frame[1:])
                self._summaries[summary.id] = summary
                self._dirty[summary.id] = None
            elif op == OP_STORAGE:
                previous = self._storage.state
                self._storage = self._decode_storage(frame[1:])
                if self._storage.state != previous:
                    self._heartbeat(xpub)  # every client learns the change now
            else:
                logger.error("gateway: unknown inbox op %r", op)
        return False

    def _send_reply(self, router: zmq.Socket, identity: bytes, payload: bytes) -> None:
        try:
            router.send_multipart([identity, payload])
        except zmq.ZMQError as exc:
            # ROUTER_MANDATORY: the client went away before its reply; nothing to deliver.
            logger.info("gateway: reply to vanished client dropped (%s)", exc)

    def _publish_list(self, xpub: zmq.Socket) -> None:
        dirty, self._dirty = self._dirty, {}
        for session_id in dirty:
            self._list_rev += 1
            summary = self._summaries[session_id]
            event = m.SessionCreated(epoch=self.epoch, lrev=self._list_rev, session=summary)
            xpub.send(LIST + codec.encode(event))
            if summary.status == "ended":
                # The live list holds the sessions not ended: this upsert, the last one
                # it gets, tells mirrors to drop it too (list_sessions has the history).
                del self._summaries[session_id]

    def _heartbeat(self, xpub: zmq.Socket) -> None:
        self._hb_seq += 1
        storage = self._storage
        xpub.send(HEARTBEAT + codec.encode(m.Heartbeat(
            epoch=self.epoch, seq=self._hb_seq, ts=time.time(), storage=storage.state,
            storage_cause=storage.cause, storage_since=storage.since)))
        # Repeat recently active sessions' latest revisions for a few heartbeats, so a
        # subscriber that lost the end of a burst to its high-water mark notices.
        for topic, tail in list(self._tails.items()):
            sid = session_id_of(topic)
            xpub.send(topic + codec.encode(m.SessionTail(session_id=sid, rev=tail[0])))
            tail[1] -= 1
            if tail[1] <= 0:
                del self._tails[topic]

    def _drain_subscriptions(self, xpub: zmq.Socket) -> None:
        while True:
            try:
                msg = xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not msg:
                continue
            topic = msg[1:]
            if msg[0] == XPUB_SUBSCRIBE:
                self._subscriptions += 1
                if topic:
                    # The welcome tells the client its subscription is live, so a snapshot
                    # asked for after it cannot miss a delta (no sleep-after-connect).
                    welcome = m.Welcome(topic=topic.decode("utf-8", "replace"),
                                        epoch=self.epoch)
                    xpub.send(topic + codec.encode(welcome))
            else:
                self._subscriptions = max(0, self._subscriptions - 1)

    # ------------------------------------------------------------ requests
    def _drain_router(self, router: zmq.Socket, xpub: zmq.Socket) -> None:
        for _ in range(self.cfg.drain_batch):
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity = frames[0]
            if len(frames) != 2:
                self._reject(router, identity, b"".join(frames[1:]), ProtocolError(
                    ErrorCode.BAD_FRAME, f"expected 1 payload frame, got {len(frames) - 1}"))
                continue
            payload = frames[1]
            try:
                request = codec.decode_request(payload, self.cfg.max_frame_bytes)
            except ProtocolError as exc:
                self._reject(router, identity, payload, exc)
                continue
            try:
                self._dispatch(router, identity, request)
            except Exception:  # a handler bug must not take the gateway down
                logger.exception("gateway: handler for %s failed", type(request).__name__)
                self._send_reply(router, identity, codec.encode(m.Error(
                    id=request.id, code=str(ErrorCode.INTERNAL), message="internal error")))

    def _reject(self, router: zmq.Socket, identity: bytes, payload: bytes,
                exc: ProtocolError) -> None:
        self.frames_rejected += 1
        raw = payload[: self.cfg.log_raw_bytes]
        logger.warning("rejected frame: %s", exc.message,
                       extra={"code": str(exc.code), "raw": raw.hex(), "raw_len": len(payload)})
        request_id = codec.peek_id(payload) if exc.code != ErrorCode.TOO_LARGE else None
        self._send_reply(router, identity, codec.error_reply(exc, request_id))

    def _dispatch(self, router: zmq.Socket, identity: bytes, request: m.Request) -> None:
        if request.client:  # a named client's actions are on record (e.g. an agent via MCP)
            logger.info("%s from %s", request.__struct_config__.tag, request.client[:200],
                        extra={"client": request.client[:200], "request_id": request.id,
                               "session_id": getattr(request, "session_id", None)})
        if type(request).creates_durable and self._storage.refuse_new_work:
            self._send_reply(router, identity, codec.encode(m.Error(
                id=request.id, code=str(ErrorCode.STORAGE_UNAVAILABLE),
                message=f"storage {self._storage.state} since {self._storage.since:.0f}: "
                        f"{self._storage.cause}; new sessions and turns are refused until "
                        "the database takes writes again",
                session_id=getattr(request, "session_id", None))))
            return
        handler = self.requests.handler(request)
        if handler is None:
            self.supervisor.tell(ClientRequest(identity, request))
            return
        reply = handler(ClientRequest(identity, request))
        reply.id = request.id
        self._send_reply(router, identity, codec.encode(reply))

    @answers(m.SubscribeList)
    def _sessions_list(self, req: ClientRequest) -> m.SessionsList:
        return m.SessionsList(epoch=self.epoch, revision=self._list_rev,
                              sessions=list(self._summaries.values()))

    @answers(m.GetStatus)
    def _status(self, req: ClientRequest) -> m.ServerStatus:
        summaries = self._summaries.values()
        active = [s for s in summaries if s.status == "active"]
        return m.ServerStatus(
            epoch=self.epoch, version=__version__, pid=os.getpid(),
            uptime_s=time.time() - self.started_at,
            actors=len(pykka.ActorRegistry.get_all()),
            sessions=len(self._summaries), sessions_active=len(active),
            sessions_needing_attention=sum(1 for s in active if s.attention_reason != "none"),
            subscribers=self._subscriptions, frames_rejected=self.frames_rejected,
            rss_bytes=psutil.Process().memory_info().rss, storage=self._storage.state,
            storage_cause=self._storage.cause, storage_since=self._storage.since,
            unsaved_commands=self._storage.unsaved_commands,
            dropped_commands=self._storage.dropped_commands)


class GatewayActor(pykka.ThreadingActor):
    """Starts and stops the gateway loop thread; exists so the daemon stops it in order."""

    def __init__(self, config: Config, ctx: zmq.Context, *, epoch: str, request_endpoint: str,
                 event_endpoint: str, inproc_endpoint: str, supervisor: pykka.ActorRef,
                 summaries: list[m.SessionSummary] = ()):
        super().__init__()
        self.loop = GatewayLoop(config, ctx, epoch=epoch, request_endpoint=request_endpoint,
                                event_endpoint=event_endpoint, inproc_endpoint=inproc_endpoint,
                                supervisor=supervisor, summaries=summaries)
        self.stop_timeout_s = config.sessions.stop_timeout_s

    def on_start(self) -> None:
        self.loop.start()
        self.loop.ready.wait(self.stop_timeout_s)
        if self.loop.startup_error is not None:
            raise self.loop.startup_error

    def on_stop(self) -> None:
        self.loop.stop()
        self.loop.join(self.stop_timeout_s)
