"""The JSON-RPC side of one app-server connection: requests in flight, routes to sinks.

``RpcPeer`` holds what the reader thread of an ``AppServerProcess`` owns about the
protocol: the request ids, the pending-request table with its deadlines, the
thread-id -> sink routes and the queue of thread set-ups waiting for a slot. Nobody
but that reader thread touches them, so none of them is locked. It knows nothing
about processes or pipes: outgoing lines go to ``_send`` (the writer thread's queue,
in ``AppServerProcess``), incoming lines come in through ``_dispatch``.

Thread set-ups (``thread/start``, ``thread/resume``) are heavy for codex (a login-shell
snapshot, git probes, the rollout) and it works through them largely one after
another. At most ``codex.setups_in_flight`` are sent at once; the rest wait here, in
order, and each one's deadline starts when it is sent. So a burst (200 sessions
created at once, a dead process's sessions resumed) cannot time out requests that
codex has not even begun, and a timeout still means codex stalled.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from typing import Any, Callable, Protocol

from orbitdock.codex import jsonrpc as rpc
from orbitdock.config import CodexConfig

logger = logging.getLogger(__name__)

Callback = Callable[[Any, "rpc.RpcError | None"], None]  # (result, error)
# Account-level notifications carry no threadId; every hosted session wants them.
BROADCAST_METHODS = frozenset({"account/rateLimits/updated"})
SETUP_METHODS = frozenset({"thread/start", "thread/resume"})  # gated: see the docstring


class Sink(Protocol):
    """What a hosted session must offer the reader (all called on the reader thread)."""

    def on_notification(self, method: str, params: dict[str, Any]) -> None: ...

    def on_server_request(self, req_id: int | str, method: str, params: dict[str, Any]) -> None: ...

    def superseded(self) -> None: ...


class RpcPeer:
    """Requests, responses, notifications and server requests of one connection."""

    def __init__(self, config: CodexConfig):
        self._config = config
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, Callback, float]] = {}
        self._routes: dict[str, Sink] = {}
        # set-ups waiting for a slot: (method, params, callback, timeout), oldest first
        self._setups_waiting: deque[tuple[str, dict[str, Any] | None, Callback,
                                          float | None]] = deque()
        self._setups_sent: set[int] = set()  # request ids of set-ups in flight

    def _send(self, line: bytes) -> None:  # pragma: no cover - the process provides it
        raise NotImplementedError

    # ------------------------------------------------------------ for sinks and ops
    def request(self, method: str, params: dict[str, Any] | None, callback: Callback,
                timeout: float | None = None) -> None:
        """Send a request; ``callback(result, error)`` runs on the reader thread.

        Responses are matched by id, and each request fails on its own deadline
        (``timeout`` or ``request_timeout_s``, from when it is sent). Any number may be
        in flight at once, except thread set-ups (see the module docstring).
        """
        if method in SETUP_METHODS and \
                len(self._setups_sent) >= max(1, self._config.setups_in_flight):
            self._setups_waiting.append((method, params, callback, timeout))
            return
        req_id = next(self._ids)
        deadline = time.monotonic() + (timeout or self._config.request_timeout_s)
        self._pending[req_id] = (method, callback, deadline)
        if method in SETUP_METHODS:
            self._setups_sent.add(req_id)
        self._send(rpc.encode_request(req_id, method, params))

    def _settled(self, req_id: int) -> None:
        """A request got its answer (or timed out): a set-up's slot goes to the next one."""
        if req_id in self._setups_sent:
            self._setups_sent.discard(req_id)
            if self._setups_waiting:
                self.request(*self._setups_waiting.popleft())

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._send(rpc.encode_notification(method, params))

    def reply(self, req_id: int | str, result: Any) -> None:
        self._send(rpc.encode_result(req_id, result))

    def route(self, thread_id: str, sink: Sink) -> None:
        old = self._routes.get(thread_id)
        if old is not None and old is not sink:
            logger.warning("%s: thread %s re-attached; the previous session stops receiving",
                           self, thread_id)
            old.superseded()
        self._routes[thread_id] = sink

    def unroute(self, thread_id: str, sink: Sink) -> None:
        if self._routes.get(thread_id) is sink:
            del self._routes[thread_id]

    # ------------------------------------------------------------ for the reader loop
    def _next_timeout(self) -> float | None:
        """Seconds until the earliest request deadline (None: nothing in flight)."""
        if not self._pending:
            return None
        return max(0.0, min(d for _, _, d in self._pending.values()) - time.monotonic())

    def _dispatch(self, line: bytes) -> None:
        msg = rpc.parse_line(line, source=repr(self))
        try:
            if isinstance(msg, rpc.Response):
                self._on_response(msg)
            elif isinstance(msg, rpc.Notification):
                self._on_notification(msg)
            elif isinstance(msg, rpc.ServerRequest):
                self._on_server_request(msg)
        except Exception:  # a mapping bug must not take every hosted session down
            logger.exception("%s: handling %s failed: %s", self, type(msg).__name__,
                             rpc.raw_preview(line))

    def _on_response(self, msg: rpc.Response) -> None:
        entry = self._pending.pop(msg.id, None) if isinstance(msg.id, int) else None
        if entry is None:
            logger.warning("%s: response to unknown request id %r", self, msg.id)
            return
        self._settled(msg.id)  # type: ignore[arg-type]
        method, callback, _ = entry
        if msg.error is not None:
            logger.debug("%s: %s failed: %s", self, method, msg.error.message)
        callback(msg.result, msg.error)

    def _on_notification(self, msg: rpc.Notification) -> None:
        thread_id = msg.params.get("threadId")
        if thread_id is None:
            if msg.method in BROADCAST_METHODS:
                for sink in list(self._routes.values()):
                    sink.on_notification(msg.method, msg.params)
            else:
                logger.debug("%s: %s (no thread)", self, msg.method)
            return
        sink = self._routes.get(thread_id)
        if sink is None:
            logger.debug("%s: %s for unhosted thread %s", self, msg.method, thread_id)
            return
        sink.on_notification(msg.method, msg.params)

    def _on_server_request(self, msg: rpc.ServerRequest) -> None:
        sink = self._routes.get(msg.params.get("threadId", ""))
        if sink is None:
            # Unanswered, it would block that turn forever.
            logger.warning("%s: %s for unhosted thread %s; refusing", self, msg.method,
                           msg.params.get("threadId"))
            self._send(rpc.encode_error(msg.id, rpc.NO_SUCH_THREAD,
                                        "no session hosts this thread"))
            return
        sink.on_server_request(msg.id, msg.method, msg.params)

    def _call(self, method: str, callback: Callback, result: Any,
              error: rpc.RpcError | None) -> None:
        try:
            callback(result, error)
        except Exception:  # one session's bug must not stop the reader for all of them
            logger.exception("%s: callback for %s failed", self, method)

    def _expire(self) -> None:
        now = time.monotonic()
        for req_id in [i for i, (_, _, d) in self._pending.items() if d <= now]:
            method, callback, _ = self._pending.pop(req_id)
            self._settled(req_id)
            logger.warning("%s: %s timed out", self, method)
            self._call(method, callback, None,
                       rpc.RpcError(rpc.TIMEOUT, f"codex did not answer {method} in time"))

    def _close_peer(self, reason: str) -> None:
        """The connection is gone: fail every request in flight, forget the routes."""
        pending, self._pending = self._pending, {}
        waiting, self._setups_waiting = self._setups_waiting, deque()
        self._setups_sent.clear()
        for method, callback, _ in pending.values():
            self._call(method, callback, None, rpc.RpcError(rpc.PROCESS_EXITED, reason))
        for method, _params, callback, _timeout in waiting:
            self._call(method, callback, None, rpc.RpcError(rpc.PROCESS_EXITED, reason))
        self._routes.clear()
