"""A scripted stand-in for the OpenAI Responses API, so codex runs with no network,
and for the Anthropic Messages API (``orbitdock.sim.messages_api``), so claude does.

Threads: the server thread owns the listening socket (``serve_forever``); each
connection gets its own handler thread that alone writes to that connection.
Shared state (the script queue, the request log, counters, the release
generation) sits behind one lock. This is a test/demo tool inside the package,
not the daemon, so a plain lock is the simplest correct choice here.

Every connection is closed after its response: codex runs with
``request_max_retries = 0``, so a pooled keep-alive connection that the server had
meanwhile dropped would fail a turn for no reason.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from orbitdock.sim.messages_api import build_messages_plan, count_tokens, message_of, request_model
from orbitdock.sim.script import (
    SCRIPT_EXHAUSTED_TEXT,
    Hold,
    build_plan,
    matches,
    sse_frame,
    validate_script,
)

logger = logging.getLogger(__name__)

# How often serve_forever checks for shutdown; bounds how long stop() waits for it.
SERVE_POLL_S = 0.05
# A held stream re-checks for release, stop and client disconnect this often.
HOLD_POLL_S = 0.05
# Upper bound on any scripted hold, so a typo like "hold": 1e9 cannot park a thread forever.
MAX_HOLD_S = 600.0
# Upper bound on a scripted delay between deltas, for the same reason.
MAX_DELAY_S = 10.0
# A client that stalls mid-request (or stops reading the stream) is dropped after this long.
READ_TIMEOUT_S = 10.0
# stop() waits this long for the server thread to finish.
STOP_JOIN_S = 5.0
# Listen backlog (socketserver's default is 5). Hundreds of app-servers may connect at
# once, and codex runs with request_max_retries=0: a refused connection fails the turn
# ("stream disconnected before completion: error sending request").
LISTEN_BACKLOG = 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a held stream must never keep the process alive
    allow_reuse_address = True
    sim: "SimServer"

    def __init__(self, address: tuple[str, int], backlog: int):
        self.request_queue_size = backlog  # read by server_activate() -> listen()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print to stderr and move on: count it, so a run can tell
        # a model-server fault from a codex one
        logger.exception("sim: handler for %s failed", client_address)
        self.sim.incident("handler_error")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked encoding needs 1.1
    timeout = READ_TIMEOUT_S
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("%s " + format, self.address_string(), *args)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        # a request that timed out (READ_TIMEOUT_S) or did not parse: the client gets
        # no reply, so a turn may fail for it
        logger.warning("sim: %s " + format, self.address_string(), *args)
        self.server.sim.incident("request_error")

    # --- routing -------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        sim = self.server.sim
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/_mock/requests":
            self._send_json(sim.requests())
        elif path == "/_mock/state":
            self._send_json(sim.state())
        elif path.endswith("/models"):
            # codex never asks a custom provider for models; answer both known shapes anyway.
            self._send_json({"object": "list", "data": [], "models": []})
        else:
            self._send_json({"error": f"no such endpoint: GET {self.path}"}, HTTPStatus.NOT_FOUND)

    def do_HEAD(self) -> None:  # noqa: N802 (stdlib naming)
        # claude probes its base URL with HEAD before its first request: an empty 200.
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
        sim = self.server.sim
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._read_body()
        if path.endswith("/responses"):
            self._serve_response(body)
            return
        if path.endswith("/messages/count_tokens"):
            self._send_json(count_tokens(_parse(body)))
            return
        if path.endswith("/messages"):
            self._serve_messages(body)
            return
        try:
            if path == "/_mock/script":
                sim.set_script(json.loads(body or b"[]"))
            elif path == "/_mock/append":
                sim.append(json.loads(body or b"[]"))
            elif path == "/_mock/reset":
                sim.reset()
            elif path == "/_mock/release":
                sim.release()
            else:
                self._send_json({"error": f"no such endpoint: POST {self.path}"},
                                HTTPStatus.NOT_FOUND)
                return
        except ValueError as exc:  # bad JSON or a script that does not validate
            self._send_json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
            return
        self._send_json({"ok": True, **sim.state()})

    # --- helpers -------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, payload: Any, status: int = HTTPStatus.OK) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _serve_response(self, body: bytes) -> None:
        self._stream_plan(build_plan(self.server.sim.take_reply(body)))

    def _serve_messages(self, body: bytes) -> None:
        sim = self.server.sim
        parsed = _parse(body)
        reply = sim.take_reply(body)
        try:
            # The API streams only when asked: claude's set_model probe (max_tokens 1)
            # sends no "stream" key at all and expects the whole Message.
            if isinstance(parsed, dict) and parsed.get("stream") is not True:
                self._send_json(message_of(reply, request_model(parsed)))
                return
            plan = build_messages_plan(reply, request_model(parsed))
        except ValueError as exc:  # a Responses-only reply taken by a Messages request
            logger.error("sim: %s", exc)
            sim.incident("script_error")
            self._send_json({"type": "error", "error": {"type": "invalid_request_error",
                                                        "message": str(exc)}},
                            HTTPStatus.BAD_REQUEST)
            return
        self._stream_plan(plan)

    def _stream_plan(self, plan: Any) -> None:
        sim = self.server.sim
        if plan.status != 200:
            self._send_json(plan.error_body, plan.status)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        delay_s = min(plan.delay_s, MAX_DELAY_S)
        try:
            for event in plan.events:
                if isinstance(event, Hold):
                    if not sim.hold(min(event.seconds, MAX_HOLD_S), self.connection):
                        logger.info("sim: client left during a hold; stream abandoned")
                        sim.incident("stream_cut")
                        return
                    continue
                if delay_s and isinstance(event, dict) and event["type"].endswith(
                        (".delta", "_delta")):
                    time.sleep(delay_s)
                self._write_chunk(sse_frame(event))
            self.wfile.write(b"0\r\n\r\n")
        except OSError as exc:
            # codex hangs up on turn/interrupt (expected); a client that stops reading
            # for READ_TIMEOUT_S times out the write. Either way the stream is over.
            logger.info("sim: stream ended early (%s)", exc)
            sim.incident("stream_cut")


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body) if body else {}
    except ValueError:
        return {}


def _peer_closed(conn: socket.socket) -> bool:
    """True when the client hung up (readable with no data) without consuming anything."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return False
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class SimServer:
    """The scripted Responses API on 127.0.0.1; ``url`` is the base_url codex wants."""

    def __init__(self, script: list[dict] | None = None, host: str = "127.0.0.1",
                 port: int = 0, listen_backlog: int = LISTEN_BACKLOG):
        if listen_backlog < 1:
            raise ValueError(f"listen_backlog must be at least 1, got {listen_backlog}")
        self._host = host
        self._port = port
        self.listen_backlog = listen_backlog
        self._lock = threading.Lock()  # guards everything below (see module docstring)
        self._changed = threading.Condition(self._lock)
        self._script: list[dict] = validate_script(script or [])
        self._requests: list[dict] = []
        self._served = 0
        self._incidents: dict[str, int] = {}  # kind -> count (see incident())
        self._exhausted = 0
        self._held = 0
        self._release_generation = 0
        self._stopping = False
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        httpd = _HTTPServer((self._host, self._port), self.listen_backlog)
        httpd.sim = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": SERVE_POLL_S},
            name=f"sim-server:{httpd.server_address[1]}", daemon=True)
        self._thread.start()
        logger.info("sim: Responses API listening on %s", self.url)
        return self

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SimServer.url: call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def anthropic_url(self) -> str:
        """The value for claude's ``ANTHROPIC_BASE_URL`` (it appends ``/v1/messages``)."""
        return self.url.removesuffix("/v1")

    def stop(self) -> None:
        """Stop accepting, wake held streams so their threads end, close the socket."""
        with self._lock:
            self._stopping = True
            self._changed.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> "SimServer":
        return self if self._httpd is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- script control ------------------------------------------------------------

    def set_script(self, replies: list[dict]) -> None:
        replies = validate_script(replies)
        with self._lock:
            self._script = replies

    def append(self, replies: list[dict]) -> None:
        replies = validate_script(replies)
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Empty the script and the request log, release held streams, zero the counters."""
        with self._lock:
            self._script = []
            self._requests = []
            self._served = self._exhausted = 0
            self._incidents = {}
            self._release_generation += 1
            self._changed.notify_all()

    def release(self) -> None:
        """Release every stream held right now; later holds still park."""
        with self._lock:
            self._release_generation += 1
            self._changed.notify_all()

    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    def state(self) -> dict[str, int]:
        with self._lock:
            return {"remaining": len(self._script), "requests": len(self._requests),
                    "served": self._served, "exhausted": self._exhausted, "held": self._held}

    def incidents(self) -> dict[str, int]:
        """Connections that ended without a whole reply, by kind: ``request_error`` (timed
        out or unparsable; the client got nothing), ``handler_error`` (a bug here),
        ``stream_cut`` (the client hung up mid-stream: expected on an interrupt)."""
        with self._lock:
            return dict(self._incidents)

    def incident(self, kind: str) -> None:
        with self._lock:
            self._incidents[kind] = self._incidents.get(kind, 0) + 1

    # --- used by handler threads ---------------------------------------------------

    def take_reply(self, body: bytes) -> dict:
        """Log the request and consume the first reply whose ``match`` fits it."""
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = {"_unparsed": text}
        with self._lock:
            self._requests.append(parsed)
            for index, reply in enumerate(self._script):
                if matches(reply, text):
                    self._served += 1
                    return self._script.pop(index)
            self._exhausted += 1
            count = self._exhausted
        logger.warning("sim: script exhausted (%d time(s)); answering %r",
                       count, SCRIPT_EXHAUSTED_TEXT)
        return {"text": SCRIPT_EXHAUSTED_TEXT}

    def hold(self, seconds: float, conn: socket.socket) -> bool:
        """Park until release, stop or ``seconds``; False if the client hung up meanwhile."""
        deadline = time.monotonic() + seconds
        with self._lock:
            generation = self._release_generation
            self._held += 1
            try:
                while (self._release_generation == generation and not self._stopping
                       and (remaining := deadline - time.monotonic()) > 0):
                    self._changed.wait(min(HOLD_POLL_S, remaining))
                    if _peer_closed(conn):
                        return False
                return True
            finally:
                self._held -= 1
