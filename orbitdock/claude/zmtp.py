"""A ZeroMQ DEALER peer in the standard library: one request, one reply, one connection.

``orbitdock-hook`` starts once per Claude hook and claude waits for it, so its start-up
is the cost that matters (the target: p99 <= 100 ms and <= 3x a bare ``python -c pass``).
Importing pyzmq alone (its sugar layer, ``platform``, ``re``) took 100-220 ms on the
measuring host, more than the whole budget, and a ZeroMQ context starts I/O threads the
forwarder never needs. One request-reply on one fresh connection uses very little of
ZeroMQ, so this module speaks its wire protocol to the daemon's ROUTER itself
(ZMTP 3.x, rfc.zeromq.org 23/ZMTP and 37/ZMTP), NULL security mechanism only, over
``ipc://`` (a Unix socket) or ``tcp://``:

    greeting (64 octets each way) -> READY (Socket-Type DEALER) / READY (ROUTER)
    -> the request message -> the reply message

Commands the peer sends after the handshake are skipped (a PING gets its PONG). A
DEALER adds no envelope: the ROUTER sees the message's frames after the routing id
it gives the connection, and replies with those frames without it. The whole
exchange runs against one deadline; running out raises ``TimeoutError``, anything
else that goes wrong raises ``ZmtpError`` or ``OSError`` (nothing hangs, nothing is
retried: the caller decides what a failed request means).
"""

from __future__ import annotations

import struct
import time

# The C layer of ``socket``: the Python layer's import (enum conversions of every
# constant, selectors) costs the forwarder as much as its whole bare start-up, and the
# methods used here (connect, settimeout, sendall, recv, setsockopt) are the C ones anyway.
import _socket as socket

SIGNATURE_HEAD, SIGNATURE_TAIL = 0xFF, 0x7F
VERSION = (3, 1)  # what we send; a peer of any 3.x is accepted (37/ZMTP: accept higher)
MECHANISM = b"NULL"
GREETING = (bytes([SIGNATURE_HEAD]) + bytes(8) + bytes([SIGNATURE_TAIL]) + bytes(VERSION)
            + MECHANISM.ljust(20, b"\0") + b"\0"  # as-server: 0 (NULL has no roles)
            + bytes(31))
GREETING_SIZE = 64
# Frame flags (the flags octet; bits 7-3 are reserved and must be zero)
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
RESERVED = 0xF8
SOCKET_TYPE = b"DEALER"
PEER_SOCKET_TYPE = b"ROUTER"


class ZmtpError(Exception):
    """The peer is not a ZMTP 3.x ROUTER we can talk to, or broke the protocol."""


def request(endpoint: str, frames: list[bytes], timeout_s: float,
            max_frame_bytes: int) -> list[bytes]:
    """Send one message of ``frames`` to the ROUTER at ``endpoint`` and return the frames
    of the first message it sends back, all within ``timeout_s``. A reply frame over
    ``max_frame_bytes`` is refused (``ZmtpError``) before it is read."""
    deadline = time.monotonic() + timeout_s
    sock = connect(endpoint, deadline)
    try:
        link = Link(sock, deadline, max_frame_bytes)
        link.handshake()
        link.send_message(frames)
        return link.read_message()
    finally:
        sock.close()


