"""What the Claude tests share: the pinned claude, a sandbox per test (HOME, config dir,
temp and runtime dirs, a project), orbitdock's hooks in its settings, and helpers to run
``claude -p`` against the scripted Messages API (reference claude-code.md §2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, wait_until
from orbitdock.claude import settings as claude_settings
from orbitdock.client import RemoteError
from orbitdock.protocol import messages as m

CLAUDE = REPO / ".tools" / "node_modules" / ".bin" / "claude"
HOOK_COMMAND = str(Path(sys.executable).parent / "orbitdock-hook")  # the console script
INSTALLED_COMMAND = claude_settings.default_command()  # what `hooks install` writes
CLAUDE_TIMEOUT_S = 90  # one `claude -p` against the sim takes about a second (more when loaded)
SHOW_S = 15.0
API_KEY = "sk-ant-dummy-0000000000"


def needs_claude(test):
    """Mark a test as running the real claude; skip it cleanly when bin/setup did not
    install it."""
    return pytest.mark.claude(pytest.mark.skipif(
        not CLAUDE.exists(), reason=f"claude not installed at {CLAUDE} (run bin/setup)")(test))


@dataclass
class Box:
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def project(self) -> Path:
        return self.root / "proj"

    @property
    def settings(self) -> Path:
        return self.config / "settings.json"


def make_box(root: Path, permission_wait_s: float = 60.0) -> Box:
    box = Box(root)
    for name in ("home", "config", "tmp", "run", "proj"):
        (root / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    # The TUI's onboarding probes the network: pre-seed what it would ask (§2).
    (box.config / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark",
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(box.project): {"hasTrustDialogAccepted": True}}}))
    box.settings.write_text(claude_settings.install("", INSTALLED_COMMAND, permission_wait_s))
    return box


@pytest.fixture
def box(tmp_path) -> Box:
    return make_box(tmp_path / "claude")


def claude_env(box: Box, sim, orbitdock_home: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "SHELL": "/bin/bash",
        "TERM": "xterm-256color", "HOME": str(box.home), "CLAUDE_CONFIG_DIR": str(box.config),
        "CLAUDE_CODE_TMPDIR": str(box.root / "tmp"), "XDG_RUNTIME_DIR": str(box.root / "run"),
        "ANTHROPIC_BASE_URL": sim.anthropic_url, "ANTHROPIC_API_KEY": API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "2", "ORBITDOCK_HOME": str(orbitdock_home),
    }


def daemon_env(box: Box, sim) -> dict[str, str]:
    """The environment of a daemon whose direct claude sessions run offline against
    ``sim`` (children inherit it); its own home, runtime dir and PATH stay the test's."""
    env = claude_env(box, sim, box.root / "unused")
    env.pop("ORBITDOCK_HOME")
    env.pop("XDG_RUNTIME_DIR")  # the daemon's sockets go there: keep its own (short) one
    env["PATH"] = os.environ["PATH"]
    return env


def run_claude(box: Box, sim, orbitdock_home: Path, prompt: str, *args: str,
               timeout: float = CLAUDE_TIMEOUT_S) -> subprocess.CompletedProcess:
    """``claude -p PROMPT --output-format json`` in the box's project; needs approval
    prompts answered by a PermissionRequest hook (``--permission-prompts none``)."""
    return subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", "--permission-prompts", "none",
         *args], cwd=box.project, env=claude_env(box, sim, orbitdock_home),
        capture_output=True, text=True, timeout=timeout)


def session_id_of(proc: subprocess.CompletedProcess) -> str:
    return json.loads(proc.stdout)["session_id"]


def wait_session(client, session_id: str, predicate, timeout: float = SHOW_S):
    """The session's snapshot once ``predicate`` holds (AssertionError with the last one)."""
    last = None

    def check() -> bool:
        nonlocal last
        try:
            last = client.request(m.SubscribeSession(session_id=session_id)).session
        except RemoteError:
            return False
        return predicate(last)

    assert wait_until(check, timeout, interval=0.1), f"session never matched; last: {last}"
    return last


def spool_files(home: Path) -> list[Path]:
    spool = home / "spool"
    return sorted(p for p in spool.glob("*.json")) if spool.exists() else []


def hook(home: Path, event: str, payload: object | bytes | str, *,
         timeout: float = 30) -> subprocess.CompletedProcess:
    """Run the real forwarder as claude would: payload on stdin, ORBITDOCK_HOME set."""
    data = payload if isinstance(payload, bytes) else (
        payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
    env = dict(os.environ, ORBITDOCK_HOME=str(home))
    return subprocess.run([HOOK_COMMAND, event], input=data, env=env, capture_output=True,
                          timeout=timeout)


def now() -> float:
    return time.time()


class EventTap:
    """Every session event the daemon publishes (a SUB on all session topics), so a test
    sees each status a session went through, not only the last."""

    def __init__(self, endpoint: str):
        import zmq

        self.sock = zmq.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"s|")
        self.sock.connect(endpoint)
        self.events: list = []

    def pump(self, timeout: float = 0.05) -> None:
        from orbitdock.protocol.topics import split_frame
        from orbitdock.protocol import codec

        if self.sock.poll(int(timeout * 1000)):
            while self.sock.poll(0):
                frame = self.sock.recv()
                try:
                    self.events.append(codec.decode_inbound(split_frame(frame)[1]))
                except Exception:  # noqa: BLE001 - the XPUB's welcome message, not an event
                    continue

    def of(self, session_id: str) -> list:
        return [e for e in self.events if getattr(e, "session_id", None) == session_id]

    def work_statuses(self, session_id: str) -> list[str]:
        """The work statuses in order, repeats collapsed; "ended" when the session ended."""
        seen: list[str] = []
        for e in self.of(session_id):
            status = None
            if isinstance(e, m.SessionDelta) and isinstance(e.changes.work_status, str):
                status = e.changes.work_status
            elif isinstance(e, m.SessionEnded):
                status = "ended"
            if status and (not seen or seen[-1] != status):
                seen.append(status)
        return seen

    def close(self) -> None:
        self.sock.close(0)
