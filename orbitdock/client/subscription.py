"""Client library, live side: mirrors of sessions and of the list, kept exact (Clone pattern).

Every client — orbitdockctl, the load tool, the benchmarks, the tests —
uses this, so snapshot/delta reconciliation is written once:

1. subscribe the SUB socket to the topic and wait for the gateway's *welcome*
   on it (the subscription is then live: nothing published later is missed);
2. ask for a snapshot; it carries the revision it reflects;
3. drop buffered and later events at or below that revision, apply the rest in
   order; a revision that skips one is a gap (e.g. the HWM dropped events) and
   triggers a fresh snapshot, as does a ``session_reset`` or a new server epoch.

Heartbeats on the PUB side tell a dead server from a quiet one. The gateway also
sends one as the first message of every (re)connection, so the stream's epoch is
known before any event of a restarted daemon arrives; a mirror is only ever fed
events of the epoch its snapshot came from.
A ``Client`` or ``Subscription`` belongs to the thread that made it (it owns
its sockets).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zmq

from orbitdock.client.requests import Client, Endpoints
from orbitdock.config import Config
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import SessionState, SessionSummary
from orbitdock.protocol.topics import HEARTBEAT, LIST, session_id_of, session_topic, split_frame
from orbitdock.session.reducer import apply_event


@dataclass
class Mirror:
    """A client-side copy of one session, exact once ``synced``."""

    session_id: str
    state: SessionState | None = None
    synced: bool = False
    welcomed: bool = False
    pending_request: str | None = None
    epoch: str | None = None  # the daemon life the state comes from
    # events that arrived while unsynced, each with the stream epoch it arrived in
    buffer: list[tuple[str | None, m.SessionEvent]] = field(default_factory=list)


@dataclass
class SyncStats:
    events: int = 0
    dropped_old: int = 0
    gaps: int = 0
    resyncs: int = 0
    epoch_changes: int = 0
    heartbeats: int = 0


class Subscription:
    """Live, exact mirrors of the session list and of chosen sessions."""

    def __init__(self, endpoints: Endpoints, *, config: Config | None = None,
                 ctx: zmq.Context | None = None):
        ccfg = (config or Config()).client
        self.cfg = ccfg
        self.hb_interval = (config or Config()).gateway.heartbeat_interval_s
        self.ctx = ctx or zmq.Context.instance()
        self.requests = Client(endpoints, timeout=ccfg.request_timeout_s, ctx=self.ctx)
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, ccfg.receive_hwm)
        self.sub.connect(endpoints.events)
        self.sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT)
        self.epoch: str | None = None
        self.last_heartbeat = time.monotonic()
        self.sessions: dict[str, Mirror] = {}
        self.list_wanted = False
        self.list_synced = False
        self.list_welcomed = False
        self.list_rev = 0
        self.list_epoch: str | None = None
        self.list_request: str | None = None
        self.list_buffer: list[m.SessionCreated] = []
        self.summaries: dict[str, SessionSummary] = {}
        self.stats = SyncStats()
        self._requests: dict[str, str | None] = {}  # request id -> session id (None = list)
        self._sent_at: dict[str, float] = {}  # request id -> when it was sent
        self._welcome_deadline: dict[bytes, float] = {}

    # ------------------------------------------------------------ what to follow
    def watch_list(self) -> None:
        self.list_wanted = True
        self.sub.setsockopt(zmq.SUBSCRIBE, LIST)
        self._welcome_deadline[LIST] = time.monotonic() + self.cfg.welcome_timeout_s

    def watch_session(self, session_id: str) -> Mirror:
        mirror = self.sessions.get(session_id)
        if mirror is None:
            mirror = self.sessions[session_id] = Mirror(session_id)
            topic = session_topic(session_id)
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
            self._welcome_deadline[topic] = time.monotonic() + self.cfg.welcome_timeout_s
        return mirror

    def unwatch_session(self, session_id: str) -> None:
        if self.sessions.pop(session_id, None) is not None:
            self.sub.setsockopt(zmq.UNSUBSCRIBE, session_topic(session_id))

    @property
    def server_alive(self) -> bool:
        limit = self.hb_interval * self.cfg.heartbeat_liveness
        return time.monotonic() - self.last_heartbeat < limit

    def state(self, session_id: str) -> SessionState | None:
        mirror = self.sessions.get(session_id)
        return mirror.state if mirror and mirror.synced else None

    def all_synced(self) -> bool:
        return (not self.list_wanted or self.list_synced) and all(
            mir.synced for mir in self.sessions.values())

    # ------------------------------------------------------------ pumping
    def poll(self, timeout: float) -> list[m.Wire]:
        """Process whatever arrives within ``timeout`` seconds; returns the applied events."""
        applied: list[m.Wire] = []
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        poller.register(self.sub, zmq.POLLIN)
        poller.register(self.requests.sock, zmq.POLLIN)
        while True:
            self._check_welcome_timeouts()
            self._check_request_timeouts()
            left = deadline - time.monotonic()
            ready = dict(poller.poll(max(0, int(left * 1000))))
            if self.sub in ready:
                for _ in range(self.cfg.receive_hwm):
                    try:
                        frame = self.sub.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_frame(frame, applied)
            if self.requests.sock in ready:
                while self.requests.sock.poll(0):
                    self._on_reply(codec.decode_inbound(self.requests.sock.recv()), applied)
            if time.monotonic() >= deadline:
                return applied

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.all_synced():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(left, 0.05))
        return True

    def _check_welcome_timeouts(self) -> None:
        # A welcome can be missed (e.g. sent before a reconnect): ask anyway after the wait;
        # a gap, if any, is then caught by revision checking.
        now = time.monotonic()
        for topic, deadline in list(self._welcome_deadline.items()):
            if now >= deadline:
                self._welcome_deadline.pop(topic)
                self._on_welcome(topic)

    def _on_frame(self, frame: bytes, applied: list[m.Wire]) -> None:
        topic, payload = split_frame(frame)
        event = codec.decode_inbound(payload)
        if isinstance(event, m.Heartbeat):
            self.stats.heartbeats += 1
            self.last_heartbeat = time.monotonic()
            self._on_stream_epoch(event.epoch)
        elif isinstance(event, m.Welcome):
            if event.epoch:
                self._on_stream_epoch(event.epoch)
            self._welcome_deadline.pop(topic, None)
            self._on_welcome(topic)
        elif isinstance(event, m.SessionCreated):
            self._on_list_event(event, applied)
        elif isinstance(event, m.SessionTail):
            mirror = self.sessions.get(event.session_id)
            if mirror is not None and mirror.synced and event.rev > mirror.state.revision:
                # The end of a burst never reached us (dropped at the publisher's HWM).
                self.stats.gaps += 1
                self.resync(mirror)
        elif isinstance(event, m.SessionEvent):
            self._on_session_event(event, applied)

    def _on_stream_epoch(self, epoch: str) -> None:
        """The event stream now comes from the daemon life ``epoch``."""
        if epoch == self.epoch:
            return
        if self.epoch is not None:
            self.stats.epoch_changes += 1
        self.epoch = epoch
        self.resync_all(current_epoch=epoch)

    def _check_request_timeouts(self) -> None:
        # A reply can be lost (e.g. the daemon restarted in between): ask again, never
        # leave a mirror waiting forever.
        now = time.monotonic()
        for request_id, sent in list(self._sent_at.items()):
            if now - sent < self.cfg.request_timeout_s:
                continue
            self._sent_at.pop(request_id)
            sid = self._requests.pop(request_id, None)
            if sid is None:
                if self.list_request == request_id:
                    self.list_request = None
                    self._request_list()
                continue
            mirror = self.sessions.get(sid)
            if mirror is not None and mirror.pending_request == request_id:
                mirror.pending_request = None
                self._request_snapshot(mirror)

    def _on_welcome(self, topic: bytes) -> None:
        if topic == LIST:
            self.list_welcomed = True
            if self.list_wanted and not self.list_synced and self.list_request is None:
                self._request_list()
            return
        sid = session_id_of(topic)
        mirror = self.sessions.get(sid or "")
        if mirror is not None:
            mirror.welcomed = True
            if not mirror.synced and mirror.pending_request is None:
                self._request_snapshot(mirror)

    def _request_snapshot(self, mirror: Mirror) -> None:
        request_id = self.requests.send(m.SubscribeSession(session_id=mirror.session_id))
        mirror.pending_request = request_id
        self._requests[request_id] = mirror.session_id
        self._sent_at[request_id] = time.monotonic()

    def _request_list(self) -> None:
        self.list_request = self.requests.send(m.SubscribeList())
        self._requests[self.list_request] = None
        self._sent_at[self.list_request] = time.monotonic()

    def resync(self, mirror: Mirror) -> None:
        self.stats.resyncs += 1
        mirror.synced = False
        if mirror.pending_request is None:
            self._request_snapshot(mirror)

    def resync_all(self, current_epoch: str | None = None) -> None:
        """Resync every mirror, or, given the daemon's ``current_epoch``, those of
        another life (a snapshot whose reply overtook the reconnect is already current;
        a gap check covers what it missed)."""
        for mirror in self.sessions.values():
            if current_epoch is None or (mirror.synced and mirror.epoch != current_epoch):
                mirror.buffer.clear()
                self.resync(mirror)
        if self.list_wanted and (current_epoch is None or (
                self.list_synced and self.list_epoch != current_epoch)):
            self._resync_list()

    def _resync_list(self) -> None:
        self.stats.resyncs += 1
        self.list_synced = False
        self.list_buffer.clear()
        if self.list_request is None:
            self._request_list()

    # ------------------------------------------------------------ reconciliation
    def _on_reply(self, reply: m.Wire, applied: list[m.Wire]) -> None:
        if reply.id not in self._requests:
            return
        self._sent_at.pop(reply.id, None)
        sid = self._requests.pop(reply.id)
        if sid is None:
            self.list_request = None
            if isinstance(reply, m.SessionsList):
                self.summaries = {s.id: s for s in reply.sessions}
                self.list_rev = reply.revision
                self.list_epoch = reply.epoch
                self.list_synced = True
                # The list first, then the events newer than it: a consumer that sends
                # the list's rows and then each event (the WebSocket bridge) misses
                # nothing created while the list was asked for.
                applied.append(reply)
                buffered, self.list_buffer = self.list_buffer, []
                for event in buffered:
                    self._on_list_event(event, applied)
            return
        mirror = self.sessions.get(sid)
        if mirror is None:
            return
        mirror.pending_request = None
        if isinstance(reply, m.SessionSnapshot):
            mirror.state = reply.session
            mirror.epoch = reply.epoch
            mirror.synced = True
            buffered, mirror.buffer = mirror.buffer, []
            for stream_epoch, event in buffered:
                if stream_epoch is None or stream_epoch == reply.epoch:
                    self._on_session_event(event, applied)
            applied.append(reply)
        elif isinstance(reply, m.Error):
            mirror.synced = False
            applied.append(reply)

    def _on_session_event(self, event: m.SessionEvent, applied: list[m.Wire]) -> None:
        mirror = self.sessions.get(event.session_id)
        if mirror is None:
            return
        if isinstance(event, m.SessionReset):
            self.resync(mirror)
            mirror.buffer.clear()
            return
        if not mirror.synced:
            mirror.buffer.append((self.epoch, event))
            return
        if self.epoch is not None and mirror.epoch != self.epoch:
            # The stream is still the previous daemon's (this snapshot's reply overtook
            # the reconnect) or already the next one's (the resync is under way).
            self.stats.dropped_old += 1
            return
        current = mirror.state.revision
        if event.rev <= current:
            self.stats.dropped_old += 1
            return
        if event.rev != current + 1:
            self.stats.gaps += 1
            mirror.buffer = [(self.epoch, event)]
            self.resync(mirror)
            return
        apply_event(mirror.state, event)
        self.stats.events += 1
        applied.append(event)

    def _on_list_event(self, event: m.SessionCreated, applied: list[m.Wire]) -> None:
        if not self.list_wanted:
            return
        if not self.list_synced:
            self.list_buffer.append(event)
            return
        if event.epoch != self.list_epoch:
            # Another daemon life: the old one's stragglers are dropped, the new one's
            # first event starts a resync (if its heartbeat has not already).
            if event.epoch == self.epoch:
                self._resync_list()
                self.list_buffer = [event]
            return
        if event.lrev <= self.list_rev:
            return
        if event.lrev != self.list_rev + 1:
            self.stats.gaps += 1
            self._resync_list()
            self.list_buffer = [event]
            return
        self.list_rev = event.lrev
        if event.session.status == "ended":
            # The live list holds the sessions not ended: the daemon drops this one too.
            self.summaries.pop(event.session.id, None)
        else:
            self.summaries[event.session.id] = event.session
        applied.append(event)

    def close(self) -> None:
        self.sub.close(linger=0)
        self.requests.close()


def _canonical(value: Any) -> Any:
    # Every field, defaults included: omit_defaults encodings of equal states can differ.
    if isinstance(value, msgspec.Struct):
        return {k: _canonical(v) for k, v in msgspec.structs.asdict(value).items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def snapshot_bytes(state: SessionState) -> bytes:
    """Canonical encoding of a state, for comparing a mirror with the server."""
    return msgspec.msgpack.encode(_canonical(state))
