"""The one channel from every actor thread into the gateway loop, and socket helpers.

Actors hand the gateway frames through an ``Outlet``. All outlets of a daemon share
one ``GatewayInbox``: a C ``queue.SimpleQueue`` (thread-safe ``put``, like pykka's
own inboxes) whose consumer, the gateway loop thread, is woken through one Linux
eventfd that it polls beside its ZeroMQ sockets. No actor owns a ZeroMQ socket, so
the number of sessions is not bounded by the context's socket limit (libzmq's
default is 1 023 per context), and a session costs no socket to create or restore.

A writer writes the eventfd only when the consumer is not already due to look (the
``_armed`` flag), so a burst costs one syscall, not one per frame. The consumer
clears the flag *before* it drains, so a frame put after the drain's last look
always finds the flag clear and wakes it.

Frames are single byte strings whose first byte says what the gateway should do
with the rest: ``P`` publish: the event's revision (8 bytes, big-endian), then
``topic + payload`` which the gateway sends as is (it remembers the revision to
announce session tails); ``R`` reply: one length byte, the ROUTER identity, then
the payload; ``S`` a SessionSummary for the list; ``D`` the persistence actor's
StorageHealth (on every change of its write state).
"""

from __future__ import annotations

import os
import queue
import threading
import time

from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import SessionSummary, StorageHealth
from orbitdock.protocol.routing import ClientRequest
from orbitdock.protocol.topics import session_topic

OP_PUBLISH = ord("P")
OP_REPLY = ord("R")
OP_SUMMARY = ord("S")
OP_STORAGE = ord("D")  # the persistence actor's StorageHealth, on every change

_FULL_WAIT_S = 0.001  # a writer finding the inbox full re-checks this often


class GatewayInbox:
    """Many writers (any thread), one reader (the gateway loop thread)."""

    def __init__(self, bound: int):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._armed = False
        self.bound = bound  # frames queued before writers wait (backpressure, like a HWM)
        self.closed = False

    # ------------------------------------------------------------ writers (any thread)
    def put(self, frame: bytes | bytearray) -> None:
        if self.closed:
            return  # the gateway is gone (shutdown): nobody would read it
        if self._queue.qsize() >= self.bound:
            self._wait_for_room()
        self._queue.put(frame)
        if not self._armed:
            self._armed = True
            os.eventfd_write(self._fd, 1)

    def _wait_for_room(self) -> None:
        while self._queue.qsize() >= self.bound and not self.closed:
            time.sleep(_FULL_WAIT_S)

    # ------------------------------------------------------------ the reader (gateway loop)
    def fileno(self) -> int:
        return self._fd

    def rearm(self) -> None:
        """Acknowledge a wake-up; call before draining (see the module docstring)."""
        try:
            os.eventfd_read(self._fd)
        except BlockingIOError:
            pass
        self._armed = False

    def get_nowait(self) -> bytes | bytearray:
        """The next frame; raises ``queue.Empty``."""
        return self._queue.get_nowait()

    def get(self, timeout: float) -> bytes | bytearray | None:
        """The next frame within ``timeout`` seconds, else None (for a reader that does
        not poll the fd, e.g. a test standing in for the gateway)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Writers drop frames from now on (the fd is closed with the object, so a
        writer still holding it never writes to a recycled descriptor)."""
        self.closed = True

    def __del__(self) -> None:
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass


_inboxes: dict[str, GatewayInbox] = {}
_released: set[str] = set()  # names whose gateway stopped: late writers get _CLOSED
_CLOSED: GatewayInbox | None = None
_inboxes_lock = threading.Lock()  # guards creation only; the inbox itself is lock-free to use


def gateway_inbox(endpoint: str, bound: int) -> GatewayInbox:
    """The daemon's inbox named ``endpoint`` (created by whichever side comes first:
    actors restored at start publish before the gateway loop runs). After the gateway
    released it, a closed inbox that drops what it is given, never one nobody reads."""
    global _CLOSED
    with _inboxes_lock:
        if endpoint in _released:
            if _CLOSED is None:
                _CLOSED = GatewayInbox(0)
                _CLOSED.close()
            return _CLOSED
        inbox = _inboxes.get(endpoint)
        if inbox is None:
            inbox = _inboxes[endpoint] = GatewayInbox(bound)
        return inbox


def release_gateway_inbox(endpoint: str) -> None:
    with _inboxes_lock:
        inbox = _inboxes.pop(endpoint, None)
        _released.add(endpoint)
    if inbox is not None:
        inbox.close()


class Outlet:
    """One actor's handle on the gateway inbox (cheap: no socket, no thread)."""

    def __init__(self, endpoint: str, hwm: int):
        self._inbox = gateway_inbox(endpoint, hwm)

    def publish(self, session_id: str, event: m.SessionEvent) -> None:
        prefix = b"P" + event.rev.to_bytes(8, "big") + session_topic(session_id)
        buf = bytearray(prefix)  # a new buffer per frame: the queue hands it over
        codec.encode_into(event, buf, len(prefix))
        self._inbox.put(buf)

    def reply(self, identity: bytes, message: m.Reply) -> None:
        self._inbox.put(b"R" + bytes((len(identity),)) + identity + codec.encode(message))

    def answer(self, req: ClientRequest, message: m.Reply) -> None:
        """Reply to a client's request (the reply echoes the request's id)."""
        message.id = req.request.id
        self.reply(req.identity, message)

    def refuse(self, req: ClientRequest, code: ErrorCode, text: str,
               session_id: str | None = None) -> None:
        """Answer a request with a coded error."""
        self.answer(req, m.Error(code=str(code), message=text, session_id=session_id))

    def refuse_with(self, req: ClientRequest, exc: ProtocolError) -> None:
        self.refuse(req, exc.code, exc.message, exc.session_id)

    def summary(self, summary: SessionSummary) -> None:
        self._inbox.put(b"S" + codec.encode_struct(summary))

    def storage(self, health: StorageHealth) -> None:
        self._inbox.put(b"D" + codec.encode_struct(health))

    def close(self) -> None:
        """Nothing to release (kept so owners need not know)."""


def inproc_endpoint(epoch: str) -> str:
    """The name of a daemon's gateway inbox (kept from when it was an inproc socket)."""
    return f"inproc://orbitdock-gateway-{epoch}"
