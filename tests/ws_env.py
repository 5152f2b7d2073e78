"""Test helpers for orbitdock-ws: a bridge child process, an upstream-protocol client and
the client-side reducer an upstream client runs (what it does with each server message)."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 20.0
RECV_TIMEOUT_S = 30.0  # generous: CI machines are shared and sometimes very loaded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BridgeProcess:
    """One orbitdock-ws child for the daemon of ``home``."""

    def __init__(self, home: Path, port: int | None = None, address: str = "127.0.0.1",
                 **env: str):
        self.home, self.address = home, address
        self.port = port or free_port()
        self.env = env
        self.proc: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> "BridgeProcess":
        env = dict(os.environ, ORBITDOCK_HOME=str(self.home), ORBITDOCK_WS__PORT=str(self.port),
                   ORBITDOCK_WS__ADDRESS=self.address, ORBITDOCK_LOGGING__STDERR="false",
                   **self.env)
        self.proc = subprocess.Popen([sys.executable, "-m", "orbitdock.ws"], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"orbitdock-ws exited: {self.proc.stderr.read().decode()}")
            status, _ = self.get("/health")
            if status == 200:
                return self
            time.sleep(0.05)
        raise RuntimeError("orbitdock-ws did not answer /health with 200 in time")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.http + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, b""

    def stop(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode if self.proc else None

    def log_lines(self) -> list[str]:
        path = self.home / "logs" / "orbitdock-ws.log"
        return path.read_text().splitlines() if path.exists() else []


class UpstreamClient:
    """A WebSocket client speaking the upstream protocol, keeping upstream-shaped copies."""

    def __init__(self, url: str, **kwargs: Any):
        self._opened = connect(url, max_size=None, open_timeout=10, **kwargs)
        self.ws: ClientConnection = self._opened.__enter__()
        self.frames: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.list: dict[str, dict[str, Any]] = {}
        self.errors: list[dict[str, Any]] = []
        self.info = self.recv()
        assert self.info["type"] == "server_info", self.info

    def send(self, **msg: Any) -> None:
        self.ws.send(json.dumps(msg))

    def recv(self, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        frame = json.loads(self.ws.recv(timeout=timeout))
        self.frames.append(frame)
        apply_frame(self, frame)
        return frame

    def recv_until(self, predicate, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching frame within {timeout}s; last: "
                                   f"{self.frames[-3:]}")
            frame = self.recv(left)
            if predicate(frame):
                return frame

    def drain(self, quiet: float = 0.3) -> None:
        """Take frames until none comes for ``quiet`` seconds."""
        while True:
            try:
                self.recv(quiet)
            except TimeoutError:
                return

    def close(self) -> None:
        self.ws.close()


def _later(a: str | None, b: str | None) -> bool:
    return a is not None and (b is None or int(a.rstrip("Z")) > int(b.rstrip("Z")))


def apply_frame(client: UpstreamClient, frame: dict[str, Any]) -> None:
    """What an upstream client does with a server message (the dashboard's app.js too)."""
    kind = frame["type"]
    if kind == "sessions_list":
        client.list = {s["id"]: copy.deepcopy(s) for s in frame["sessions"]}
    elif kind == "session_created":
        client.list[frame["session"]["id"]] = copy.deepcopy(frame["session"])
    elif kind == "session_snapshot":
        client.sessions[frame["session"]["id"]] = copy.deepcopy(frame["session"])
    elif kind == "error":
        client.errors.append(frame)
    state = client.sessions.get(frame.get("session_id", ""))
    if state is None or "revision" not in frame:
        return
    if kind == "session_delta":
        state.update(frame["changes"])
    elif kind == "message_appended":
        messages = state["messages"]
        messages.append(copy.deepcopy(frame["message"]))
        state["total_message_count"] += 1
        del messages[:max(0, len(messages) - state["message_limit"])]
        state["newest_sequence"] = frame["message"]["sequence"]
        state["oldest_sequence"] = messages[0]["sequence"]
        state["has_more_before"] = state["total_message_count"] > len(messages)
    elif kind == "message_updated":
        for msg in reversed(state["messages"]):
            if msg["id"] == frame["message_id"]:
                msg.update(frame["changes"])
                if msg.get("is_in_progress") is False:
                    del msg["is_in_progress"]  # omitted when false, as upstream does
                break
    elif kind == "tokens_updated":
        state["token_usage"] = frame["usage"]
    elif kind == "session_ended":
        state.update(status="ended", work_status="ended", attention_reason="none",
                     end_reason=frame["reason"])
    state["revision"] = frame["revision"]
    if _later(frame.get("last_activity_at"), state.get("last_activity_at")):
        state["last_activity_at"] = frame["last_activity_at"]
