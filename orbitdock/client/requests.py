"""Client library, request side: find the daemon, send requests, wait for replies.

``Client`` is a blocking DEALER with per-request ids and timeouts. The live side
(exact mirrors kept by snapshot + gap-free deltas) is ``orbitdock.client.subscription``.
Both are exported by the ``orbitdock.client`` package, so every client imports from
one place. A ``Client`` belongs to the thread that made it.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from typing import Any

import zmq

from orbitdock.config import Config
from orbitdock.paths import layout, read_runtime_file
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m


class ClientError(Exception):
    """Base of every client-side failure."""


class DaemonNotRunning(ClientError):
    pass


class RequestTimeout(ClientError):
    pass


class RemoteError(ClientError):
    def __init__(self, code: str, message: str, session_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.session_id = code, message, session_id


@dataclass(frozen=True)
class Endpoints:
    request: str
    events: str
    pid: int | None = None


def find_daemon(cfg: Config) -> Endpoints:
    """Endpoints of the daemon serving this config's data dir; DaemonNotRunning if none."""
    lay = layout(cfg)
    info = read_runtime_file(lay)
    if info is None:
        raise DaemonNotRunning(f"orbitdockd is not running for {lay.data_dir} "
                               f"(no {lay.runtime_file.name}); start it with `orbitdockd`")
    pid = int(info.get("pid", 0))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise DaemonNotRunning(f"orbitdockd (pid {pid}) for {lay.data_dir} is not running; "
                               "it left a stale runtime file") from None
    except PermissionError:
        pass
    return Endpoints(info["request_endpoint"], info["event_endpoint"], pid)


_ids = itertools.count(1)


class Client:
    """Blocking request/reply over a DEALER socket."""

    def __init__(self, endpoints: Endpoints, *, timeout: float = 5.0,
                 ctx: zmq.Context | None = None):
        self.endpoints = endpoints
        self.timeout = timeout
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        # Queue only to a live connection, so a request never lands on a later daemon.
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.sock.connect(endpoints.request)
        self._prefix = f"{os.getpid()}-{id(self):x}-"

    def new_id(self) -> str:
        return f"{self._prefix}{next(_ids)}"

    def send(self, msg: m.Request) -> str:
        """Send without waiting; returns the request id."""
        if msg.id is None:
            msg.id = self.new_id()
        self.send_raw(codec.encode(msg), self.timeout)
        return msg.id

    def send_raw(self, payload: bytes, timeout: float | None = None) -> None:
        if not self.sock.poll(int((timeout or self.timeout) * 1000), zmq.POLLOUT):
            raise RequestTimeout(f"orbitdockd at {self.endpoints.request} is not accepting "
                                 "requests (not running? check ORBITDOCK_HOME or --endpoint)")
        self.sock.send(payload)

    def recv_reply(self, timeout: float | None = None) -> m.Wire | None:
        if not self.sock.poll(int((self.timeout if timeout is None else timeout) * 1000)):
            return None
        return codec.decode_inbound(self.sock.recv())

    def request(self, msg: m.Request, timeout: float | None = None) -> m.Reply:
        """Send and wait for the matching reply; raises RemoteError for an ``error`` reply."""
        timeout = self.timeout if timeout is None else timeout
        request_id = self.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout(
                    f"no reply to {type(msg).__name__} within {timeout:.1f}s "
                    "(daemon not reachable? check ORBITDOCK_HOME; slow? raise --timeout)")
            reply = self.recv_reply(left)
            if reply is None or reply.id != request_id:
                continue  # a late reply to an earlier, timed-out request
            if isinstance(reply, m.Error):
                raise RemoteError(reply.code, reply.message, reply.session_id)
            return reply

    def close(self) -> None:
        self.sock.close(linger=0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