def connect(endpoint: str, deadline: float) -> socket.socket:
    """A connected stream socket for ``ipc://PATH`` or ``tcp://HOST:PORT`` (every address
    tried before ``deadline``, a ``time.monotonic()``)."""
    scheme, sep, address = endpoint.partition("://")
    if not sep or scheme not in ("ipc", "tcp"):
        raise ZmtpError(f"unsupported endpoint {endpoint!r} (ipc:// or tcp:// only)")
    if scheme == "ipc":
        # libzmq's "ipc://@name" is a Linux abstract socket
        path = "\0" + address[1:] if address.startswith("@") else address
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return sock
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ZmtpError(f"tcp endpoint without a port: {endpoint!r}")
    failure: OSError = OSError(f"no address for {endpoint!r}")
    for family, kind, proto, _name, where in socket.getaddrinfo(
            host.strip("[]"), int(port), 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(where)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small frames, now
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:  # the next address (localhost: ::1, then 127.0.0.1)
            sock.close()
            failure = exc
    raise failure


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no answer within the deadline")
    return left


def command(name: bytes, data: bytes = b"") -> bytes:
    """One command frame: a name (size-prefixed) and its data."""
    body = bytes([len(name)]) + name + data
    return frame_header(COMMAND, len(body)) + body


def frame_header(flags: int, size: int) -> bytes:
    if size > 255:
        return struct.pack(">BQ", flags | LONG, size)
    return struct.pack(">BB", flags, size)


def metadata(properties: dict[bytes, bytes]) -> bytes:
    """READY's properties: a size-prefixed name, then a 4-octet size and the value."""
    return b"".join(bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
                    for name, value in properties.items())


def parse_metadata(data: bytes) -> dict[bytes, bytes]:
    """READY's properties, names lower-cased (they are case-insensitive)."""
    properties, at = {}, 0
    while at < len(data):
        size = data[at]
        name = data[at + 1:at + 1 + size]
        at += 1 + size
        if size == 0 or len(name) < size or at + 4 > len(data):
            raise ZmtpError("malformed READY metadata")
        (value_size,) = struct.unpack_from(">I", data, at)
        at += 4
        if at + value_size > len(data):
            raise ZmtpError("malformed READY metadata")
        properties[name.lower()] = data[at:at + value_size]
        at += value_size
    return properties


def split_command(body: bytes) -> tuple[bytes, bytes]:
    """A command frame's body -> (name, data)."""
    if not body or len(body) < 1 + body[0]:
        raise ZmtpError("malformed command frame")
    return body[1:1 + body[0]], body[1 + body[0]:]


class Link:
    """One connection's reads and writes, every one bounded by the same deadline."""

    def __init__(self, sock: socket.socket, deadline: float, max_frame_bytes: int) -> None:
        self.sock = sock
        self.deadline = deadline
        self.max_frame_bytes = max_frame_bytes

    def write(self, data: bytes) -> None:
        self.sock.settimeout(_left(self.deadline))
        self.sock.sendall(data)  # the timeout bounds the whole call (Python >= 3.5)

    def read(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            self.sock.settimeout(_left(self.deadline))
            chunk = self.sock.recv(size - len(data))  # size: checked against the limit
            if not chunk:
                raise ZmtpError("the peer closed the connection")
            data += chunk
        return bytes(data)

    def handshake(self) -> None:
        """Greetings, then the NULL mechanism's READY both ways (we are the client)."""
        self.write(GREETING)
        # One octet first: a peer that is not ZMTP at all is told apart at once.
        if self.read(1)[0] != SIGNATURE_HEAD:
            raise ZmtpError("not a ZMTP peer (bad greeting signature)")
        greeting = self.read(GREETING_SIZE - 1)
        if greeting[8] != SIGNATURE_TAIL:
            raise ZmtpError("not a ZMTP peer (bad greeting signature)")
        if greeting[9] < 3:
            raise ZmtpError(f"peer speaks ZMTP {greeting[9]}.{greeting[10]}, not 3.x")
        mechanism = greeting[11:31].rstrip(b"\0")
        if mechanism != MECHANISM:
            raise ZmtpError(f"peer wants the {mechanism.decode('ascii', 'replace')} "
                            "security mechanism, not NULL")
        self.write(command(b"READY", metadata({b"Socket-Type": SOCKET_TYPE})))
        flags, body = self.read_frame()
        if not flags & COMMAND:
            raise ZmtpError("peer sent a message before its READY")
        name, data = split_command(body)
        if name == b"ERROR":
            reason = data[1:1 + data[0]] if data else b""
            raise ZmtpError(f"peer refused the handshake: {reason.decode('utf-8', 'replace')}")
        if name != b"READY":
            raise ZmtpError(f"expected READY, got {name.decode('ascii', 'replace')}")
        socket_type = parse_metadata(data).get(b"socket-type")
        if socket_type != PEER_SOCKET_TYPE:
            raise ZmtpError(f"peer is a {socket_type!r} socket, not a ROUTER")

    def read_frame(self) -> tuple[int, bytes]:
        """One frame: (flags, body)."""
        flags = self.read(1)[0]
        if flags & RESERVED:
            raise ZmtpError(f"reserved frame flags set ({flags:#04x})")
        size = struct.unpack(">Q", self.read(8))[0] if flags & LONG else self.read(1)[0]
        if size > self.max_frame_bytes:
            raise ZmtpError(f"frame of {size} bytes over the limit of {self.max_frame_bytes}")
        return flags, self.read(size)

    def send_message(self, frames: list[bytes]) -> None:
        if not frames:
            raise ValueError("a message has at least one frame")
        last = len(frames) - 1
        self.write(b"".join(frame_header(MORE if k < last else 0, len(frame)) + frame
                            for k, frame in enumerate(frames)))

    def read_message(self) -> list[bytes]:
        """The next message's frames; commands in between are handled and skipped."""
        frames: list[bytes] = []
        while True:
            flags, body = self.read_frame()
            if flags & COMMAND:
                name, data = split_command(body)
                if name == b"PING":  # 37/ZMTP: answer with PONG echoing its context
                    self.write(command(b"PONG", data[2:18]))
                elif name == b"ERROR":
                    raise ZmtpError("peer sent ERROR")
                continue
            frames.append(body)
            if not flags & MORE:
                return frames
