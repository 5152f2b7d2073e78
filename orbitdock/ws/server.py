"""orbitdock-ws: the asyncio WebSocket + HTTP server in front of the daemon link.

Routes (all on ``ws.address:ws.port``):

- ``/ws``: the upstream OrbitDock WebSocket protocol (``orbitdock.ws.inbound`` /
  ``outbound``); off loopback it needs the token; every upgrade's Origin is checked;
- ``/health``: the daemon's status as JSON, 200 when it answers, 503 otherwise;
- ``/api/sessions/<id>/messages?before_sequence=&limit=``: older messages (upstream's REST
  paging, from the daemon's store; the token off loopback, as ``/ws``);
- ``/`` and ``/static/<file>``: the browser dashboard (static files of this package).

Each frame is encoded once (JSON, then the WebSocket frame) whatever the number of
clients, and goes to each connection at once (no task per frame); what a client has not read
waits in its own transport buffer, bounded by ``ws.send_buffer_bytes``: a client that
stops reading fills only its own buffer and is then dropped, the others are not slowed.
The daemon link (``orbitdock.ws.link``) runs on the same event loop: one thread owns
every socket.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import logging
import mimetypes
import re
import signal
import sys
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from orbitdock import __version__, logs
from orbitdock.config import Config, ConfigError, load
from orbitdock.paths import layout, prepare_dirs
from orbitdock.ws import access, inbound, outbound
from orbitdock.ws.link import Link

logger = logging.getLogger("orbitdock.ws")
STATIC = resources.files("orbitdock.ws") / "static"
LOG_FILE = "logs/orbitdock-ws.log"
MESSAGES_PATH = re.compile(r"^/api/sessions/([A-Za-z0-9_.-]{1,128})/messages$")


class _Peer:
    """One WebSocket client (event-loop thread only). Frames are written at once, without a
    task per frame; what the client has not read waits in its transport's buffer, bounded
    by ``ws.send_buffer_bytes``."""

    def __init__(self, ws: ServerConnection, limit: int):
        self.ws = ws
        self.limit = limit
        self.dropped = False

    def writable(self) -> bool:
        """False once the client is (or is now) dropped for not reading."""
        if self.dropped:
            return False
        transport = self.ws.transport
        if transport is None or transport.get_write_buffer_size() <= self.limit:
            return True
        self.drop()
        return False

    def drop(self) -> None:
        """The client stopped reading: cut it loose (it can resume with since_revision);
        the other clients never wait for it."""
        self.dropped = True
        logger.warning("dropping a client %d bytes behind",
                       self.ws.transport.get_write_buffer_size(),
                       extra={"peer": str(self.ws.remote_address)})
        self.ws.transport.abort()  # a close handshake would queue behind what it ignores

    def push(self, frame: bytes) -> None:
        self.write((text_frame(frame),))

    def write(self, wire: list[bytes] | tuple[bytes, ...]) -> None:
        """Whole WebSocket frames (``text_frame``), in one write: per frame and client, the
        send syscall is the bridge's main cost (profiled at 200 sessions x 10 clients)."""
        ws = self.ws
        if not self.writable() or ws.protocol.state is not State.OPEN:
            return
        ws.transport.write(b"".join(wire))


