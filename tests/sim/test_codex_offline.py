"""The real ``codex app-server`` against the scripted model server, with no network.

One app-server process and one SimServer serve the whole module (spawning codex
costs ~0.2 s, and each test starts its own thread). JSON-RPC is spoken directly
over stdio here, so these tests prove the sim and the CODEX_HOME set-up on their
own, independent of orbitdock's connector.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orbitdock.codex.home import clean_env, outside_temp_dir, write_sim_codex_home
from orbitdock.codex.install import REPO_ROOT, CodexNotFound, find_codex
from orbitdock.sim import SimServer

pytestmark = pytest.mark.codex

# A single JSON-RPC answer or notification; generous for a loaded CI machine.
MESSAGE_TIMEOUT_S = 15.0
# Closing stdin makes app-server exit in ~0.6 s; after this it is killed.
EXIT_TIMEOUT_S = 3.0

Message = dict[str, Any]


class AppServer:
    """Minimal JSON-RPC client for ``codex app-server`` on stdio, every wait bounded.

    A reader thread owns stdout and hands parsed lines to a queue; the test thread
    owns stdin. Messages not yet asked for are kept, so a test can wait for them in
    any order.
    """

    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc = proc
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self._pending: list[Message] = []
        self._next_id = 1
        self._reader = threading.Thread(target=self._read_stdout, name="codex-stdout",
                                        daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self._inbox.put(json.loads(line))
        self._inbox.put(None)  # EOF

    def send(self, message: Message) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, predicate: Callable[[Message], bool], what: str,
               timeout: float = MESSAGE_TIMEOUT_S) -> Message:
        for index, message in enumerate(self._pending):
            if predicate(message):
                return self._pending.pop(index)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = self._inbox.get(timeout=remaining)
            except queue.Empty:
                break
            if message is None:
                raise AssertionError(f"codex app-server exited while waiting for {what}")
            if predicate(message):
                return message
            self._pending.append(message)
        seen = [m.get("method", m.get("id")) for m in self._pending[-30:]]
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; recent: {seen}")

    def request(self, method: str, params: Message) -> Message:
        request_id = self._next_id
        self._next_id += 1
        self.send({"id": request_id, "method": method, "params": params})
        reply = self.expect(lambda m: m.get("id") == request_id and "method" not in m,
                            f"reply to {method}")
        assert "error" not in reply, f"{method} failed: {reply['error']}"
        return reply["result"]

    def notification(self, method: str, thread_id: str) -> Message:
        return self.expect(lambda m: m.get("method") == method
                           and m["params"].get("threadId") == thread_id, method)

    def server_request(self, method: str, thread_id: str) -> Message:
        return self.expect(lambda m: m.get("method") == method and "id" in m
                           and m["params"].get("threadId") == thread_id, method)

    def drain(self, method: str, thread_id: str) -> list[Message]:
        """Every already-received ``method`` notification of the thread, in order."""
        found = [m for m in self._pending
                 if m.get("method") == method and m["params"].get("threadId") == thread_id]
        self._pending = [m for m in self._pending if m not in found]
        return found

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(EXIT_TIMEOUT_S)


@pytest.fixture(scope="module")
def codex_binary() -> Path:
    try:
        return find_codex()
    except CodexNotFound as exc:
        pytest.skip(f"codex binary not installed ({exc})")


@pytest.fixture(scope="module")
def sandbox_dir() -> Path:
    # Not under /tmp: codex refuses to set up its helper binaries in the temp dir.
    root = outside_temp_dir(REPO_ROOT / ".orbitdock-test") / f"codex-offline-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def sim() -> SimServer:
    with SimServer() as server:
        yield server


@pytest.fixture(scope="module")
def app(codex_binary: Path, sandbox_dir: Path, sim: SimServer) -> AppServer:
    env = clean_env(None, write_sim_codex_home(sandbox_dir / "codex-home", sim.url))
    stderr_path = sandbox_dir / "app-server.stderr"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen([str(codex_binary), "app-server"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=stderr, env=env,
                                cwd=sandbox_dir)
    client = AppServer(proc)
    try:
        client.request("initialize", {
            "clientInfo": {"name": "orbitdock-test", "title": "orbitdock tests", "version": "0"},
            "capabilities": {"experimentalApi": True}})
        yield client
    finally:
        client.close()
        if proc.returncode not in (0, None):
            print(stderr_path.read_text(errors="replace")[-4000:])


@pytest.fixture
def workspace(sandbox_dir: Path) -> Path:
    path = sandbox_dir / f"ws-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def start_turn(app: AppServer, sim: SimServer, workspace: Path, script: list[dict],
               prompt: str = "go") -> str:
    """New thread (approvals for everything) and one turn on it; returns the thread id."""
    sim.set_script(script)
    thread = app.request("thread/start", {
        "model": "gpt-5.5", "approvalPolicy": "untrusted", "sandbox": "workspace-write",
        "cwd": str(workspace), "ephemeral": True})["thread"]
    app.request("turn/start", {"threadId": thread["id"],
                               "input": [{"type": "text", "text": prompt}]})
    return thread["id"]


def completed_turn(app: AppServer, thread_id: str) -> Message:
    turn = app.notification("turn/completed", thread_id)["params"]["turn"]
    assert turn["status"] == "completed", turn
    return turn


def test_streamed_text_arrives_as_deltas(app: AppServer, sim: SimServer, workspace: Path):
    thread_id = start_turn(app, sim, workspace, [{"text": "Hello from the sim", "chunk": 5}],
                           prompt="Say hello")
    app.notification("thread/tokenUsage/updated", thread_id)
    completed_turn(app, thread_id)
    deltas = app.drain("item/agentMessage/delta", thread_id)
    assert len(deltas) == 4
    assert "".join(d["params"]["delta"] for d in deltas) == "Hello from the sim"
    assert "Say hello" in json.dumps(sim.requests()[-1]["input"])


def test_exec_command_asks_for_approval(app: AppServer, sim: SimServer, workspace: Path):
    thread_id = start_turn(app, sim, workspace, [
        {"call": "exec_command", "args": {"cmd": "echo hi", "login": False}, "call_id": "c-echo"},
        {"match": "c-echo", "text": "ran it"}])
    approval = app.server_request("item/commandExecution/requestApproval", thread_id)
    assert "echo hi" in approval["params"]["command"]
    app.send({"id": approval["id"], "result": {"decision": "accept"}})
    command = app.expect(lambda m: m.get("method") == "item/completed"
                         and m["params"]["threadId"] == thread_id
                         and m["params"]["item"]["type"] == "commandExecution",
                         "commandExecution completed")["params"]["item"]
    assert command["status"] == "completed", command
    assert command["aggregatedOutput"].strip().splitlines()[-1] == "hi"  # a login shell may warn first
    completed_turn(app, thread_id)
    assert sim.state()["exhausted"] == 0


def test_apply_patch_asks_for_file_change_approval(app: AppServer, sim: SimServer,
                                                  workspace: Path):
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"
    thread_id = start_turn(app, sim, workspace, [
        {"custom": "apply_patch", "input": patch}, {"text": "patched"}])
    approval = app.server_request("item/fileChange/requestApproval", thread_id)
    app.send({"id": approval["id"], "result": {"decision": "accept"}})
    completed_turn(app, thread_id)
    assert (workspace / "hello.txt").read_text() == "hi\n"


def test_update_plan_updates_the_turn_plan(app: AppServer, sim: SimServer, workspace: Path):
    plan = [{"step": "Read", "status": "completed"}, {"step": "Write", "status": "in_progress"}]
    thread_id = start_turn(app, sim, workspace, [
        {"call": "update_plan", "args": {"explanation": "sim plan", "plan": plan}},
        {"text": "planned"}])
    update = app.notification("turn/plan/updated", thread_id)["params"]
    assert [s["status"] for s in update["plan"]] == ["completed", "inProgress"]
    completed_turn(app, thread_id)


def test_request_user_input_reaches_the_client(app: AppServer, sim: SimServer, workspace: Path):
    question = {"id": "color", "header": "Color", "question": "Which color?",
                "options": [{"label": "Blue", "description": "cool"},
                            {"label": "Red", "description": "warm"}]}
    thread_id = start_turn(app, sim, workspace, [
        {"call": "request_user_input", "args": {"questions": [question]}, "call_id": "c-ask"},
        {"match": "c-ask", "text": "thanks"}])
    ask = app.server_request("item/tool/requestUserInput", thread_id)
    assert ask["params"]["questions"][0]["id"] == "color"
    app.send({"id": ask["id"], "result": {"answers": {"color": {"answers": ["Blue"]}}}})
    completed_turn(app, thread_id)
    assert "Blue" in json.dumps(sim.requests()[-1]["input"])


def wait_for_held(sim: SimServer, count: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while sim.state()["held"] != count and time.monotonic() < deadline:
        time.sleep(0.02)
    return sim.state()["held"] == count


def test_reasoning_summary_streams(app: AppServer, sim: SimServer, workspace: Path):
    thread_id = start_turn(app, sim, workspace, [{"reasoning": "thinking hard", "chunk": 8,
                                                  "text": "answer"}])
    completed_turn(app, thread_id)
    deltas = app.drain("item/reasoning/summaryTextDelta", thread_id)
    assert "".join(d["params"]["delta"] for d in deltas) == "thinking hard"


def test_held_stream_keeps_the_turn_active_until_interrupt(app: AppServer, sim: SimServer,
                                                          workspace: Path):
    thread_id = start_turn(app, sim, workspace, [{"text": "slow reply", "chunk": 4, "hold": 30}])
    first = app.notification("item/agentMessage/delta", thread_id)
    turn_id = first["params"]["turnId"]
    # The delta can reach codex a moment before the handler thread parks.
    assert wait_for_held(sim, 1)
    app.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
    turn = app.notification("turn/completed", thread_id)["params"]["turn"]
    assert turn["status"] == "interrupted"
    # The sim notices the hang-up and frees the parked stream well before the hold ends.
    assert wait_for_held(sim, 0)


@pytest.mark.parametrize("reply", [
    {"fail": {"code": "server_error", "message": "scripted boom"}},
    {"http_status": 500},
])
def test_model_errors_fail_the_turn(app: AppServer, sim: SimServer, workspace: Path,
                                    reply: dict):
    thread_id = start_turn(app, sim, workspace, [reply])
    turn = app.notification("turn/completed", thread_id)["params"]["turn"]
    assert turn["status"] == "failed", turn
    if "fail" in reply:
        assert "scripted boom" in json.dumps(turn["error"])


def test_codex_home_under_the_temp_dir_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="temp dir"):
        write_sim_codex_home(tmp_path / "codex-home", "http://127.0.0.1:1/v1")


def test_clean_env_drops_real_api_and_proxy_settings():
    env = clean_env({"OPENAI_API_KEY": "sk-real", "https_proxy": "http://proxy:3128",
                     "PATH": "/bin"}, {"MOCK_API_KEY": "dummy"})
    assert env == {"PATH": "/bin", "MOCK_API_KEY": "dummy"}


def test_an_explicit_missing_binary_is_reported():
    with pytest.raises(CodexNotFound, match="not an executable"):
        find_codex("/nonexistent/codex")
