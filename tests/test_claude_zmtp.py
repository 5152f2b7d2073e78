"""The forwarder's own ZMTP peer (orbitdock/claude/zmtp.py) against a real libzmq ROUTER
(pyzmq, in a thread of the test) and against raw sockets that are not ZeroMQ at all;
then the forwarder script itself against such endpoints and against a real daemon on
loopback tcp. Every wait is bounded."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import zmq

from claude_env import INSTALLED_COMMAND, spool_files, wait_session
from orbitdock.claude import zmtp

TIMEOUT_S = 5.0  # a request that should succeed
SHORT_S = 0.5  # a request that should time out
LIMIT = 1 << 20


@pytest.fixture
def short_dir():
    """A short directory for ipc sockets (a Unix socket path has ~107 bytes)."""
    path = tempfile.mkdtemp(prefix="odzmtp-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["ipc", "tcp"])
def endpoint(request, short_dir):
    return (f"ipc://{short_dir}/router.sock" if request.param == "ipc"
            else "tcp://127.0.0.1:*")


class Router:
    """A real ROUTER in a thread: answers each request with ``reply(frames)`` after
    ``delay_s`` and records what it received (routing id and frames)."""

    def __init__(self, endpoint: str, reply=None, delay_s: float = 0.0, **options: int):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        for name, value in options.items():
            self.sock.setsockopt(getattr(zmq, name), value)
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.reply = reply
        self.delay_s = delay_s
        self.received: list[list[bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.sock.poll(50):
                continue
            frames = self.sock.recv_multipart()
            self.received.append(frames)
            if self.reply is not None:
                time.sleep(self.delay_s)
                self.sock.send_multipart([frames[0], *self.reply(frames[1:])])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close(0)
        self.ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawServer:
    """A listening socket that is not ZeroMQ: each connection gets ``answer`` (bytes),
    then is closed, or kept open and silent when ``hold`` is set."""

    def __init__(self, short_dir: str, kind: str, answer: bytes = b"", hold: bool = False):
        if kind == "ipc":
            path = os.path.join(short_dir, "raw.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            self.endpoint = f"ipc://{path}"
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.endpoint = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.answer, self.hold = answer, hold
        self.received = bytearray()
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(0.2)
            try:
                self.received += conn.recv(64)
            except OSError:
                pass
            conn.sendall(self.answer)
            if self.hold:
                self._held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------ against libzmq
def test_one_request_reaches_the_router_as_a_dealers_message(endpoint):
    with Router(endpoint, reply=lambda frames: [b"ack:" + frames[-1]]) as router:
        assert zmtp.request(router.endpoint, [b"hello"], TIMEOUT_S, LIMIT) == [b"ack:hello"]
        # a DEALER adds no delimiter: the ROUTER reads [routing id, payload]
        assert len(router.received) == 1 and router.received[0][1:] == [b"hello"]


def test_long_frames_both_ways_and_a_multi_frame_reply(endpoint):
    big_request = bytes(range(256)) * 5  # 1280 bytes: a long frame
    big_reply = b"r" * 70_000
    with Router(endpoint, reply=lambda frames: [b"", b"x" * 255, big_reply,
                                                frames[0]]) as router:
        reply = zmtp.request(router.endpoint, [big_request, b"second"], TIMEOUT_S, LIMIT)
        assert reply == [b"", b"x" * 255, big_reply, big_request]
        assert router.received[0][1:] == [big_request, b"second"]


def test_a_router_that_never_answers_times_out(endpoint):
    with Router(endpoint) as router:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            zmtp.request(router.endpoint, [b"anyone?"], SHORT_S, LIMIT)
        elapsed = time.monotonic() - started
        assert SHORT_S <= elapsed < SHORT_S + 1.0
        assert router.received  # it was delivered: only the reply is missing


def test_pings_while_waiting_are_answered_and_skipped(endpoint):
    """The ROUTER heartbeats every 20 ms and drops a peer silent for 150 ms; a reply
    800 ms late still arrives because every PING got its PONG."""
    with Router(endpoint, reply=lambda frames: [b"late"], delay_s=0.8,
                HEARTBEAT_IVL=20, HEARTBEAT_TIMEOUT=150) as router:
        assert zmtp.request(router.endpoint, [b"wait"], TIMEOUT_S, LIMIT) == [b"late"]


def test_a_reply_frame_over_the_limit_is_refused_unread(endpoint):
    with Router(endpoint, reply=lambda frames: [b"z" * 5000]) as router:
        with pytest.raises(zmtp.ZmtpError, match="over the limit"):
            zmtp.request(router.endpoint, [b"big?"], TIMEOUT_S, 4096)


def test_a_socket_that_is_not_a_router_is_refused(short_dir):
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    try:
        pull.bind(f"ipc://{short_dir}/pull.sock")
        with pytest.raises(zmtp.ZmtpError):
            zmtp.request(f"ipc://{short_dir}/pull.sock", [b"x"], TIMEOUT_S, LIMIT)
    finally:
        pull.close(0)
        ctx.term()


# ------------------------------------------------------------------ not ZeroMQ
@pytest.mark.parametrize("kind", ["ipc", "tcp"])
def test_a_peer_closing_mid_greeting_is_an_error(short_dir, kind):
    half = zmtp.GREETING[:20]  # a ZMTP 3 greeting cut short
    with RawServer(short_dir, kind, answer=half) as server:
        started = time.monotonic()
        with pytest.raises(zmtp.ZmtpError, match="closed"):
            zmtp.request(server.endpoint, [b"x"], TIMEOUT_S, LIMIT)
        assert time.monotonic() - started < TIMEOUT_S / 2
        assert bytes(server.received[:10]) == zmtp.GREETING[:10]  # we greeted first


@pytest.mark.parametrize("kind", ["ipc", "tcp"])
def test_a_peer_that_is_not_zmtp_is_an_error_not_a_hang(short_dir, kind):
    # it answers and keeps the connection open: we must not wait for 63 more octets
    with RawServer(short_dir, kind, answer=b"HTTP/1.1 400 Bad Request\r\n\r\n",
                   hold=True) as server:
        started = time.monotonic()
        with pytest.raises(zmtp.ZmtpError, match="not a ZMTP peer"):
            zmtp.request(server.endpoint, [b"x"], TIMEOUT_S, LIMIT)
        assert time.monotonic() - started < TIMEOUT_S / 2


@pytest.mark.parametrize("kind", ["ipc", "tcp"])
def test_a_peer_that_never_greets_times_out(short_dir, kind):
    with RawServer(short_dir, kind, hold=True) as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            zmtp.request(server.endpoint, [b"x"], SHORT_S, LIMIT)
        assert time.monotonic() - started < SHORT_S + 1.0


def test_an_older_zmtp_peer_is_refused(short_dir):
    zmtp2 = b"\xff" + bytes(8) + b"\x7f" + b"\x01\x05" + bytes(52)  # ZMTP 2.0 greeting
    with RawServer(short_dir, "ipc", answer=zmtp2, hold=True) as server:
        with pytest.raises(zmtp.ZmtpError, match="not 3.x"):
            zmtp.request(server.endpoint, [b"x"], TIMEOUT_S, LIMIT)


def test_nothing_listening_and_bad_endpoints(short_dir):
    with pytest.raises(OSError):
        zmtp.request(f"ipc://{short_dir}/nobody.sock", [b"x"], TIMEOUT_S, LIMIT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(OSError):
            zmtp.request(f"tcp://127.0.0.1:{port}", [b"x"], TIMEOUT_S, LIMIT)
    for bad in ("inproc://x", "tcp://127.0.0.1", "udp://127.0.0.1:9"):
        with pytest.raises(zmtp.ZmtpError):
            zmtp.request(bad, [b"x"], TIMEOUT_S, LIMIT)


# ------------------------------------------------------------------ the forwarder
def _fake_daemon_home(root: str, endpoint: str, hook_timeout_s: float) -> Path:
    """A home whose runtime file names ``endpoint`` (and a live pid: ours)."""
    home = Path(root) / "home"
    home.mkdir(mode=0o700)
    with open(home / "orbitdockd.json", "w") as out:
        json.dump({"pid": os.getpid(), "request_endpoint": endpoint,
                   "claude": {"hook_timeout_s": hook_timeout_s, "permission_wait_s": 1.0,
                              "max_frame_bytes": LIMIT}}, out)
    return home


def _run_forwarder(home: Path, event: str, payload: dict) -> tuple[subprocess.CompletedProcess,
                                                                   float]:
    started = time.monotonic()
    proc = subprocess.run([*shlex.split(INSTALLED_COMMAND), event],
                          input=json.dumps(payload).encode(),
                          env=dict(os.environ, ORBITDOCK_HOME=str(home)), capture_output=True,
                          timeout=30)
    return proc, time.monotonic() - started


@pytest.mark.parametrize("case", ["silent", "not-zmtp", "refused"])
def test_forwarder_spools_when_the_endpoint_fails(short_dir, case):
    """Whatever breaks between the forwarder and the daemon, the event is spooled, the
    reason logged, the exit code 0, and the wait bounded by hook_timeout_s."""
    payload = {"session_id": "zmtp-1", "hook_event_name": "Stop", "cwd": "/"}
    if case == "refused":
        home = _fake_daemon_home(short_dir, f"ipc://{short_dir}/nobody.sock", 0.5)
        proc, elapsed = _run_forwarder(home, "Stop", payload)
    else:
        answer = b"" if case == "silent" else b"SSH-2.0-OpenSSH_9.6\r\n"
        with RawServer(short_dir, "tcp", answer=answer, hold=True) as server:
            home = _fake_daemon_home(short_dir, server.endpoint, 0.5)
            proc, elapsed = _run_forwarder(home, "Stop", payload)
    assert proc.returncode == 0 and proc.stdout == b""
    assert elapsed < 10
    spooled = spool_files(home)
    assert len(spooled) == 1 and json.loads(spooled[0].read_text())["event"] == "Stop"
    log = (home / "logs" / "hooks.log").read_text()
    expected = {"silent": "no answer from orbitdockd within 0.5s; spooled",
                "not-zmtp": "not a ZMTP peer", "refused": "FileNotFoundError"}[case]
    assert expected in log


def test_forwarder_reaches_a_daemon_on_loopback_tcp(daemon_factory, tmp_path):
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    daemon = daemon_factory("--request-endpoint", f"tcp://127.0.0.1:{ports[0]}",
                            "--event-endpoint", f"tcp://127.0.0.1:{ports[1]}")
    sid = "zmtp-tcp-1"
    payload = {"session_id": sid, "transcript_path": str(tmp_path / "none.jsonl"),
               "cwd": str(tmp_path), "hook_event_name": "UserPromptSubmit",
               "prompt": "over tcp", "prompt_id": "p1"}
    proc, _ = _run_forwarder(daemon.home, "UserPromptSubmit", payload)
    assert proc.returncode == 0, proc.stderr
    st = wait_session(daemon.client(), sid, lambda s: s.work_status == "working")
    assert st.id == sid
    assert spool_files(daemon.home) == []
    assert not (daemon.home / "logs" / "hooks.log").exists()


@pytest.mark.parametrize("text", [
    '{"pid": 1, "request_endpoint": "ipc:///x", "claude": {"hook_timeout_s": 2.0,'
    ' "max_frame_bytes": 1048576, "ok": true, "none": null, "s": "\\u00e9\\n"}}',
    '  \n{"a": [1, -2.5e3, [], {}]}\n', "[]", '"text"', "3"])
def test_the_forwarders_json_reader_matches_json(text):
    from orbitdock.claude.forward import load_json

    assert load_json(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} trailing', "nope", '{"a": }'])
def test_the_forwarders_json_reader_refuses_what_json_refuses(text):
    from orbitdock.claude.forward import load_json

    with pytest.raises(ValueError):
        load_json(text)
