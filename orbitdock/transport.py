"""Socket set-up shared by the daemon and clients, and the per-thread gateway outlet.

An ``Outlet`` is one thread's inproc PUSH socket into the gateway loop. Each
actor creates its own in ``on_start`` and closes it in ``on_stop`` (sockets are
never shared between threads). Frames on that pipe are single frames whose
first byte says what the gateway should do with the rest:

``P`` publish: the event's revision (8 bytes, big-endian), then ``topic +
payload`` which the gateway sends as is (it remembers the revision to announce
session tails); ``R`` reply: one length byte, the ROUTER identity, then the
payload; ``S`` a SessionSummary for the list.
"""

from __future__ import annotations

import zmq

from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.routing import ClientRequest
from orbitdock.protocol.models import SessionSummary, StorageHealth
from orbitdock.protocol.topics import session_topic

OP_PUBLISH = ord("P")
OP_REPLY = ord("R")
OP_SUMMARY = ord("S")
OP_STORAGE = ord("D")  # the persistence actor's StorageHealth, on every change



class Outlet:
    def __init__(self, ctx: zmq.Context, endpoint: str, hwm: int):
        self._sock = ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._buf = bytearray()

    def publish(self, session_id: str, event: m.SessionEvent) -> None:
        prefix = b"P" + event.rev.to_bytes(8, "big") + session_topic(session_id)
        self._buf[:] = prefix
        codec.encode_into(event, self._buf, len(prefix))
        self._sock.send(self._buf)

    def reply(self, identity: bytes, message: m.Reply) -> None:
        self._sock.send(b"R" + bytes((len(identity),)) + identity + codec.encode(message))

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
        self._sock.send(b"S" + codec.encode_struct(summary))

    def storage(self, health: StorageHealth) -> None:
        self._sock.send(b"D" + codec.encode_struct(health))

    def close(self) -> None:
        self._sock.close(linger=0)


def inproc_endpoint(epoch: str) -> str:
    return f"inproc://orbitdock-gateway-{epoch}"