def text_frame(payload: bytes) -> bytes:
    """A server's text frame on the wire, made once for every client that gets it: a
    server's frames are not masked, and with no extension negotiated (``compression=None``:
    permessage-deflate would cost CPU per frame and client, for nothing on loopback) the
    bytes are the same for every connection. Whole frames only, so the websockets
    protocol's own frames (pings, close) never interleave with one."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


class Bridge:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.token = None if access.is_loopback(cfg.ws.address) else access.ensure_token(cfg)
        self.link = Link(cfg, self._deliver, __version__)
        self.peers: dict[int, _Peer] = {}
        self._ids = itertools.count(1)
        self._encode = msgspec.json.Encoder().encode
        self.loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ from the link
    def _deliver(self, batch: list[tuple[tuple[int, ...], bytes]]) -> None:
        """One batch of the link's frames: each client gets its share in one write."""
        per_peer: dict[int, list[bytes]] = {}
        for conn_ids, payload in batch:
            wire = text_frame(payload)
            for conn_id in conn_ids:
                per_peer.setdefault(conn_id, []).append(wire)
        for conn_id, frames in per_peer.items():
            peer = self.peers.get(conn_id)
            if peer is not None:
                peer.write(frames)

    # ------------------------------------------------------------ HTTP
    def _respond(self, status: int, body: bytes, content_type: str) -> Response:
        headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")])
        return Response(status, http.HTTPStatus(status).phrase, headers, body)

    async def process_request(self, connection: ServerConnection,
                              request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/ws":
            given = access.request_token(request.path, request.headers.get("Authorization"))
            if not access.token_ok(self.token, given):
                logger.warning("refused an upgrade without the right token",
                               extra={"peer": str(connection.remote_address)})
                return self._respond(401, b"missing or wrong token\n", "text/plain")
            origin = request.headers.get("Origin")
            if not access.origin_ok(origin, request.headers.get("Host"), self.cfg):
                logger.warning("refused an upgrade from origin %r", origin,
                               extra={"peer": str(connection.remote_address)})
                return self._respond(403, b"origin not allowed\n", "text/plain")
            return None  # the upgrade goes on
        if path == "/health":
            return await self._health()
        page = MESSAGES_PATH.match(path)
        if page:
            given = access.request_token(request.path, request.headers.get("Authorization"))
            if not access.token_ok(self.token, given):
                return self._respond(401, b"missing or wrong token\n", "text/plain")
            return await self._messages(page.group(1), request.path)
        name = "index.html" if path in ("/", "/index.html") else (
            path[len("/static/"):] if path.startswith("/static/") else None)
        if name and "/" not in name and not name.startswith("."):
            resource = STATIC / name
            if resource.is_file():
                ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
                if ctype.startswith("text/") or ctype.endswith("javascript"):
                    ctype += "; charset=utf-8"
                return self._respond(200, resource.read_bytes(), ctype)
        return self._respond(404, b"not found\n", "text/plain")

    async def _health(self) -> Response:
        return await self._json(self.link.health(), self.cfg.ws.health_timeout_s)

    async def _messages(self, session_id: str, path_and_query: str) -> Response:
        """Upstream's ``GET /api/sessions/{id}/messages?before_sequence=&limit=``: older
        pages than a snapshot's window, from the daemon's store (``get_messages``)."""
        query = parse_qs(urlsplit(path_and_query).query)
        try:
            before = int(query["before_sequence"][0]) if "before_sequence" in query else None
            limit = int(query.get("limit", ["50"])[0])
        except ValueError:
            return self._respond(400, self._encode(outbound.error(
                "invalid_argument", "before_sequence and limit are integers", session_id)),
                "application/json")
        limit = max(1, min(limit, self.cfg.ws.page_limit))
        return await self._json(self.link.messages(session_id, before, limit),
                                self.cfg.client.request_timeout_s + 1)

    async def _json(self, future, timeout: float) -> Response:
        try:
            status, body = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            status, body = 503, {"status": "timeout", "error": "the daemon link did not answer"}
        return self._respond(status, self._encode(body), "application/json")

    # ------------------------------------------------------------ WebSocket
    def _refuse(self, peer: _Peer, code: str, text: str, sid: str | None = None) -> None:
        peer.push(self._encode(outbound.error(code, text, sid)))

    async def handler(self, ws: ServerConnection) -> None:
        conn_id = next(self._ids)
        # frames are made once for every client (text_frame): no extension may change them
        if ws.protocol.extensions:
            raise RuntimeError("a WebSocket extension was negotiated: serve with compression=None")
        peer = _Peer(ws, self.cfg.ws.send_buffer_bytes)
        self.peers[conn_id] = peer
        self.link.open(conn_id)
        limit = self.cfg.ws.max_frame_bytes
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    self._refuse(peer, "parse_error", "binary frames are not accepted; send "
                                 "one JSON object per text frame")
                    continue
                if len(raw) > limit or (len(raw) * 4 > limit and len(raw.encode()) > limit):
                    self._refuse(peer, "too_large", f"frame over {limit} bytes refused")
                    continue
                try:
                    msg = inbound.parse(raw)
                except inbound.Refused as exc:
                    self._refuse(peer, exc.code, exc.message, exc.session_id)
                    continue
                self.link.message(conn_id, msg)
        except ConnectionClosed:
            pass
        finally:
            self.peers.pop(conn_id, None)
            self.link.close(conn_id)

    async def serve(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.link.start()
        try:
            await self._serve(stop, ready)
        finally:
            self.link.stop()

    async def _serve(self, stop: asyncio.Event, ready: asyncio.Event | None) -> None:
        ws = self.cfg.ws
        async with serve(self.handler, ws.address, ws.port,
                         process_request=self.process_request,
                         max_size=ws.hard_frame_bytes, ping_interval=ws.ping_interval_s,
                         close_timeout=ws.close_timeout_s, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            logger.info("orbitdock-ws listening on http://%s:%d/ (ws at /ws)", ws.address, port,
                        extra={"token_required": self.token is not None})
            if ready is not None:
                ready.set()
            await stop.wait()


@click.command(context_settings={"auto_envvar_prefix": "ORBITDOCK_WS_CLI"})
@click.option("--home", "data_dir", envvar="ORBITDOCK_HOME",
              help="Data dir of the daemon to bridge (default ~/.orbitdock).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Config file (default <data dir>/orbitdock.toml).")
@click.option("--address", help="Bind address (ws.address); off loopback a token is required.")
@click.option("--port", type=int, help="Port (ws.port).")
@click.option("--log-level", help="DEBUG, INFO, WARNING ...")
def main(data_dir, config_file, address, port, log_level) -> None:
    """Serve the upstream OrbitDock WebSocket protocol and the dashboard for orbitdockd."""
    try:
        cfg = load(config_file, overrides={"paths.data_dir": data_dir, "ws.address": address,
                                           "ws.port": port, "logging.level": log_level})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    lay = layout(cfg)
    prepare_dirs(lay)
    logs.setup(cfg.logging.level, lay.data_dir / LOG_FILE if cfg.logging.file else None,
               cfg.logging.stderr)
    # one INFO line per HTTP request and connection would drown the bridge's own log
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        asyncio.run(_run(cfg))
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(f"cannot serve on {cfg.ws.address}:{cfg.ws.port}: {exc}") \
            from exc


async def _run(cfg: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bridge = Bridge(cfg)
    await bridge.serve(stop)


def run_cli(argv: list[str] | None = None) -> Any:
    return main.main(args=argv, prog_name="orbitdock-ws")


if __name__ == "__main__":
    sys.exit(run_cli())
