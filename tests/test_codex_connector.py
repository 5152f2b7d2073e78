"""CodexConnector + CodexPoolActor end to end: the real pinned codex against SimServer.

No daemon: a pool actor, connectors, and a queue per session collecting what
they emit. Every wait is a bounded ``queue.get``. CODEX_HOME lives under
``<repo>/.orbitdock-test`` (codex refuses helper binaries under /tmp).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from actors.codex_pool import CodexPoolActor, Describe, list_models
from orbitdock.codex.connector import CodexConnector
from orbitdock.codex.home import clean_env, write_sim_codex_home
from orbitdock.codex.install import CodexNotFound, find_codex
from orbitdock.config import CodexConfig
from orbitdock.connectors import events as ev
from orbitdock.sim.server import SimServer

TEST_ROOT = Path(__file__).resolve().parent.parent / ".orbitdock-test"
WAIT_S = 15.0  # any single expected event; codex answers in well under a second


@pytest.fixture(scope="module")
def codex_binary() -> Path:
    try:
        return find_codex()
    except CodexNotFound as exc:
        pytest.skip(f"codex binary not installed: {exc}")


@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server


@pytest.fixture(scope="module")
def base_dir():
    base = TEST_ROOT / f"connector-{uuid.uuid4().hex[:8]}"
    base.mkdir(parents=True)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def codex_env(base_dir, sim) -> dict[str, str]:
    return clean_env(None, write_sim_codex_home(base_dir / "codex-home", sim.url))


@pytest.fixture
def pool(codex_env, codex_binary, sim):
    sim.reset()
    ref = CodexPoolActor.start(CodexConfig(threads_per_process=4, spare_processes=0),
                               env=codex_env, binary=codex_binary)
    yield ref
    ref.stop(timeout=10)


@pytest.fixture
def workspace(base_dir) -> Path:
    path = base_dir / f"ws-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    return path


FAKE_APP_SERVER = r'''
import json, os, sys
log = open(os.environ["FAKE_LOG"], "a")
def send(obj): sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    log.write(line); log.flush()
    msg = json.loads(line)
    method, params = msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        send({"id": msg["id"], "result": {"userAgent": "fake/0.169.0 (test)"}})
    elif method == "thread/start":
        sys.stdout.write("this is not json {\n")
        sys.stdout.write("[1, 2, 3]\n")
        send({"id": 0, "method": "item/commandExecution/requestApproval",
              "params": {"threadId": "ghost", "turnId": "u", "itemId": "i"}})
        send({"id": msg["id"], "result": {"thread": {"id": "T1", "path": None}, "model": "m"}})
        send({"method": "turn/started", "params": {"threadId": "T1", "turn": {"id": "U1"}}})
    elif method == "turn/start":
        pass  # never answered: the request times out
    elif method == "thread/name/set":
        sys.stderr.write("fatal: boom\n"); sys.stderr.flush()
        sys.exit(3)
    elif method == "thread/resume":
        send({"id": msg["id"], "error": {"code": -32600,
              "message": "thread T1 already has an active writer"}})
'''


def test_protocol_faults_against_a_fake_app_server(base_dir):
    """Garbage lines, an unhosted server request, a timeout, an exit and a refused resume."""
    script = base_dir / "fake_app_server.py"
    script.write_text(FAKE_APP_SERVER)
    log = base_dir / f"fake-{uuid.uuid4().hex[:6]}.log"
    binary = base_dir / "fake-codex"
    binary.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    binary.chmod(0o755)
    env = {**os.environ, "FAKE_LOG": str(log)}
    pool = CodexPoolActor.start(CodexConfig(request_timeout_s=0.5, resume_timeout_s=2),
                                env=env, binary=binary)
    try:
        session = Session(pool, base_dir)
        assert session.start().thread_id == "T1"  # the garbage before it was skipped
        deadline = time.monotonic() + WAIT_S
        while '"error"' not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert '{"id":0,"error":{"code":-32052' in log.read_text()  # ghost request refused
        refused = session.send("hello")
        assert (refused.ok, refused.error_code) == (False, "timeout")
        session.connector.rename(2, "x")
        assert session.result(2).error_code == "backend_error"  # in flight when it exited
        lost = session.wait(ev.BackendLost)
        assert not lost.fatal and "code 3" in lost.reason and "fatal: boom" in lost.reason
        fatal = session.wait(ev.BackendLost)
        assert fatal.fatal and "active writer" in fatal.reason
    finally:
        pool.stop(timeout=10)


def test_unstartable_codex_fails_sessions_and_models(base_dir):
    binary = base_dir / "broken-codex"
    binary.write_text("#!/bin/sh\necho 'cannot start: broken install' >&2\nexit 2\n")
    binary.chmod(0o755)
    pool = CodexPoolActor.start(CodexConfig(), env=dict(os.environ), binary=binary)
    try:
        session = Session(pool, base_dir)
        session.connector.start(session.events.put)
        session.connector.send_message(1, "hello")
        lost = session.wait(ev.BackendLost)
        assert lost.fatal and "code 2" in lost.reason and "broken install" in lost.reason
        assert session.result(1).ok is False
        with pytest.raises(RuntimeError, match="code 2"):
            list_models(pool, timeout=WAIT_S)
    finally:
        pool.stop(timeout=10)


FAKE_RECOVERY_SERVER = r"""
import itertools, json, os, sys, threading, time
barrier = int(os.environ["FAKE_RESUME_BARRIER"])  # resumes held until this many arrived
gate = os.environ.get("FAKE_RESUME_GATE", "")  # and, if set, until this file exists
ids = itertools.count(1)
held = []
lock = threading.Lock()
def send(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
def answer_held():
    with lock:
        ready = len(held) >= barrier and (not gate or os.path.exists(gate))
        batch = held[:] if ready else []
        if ready:
            held.clear()
    for m in batch:
        send({"id": m["id"], "result": {"thread": {"id": m["params"]["threadId"]}}})
def gatekeeper():  # answers what the closed gate held once it opens
    while True:
        time.sleep(0.02)
        answer_held()
if gate:
    threading.Thread(target=gatekeeper, daemon=True).start()
def item(tid, turn, text):
    return {"threadId": tid, "turnId": turn, "item": {
        "type": "userMessage", "id": f"item-{next(ids)}",
        "content": [{"type": "text", "text": text, "text_elements": []}]}}
for line in sys.stdin:
    msg = json.loads(line)
    method, params = msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        send({"id": msg["id"], "result": {"userAgent": "fake/0.169.0 (test)"}})
    elif method == "thread/start":
        send({"id": msg["id"], "result": {"thread": {"id": f"T{os.getpid()}-{next(ids)}",
                                                      "path": None}, "model": "m"}})
    elif method == "turn/start":
        # The prompt says what codex manages to send before it dies (the test kills it).
        tid, text = params["threadId"], params["input"][0]["text"]
        turn = f"U-{next(ids)}"
        if "ECHO-FIRST" in text:
            send({"method": "turn/started", "params": {"threadId": tid, "turn": {"id": turn}}})
            send({"method": "item/completed", "params": item(tid, turn, text)})
        send({"id": msg["id"], "result": {"turn": {"id": turn, "status": "inProgress"}}})
        if "STARTED" in text or "ECHOED" in text:
            send({"method": "turn/started", "params": {"threadId": tid, "turn": {"id": turn}}})
        if "ECHOED" in text:
            send({"method": "item/completed", "params": item(tid, turn, text)})
    elif method == "turn/steer":
        send({"id": msg["id"], "result": {"turnId": params["expectedTurnId"]}})
    elif method == "thread/resume":
        if os.path.exists(os.environ.get("FAKE_HOLD_RESUMES", "")):
            continue  # never answered: the test kills this process mid-resume
        with lock:
            held.append(msg)
        answer_held()  # never answers if the client waited for each answer
"""


def test_lost_process_keeps_acknowledged_prompts_and_resumes_concurrently(base_dir):
    """Problem 3 and 6 without codex: what a dying app-server leaves, and how it is resumed.

    Each session's prompt stops the fake at another point after the ``turn/start``
    answer (then the fake is killed): its turn is closed failed either way, and its
    prompt appears exactly once. The 6 sessions are then resumed 3 per process
    (``recovery_batch``), the waiting ones dealt first, and each new process answers no
    ``thread/resume`` before it holds all 3: they must all be in flight at once.
    """
    script = base_dir / "fake_recovery_server.py"
    script.write_text(FAKE_RECOVERY_SERVER)
    binary = base_dir / "fake-recovery-codex"
    binary.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    binary.chmod(0o755)
    env = {**os.environ, "FAKE_RESUME_BARRIER": "3"}
    config = CodexConfig(threads_per_process=6, recovery_batch=3, resume_timeout_s=5,
                         spare_processes=0)
    pool = CodexPoolActor.start(config, env=env, binary=binary)
    try:
        sessions = [Session(pool, base_dir) for _ in range(6)]
        threads = [s.start().thread_id for s in sessions]
        idle1, silent, started, echoed, first, idle2 = sessions
        prompts = {silent: "silent prompt", started: "STARTED prompt", echoed: "ECHOED prompt",
                   first: "ECHO-FIRST prompt"}
        turn_ids = {s: s.send(text).result["turn_id"] for s, text in prompts.items()}
        started.wait(ev.TurnStarted)
        started.connector.steer(50, "steer that codex acknowledged")
        assert started.result(50).ok
        echoed.wait(ev.UserMessage)
        assert first.since(ev.UserMessage)  # echoed before the answer send() waited for
        (proc,) = pool.ask(Describe(), timeout=5)
        os.kill(proc["pid"], signal.SIGKILL)
        for session in sessions:
            session.wait(ev.BackendRecovered)
        for session, text in prompts.items():
            turn_id = turn_ids[session]
            assert [e.turn_id for e in session.since(ev.TurnStarted)] == [turn_id]
            (done,) = session.since(ev.TurnCompleted)
            assert (done.turn_id, done.status) == (turn_id, "failed") and "SIGKILL" in done.error
            users = [e.text for e in session.since(ev.UserMessage)]
            expected = [text] + (["steer that codex acknowledged"] if session is started else [])
            assert users == expected, (text, users)
        for session in (idle1, idle2):
            assert not session.since(ev.TurnCompleted) and not session.since(ev.UserMessage)
        procs = pool.ask(Describe(), timeout=5)
        assert [p["load"] for p in procs] == [3, 3]
        # the four sessions with a cut turn were dealt first, round-robin: two lead each
        # process's queue, and the idle two come last, one on each
        for proc in procs:
            assert len(set(proc["threads"]) & set(threads[1:5])) == 2
            assert len(set(proc["threads"]) & {threads[0], threads[5]}) == 1
        assert silent.send("after recovery").ok
    finally:
        pool.stop(timeout=10)


def describe_when(pool, loads: list[int]) -> list[dict[str, Any]]:
    """The pool's processes once their loads are ``loads`` (bounded wait)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        procs = pool.ask(Describe(), timeout=5)
        if [p["load"] for p in procs] == loads or time.monotonic() > deadline:
            assert [p["load"] for p in procs] == loads
            return procs
        time.sleep(0.02)


def nice_when(pid: int, value: int) -> bool:
    """True once every thread of ``pid`` has nice ``value`` (bounded wait)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        values = {os.getpriority(os.PRIO_PROCESS, t.id) for t in psutil.Process(pid).threads()}
        if values == {value}:
            return True
        assert time.monotonic() < deadline, f"pid {pid}: nice {values}, expected {value}"
        time.sleep(0.02)


def test_spare_process_is_kept_idle_and_takes_the_recovery(base_dir):
    """A spare stays empty while others have room, then hosts a dead process's resumes;
    idle processes beyond the spare count are stopped."""
    script = base_dir / "fake_recovery_server.py"
    script.write_text(FAKE_RECOVERY_SERVER)
    binary = base_dir / "fake-recovery-codex"
    binary.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    binary.chmod(0o755)
    gate = base_dir / f"gate-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "FAKE_RESUME_BARRIER": "2",  # both resumes in flight on one process
           "FAKE_RESUME_GATE": str(gate)}  # and answered once the test opens the gate
    gate.touch()
    config = CodexConfig(threads_per_process=2, recovery_batch=2, resume_timeout_s=5,
                         spare_processes=1, spare_delay_s=0.05, session_nice=5,
                         shared_session=True)
    pool = CodexPoolActor.start(config, env=env, binary=binary)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        assert pool.ask(Describe(), timeout=5) == []  # no session: no spare either
        first = Session(pool, base_dir)
        first.start()
        working, spare = describe_when(pool, [1, 0])
        # sessions' work yields to recovery: the spare keeps the daemon's priority
        assert nice_when(working["pid"], ours + 5) and nice_when(spare["pid"], ours)
        for proc in (working, spare):  # nice values only count within one session
            assert os.getsid(proc["pid"]) == os.getsid(0)  # (Linux's autogroup scheduler)
            assert os.getpgid(proc["pid"]) == proc["pid"]  # still stopped as a group
        second = Session(pool, base_dir)
        second.start()
        busy, idle = describe_when(pool, [2, 0])
        assert idle["pid"] == spare["pid"]  # the second session did not spread onto it
        gate.unlink()
        os.kill(busy["pid"], signal.SIGKILL)
        # while the resumes run no spare is started (its start would take their CPU)
        (host,) = describe_when(pool, [2])
        time.sleep(0.3)  # six times spare_delay_s
        assert [p["pid"] for p in pool.ask(Describe(), timeout=5)] == [host["pid"]]
        gate.touch()
        for session in (first, second):
            session.wait(ev.BackendRecovered)
        host, new_spare = describe_when(pool, [2, 0])
        assert host["pid"] == spare["pid"] and new_spare["pid"] not in (busy["pid"], spare["pid"])
        assert sorted(host["threads"]) == sorted(busy["threads"])
        # its resumes done, the old spare is an ordinary process (every thread); the new
        # spare waits at the daemon's priority
        assert nice_when(host["pid"], ours + 5) and nice_when(new_spare["pid"], ours)
        for session in (first, second):
            session.connector.stop()
        # two idle processes, one spare wanted: the one holding no loaded thread goes
        (kept,) = describe_when(pool, [0])
        assert kept["pid"] == host["pid"]
        deadline = time.monotonic() + WAIT_S
        while psutil.pid_exists(new_spare["pid"]):  # stopped and reaped
            assert time.monotonic() < deadline, "the retired process is still running"
            time.sleep(0.02)
    finally:
        pool.stop(timeout=10)


@pytest.mark.parametrize("shared", [True, False])
def test_config_overrides_reach_every_app_server(base_dir, shared):
    script = base_dir / "fake_recovery_server.py"
    script.write_text(FAKE_RECOVERY_SERVER)
    binary = base_dir / "fake-codex-with-args"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    binary.chmod(0o755)
    config = CodexConfig(spare_processes=0, shared_session=shared,
                         config_overrides='features.shell_snapshot=false; model="gpt-x"')
    assert CodexConfig().shared_session  # the default
    pool = CodexPoolActor.start(config, env={**os.environ, "FAKE_RESUME_BARRIER": "1"},
                                binary=binary)
    try:
        Session(pool, base_dir).start()
        (proc,) = describe_when(pool, [1])
        assert psutil.Process(proc["pid"]).cmdline()[-5:] == [
            "app-server", "-c", "features.shell_snapshot=false", "-c", 'model="gpt-x"']
        # shared: in the daemon's session, where nice values count; else a session of
        # its own; a process group of its own either way (stopped as one)
        assert (os.getsid(proc["pid"]) == os.getsid(0)) is shared
        assert os.getpgid(proc["pid"]) == proc["pid"]
    finally:
        pool.stop(timeout=10)


def kill_host(pool, session: "Session") -> None:
    """kill -9 the one process and wait for the pool to host ``session`` on a new one."""
    (proc,) = pool.ask(Describe(), timeout=5)
    os.kill(proc["pid"], signal.SIGKILL)
    assert not session.wait(ev.BackendLost).fatal
    deadline = time.monotonic() + WAIT_S
    while [(p["pid"] != proc["pid"], p["load"]) for p in pool.ask(Describe(), timeout=5)] \
            != [(True, 1)]:
        assert time.monotonic() < deadline, "the session was not placed on a new process"
        time.sleep(0.02)


def test_resume_cut_by_another_death_is_resumed_again(base_dir):
    """Under load a resume takes seconds: a death that cuts it resumes again, a bounded
    number of times in a row (``recovery_attempts``) so a failing codex cannot loop."""
    script = base_dir / "fake_recovery_server.py"
    script.write_text(FAKE_RECOVERY_SERVER)
    binary = base_dir / "fake-recovery-codex"
    binary.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    binary.chmod(0o755)
    hold = base_dir / f"hold-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "FAKE_RESUME_BARRIER": "1", "FAKE_HOLD_RESUMES": str(hold)}
    config = CodexConfig(threads_per_process=2, spare_processes=0, recovery_attempts=1,
                         resume_timeout_s=5)
    pool = CodexPoolActor.start(config, env=env, binary=binary)
    try:
        session = Session(pool, base_dir, config=config)
        thread_id = session.start().thread_id
        hold.touch()
        kill_host(pool, session)  # ready -> resuming, held by the new process
        hold.unlink()
        kill_host(pool, session)  # cuts that resume: resumed again, and answered
        assert session.wait(ev.BackendRecovered)
        assert "while resuming" in session.since(ev.BackendLost)[-1].reason
        hold.touch()
        kill_host(pool, session)  # a success reset the count: one more cut is allowed
        kill_host(pool, session)
        (proc,) = pool.ask(Describe(), timeout=5)
        os.kill(proc["pid"], signal.SIGKILL)  # the second cut in a row: give up
        fatal = session.wait(ev.BackendLost)
        assert fatal.fatal and "SIGKILL" in fatal.reason
        assert [e.thread_id for e in session.since(ev.ThreadStarted)] == [thread_id]
    finally:
        pool.stop(timeout=10)


class Session:
    """A connector plus the queue its events land in, with bounded waits."""

    def __init__(self, pool, workspace: Path, **settings: Any):
        settings.setdefault("approval_policy", "untrusted")
        settings.setdefault("sandbox_mode", "workspace-write")
        self.events: queue.Queue[ev.BackendEvent] = queue.Queue()
        self.seen: list[ev.BackendEvent] = []
        self.connector = CodexConnector(pool, cwd=str(workspace), **settings)
        self._tokens = iter(range(1, 10_000))

    def start(self, **kwargs: Any) -> ev.ThreadStarted:
        self.connector.start(self.events.put, **kwargs)
        return self.wait(ev.ThreadStarted)

    def wait(self, kind: type, pred=lambda e: True, timeout: float = WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(0.01, remaining))
            except queue.Empty:
                raise AssertionError(f"no {kind.__name__} within {timeout}s; saw "
                                     f"{[type(e).__name__ for e in self.seen[-15:]]}") from None
            self.seen.append(event)
            if isinstance(event, ev.BackendLost) and event.fatal and kind is not ev.BackendLost:
                raise AssertionError(f"session failed: {event.reason}")
            if isinstance(event, kind) and pred(event):
                return event

    def result(self, token: Any) -> ev.CommandResult:
        return self.wait(ev.CommandResult, lambda e: e.token == token)

    def send(self, text: str) -> ev.CommandResult:
        token = next(self._tokens)
        self.connector.send_message(token, text)
        return self.result(token)

    def turn(self, text: str) -> ev.TurnCompleted:
        assert self.send(text).ok
        return self.wait(ev.TurnCompleted)

    def respond(self, key: Any, decision: str | None = None, answers=None) -> ev.CommandResult:
        token = next(self._tokens)
        self.connector.respond(token, key, decision=decision, answers=answers)
        return self.result(token)

    def since(self, kind: type) -> list:
        return [e for e in self.seen if isinstance(e, kind)]


def exec_call(cmd: str) -> dict[str, Any]:
    return {"call": "exec_command", "args": {"cmd": cmd, "login": False}}


@pytest.mark.codex
def test_streamed_reply(pool, sim, workspace):
    sim.set_script([{"text": "Hello from the sim", "chunk": 4}])
    session = Session(pool, workspace)
    started = session.start()
    assert started.thread_id and started.model == "gpt-5.5"
    assert started.cwd == str(workspace) and started.sandbox_mode == "workspace-write"
    assert started.transcript_path and started.thread_id in started.transcript_path
    result = session.send("Say hello")
    assert result.ok and result.result["turn_id"]
    done = session.wait(ev.TurnCompleted)
    assert (done.status, done.turn_id) == ("completed", result.result["turn_id"])
    assert "".join(d.delta for d in session.since(ev.AgentMessageDelta)) == "Hello from the sim"
    assert len(session.since(ev.AgentMessageDelta)) > 1
    assert [m.text for m in session.since(ev.AgentMessage)] == ["Hello from the sim"]
    assert [m.text for m in session.since(ev.UserMessage)] == ["Say hello"]
    assert session.since(ev.TokenUsageUpdated)[-1].context_window > 0
    session.connector.stop()


@pytest.mark.codex
def test_exec_approval_accept_and_decline(pool, sim, workspace):
    sim.set_script([exec_call("echo yes > accepted.txt"), {"text": "ran it"},
                    exec_call("echo no > declined.txt"), {"text": "skipped it"}])
    session = Session(pool, workspace)
    session.start()
    assert session.send("run the first").ok
    request = session.wait(ev.ApprovalRequest)
    assert request.type == "exec" and "accepted.txt" in request.command
    assert request.cwd == str(workspace) and "accept" in request.available_decisions
    assert session.respond(request.key, "accept").ok
    session.wait(ev.ApprovalCleared, lambda e: e.key == request.key)
    tool = session.wait(ev.ToolCompleted)
    assert (tool.status, tool.is_error, tool.tool_name) == ("completed", False, "Shell")
    session.wait(ev.TurnCompleted)
    assert (workspace / "accepted.txt").read_text().strip() == "yes"

    assert session.send("run the second").ok
    request = session.wait(ev.ApprovalRequest)
    assert session.respond(request.key, "decline").ok
    assert session.wait(ev.ToolCompleted).status == "declined"
    assert session.wait(ev.TurnCompleted).status == "completed"
    assert not (workspace / "declined.txt").exists()
    assert not session.respond(request.key, "accept").ok  # already answered: stale


@pytest.mark.codex
def test_patch_approval_shows_diff(pool, sim, workspace):
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi there\n*** End Patch\n"
    sim.set_script([{"custom": "apply_patch", "input": patch}, {"text": "patched"}])
    session = Session(pool, workspace)
    session.start()
    assert session.send("patch it").ok
    started = session.wait(ev.ToolStarted)
    assert started.tool_name == "Edit" and "hello.txt" in started.tool_input
    request = session.wait(ev.ApprovalRequest)
    assert request.type == "patch" and request.file_path.endswith("hello.txt")
    assert "+hi there" in request.diff
    assert session.respond(request.key, "accept").ok
    assert session.wait(ev.ToolCompleted).status == "completed"
    assert "hello.txt" in session.wait(ev.DiffUpdated).diff
    session.wait(ev.TurnCompleted)
    assert (workspace / "hello.txt").read_text() == "hi there\n"


@pytest.mark.codex
def test_question_answered(pool, sim, workspace):
    question = {"id": "color", "header": "Color", "question": "Which color?",
                "options": [{"label": "Blue", "description": "cool"},
                            {"label": "Red", "description": "warm"}]}
    sim.set_script([{"call": "request_user_input", "args": {"questions": [question]}},
                    {"text": "Blue it is"}])
    session = Session(pool, workspace)
    session.start()
    assert session.send("ask me").ok
    request = session.wait(ev.ApprovalRequest)
    assert request.type == "question" and request.questions[0]["id"] == "color"
    # as the session actor answers: decision "answered", the key possibly stringified
    assert session.respond(str(request.key), "answered", answers={"color": ["Blue"]}).ok
    session.wait(ev.TurnCompleted)
    follow_up = str(sim.requests()[-1]["input"])
    assert "Blue" in follow_up and "answers" in follow_up


@pytest.mark.codex
def test_interrupt_held_turn(pool, sim, workspace):
    sim.set_script([{"text": "slow and steady", "chunk": 4, "hold": 60}, {"text": "after"}])
    session = Session(pool, workspace)
    session.start()
    token = 99
    session.connector.interrupt(token)
    assert session.result(token).error_code == "invalid_state"  # nothing to interrupt yet
    assert session.send("take your time").ok
    session.wait(ev.AgentMessageDelta)  # the stream is now parked mid-turn
    session.connector.interrupt(token := 100)
    assert session.result(token).ok
    assert session.wait(ev.TurnCompleted).status == "interrupted"
    sim.release()
    assert session.turn("again").status == "completed"


@pytest.mark.codex
def test_steer_reaches_the_model(pool, sim, workspace):
    sim.set_script([{"text": "working", "hold": 60}, {"match": "STEER-42", "text": "steered"}])
    session = Session(pool, workspace)
    session.start()
    turn_id = session.send("long job").result["turn_id"]
    session.wait(ev.AgentMessageDelta)
    session.connector.steer(8, "STEER-42 change course")
    assert session.result(8).result == {"turn_id": turn_id}
    sim.release()
    done = session.wait(ev.TurnCompleted)
    assert (done.turn_id, done.status) == (turn_id, "completed")
    assert "steered" in [m.text for m in session.since(ev.AgentMessage)]


@pytest.mark.codex
def test_rename_round_trip(pool, sim, workspace):
    session = Session(pool, workspace)
    session.start()
    session.connector.rename(7, "Renamed thread")
    assert session.result(7).ok
    assert session.wait(ev.NameUpdated).name == "Renamed thread"


@pytest.mark.codex
def test_autonomy_change_applies_next_turn(pool, sim, workspace):
    sim.set_script([exec_call("echo free > free.txt"), {"text": "ran freely"},
                    exec_call("echo asked > asked.txt"), {"text": "asked first"}])
    session = Session(pool, workspace, approval_policy="never")
    session.start()
    session.turn("no prompts please")
    assert (workspace / "free.txt").exists() and not session.since(ev.ApprovalRequest)
    session.connector.set_config(5, approval_policy="untrusted", sandbox_mode=None, model=None)
    applied = session.wait(ev.ConfigApplied)
    assert (applied.approval_policy, applied.sandbox_mode) == ("untrusted", "workspace-write")
    assert session.result(5).ok
    assert session.send("now ask").ok
    request = session.wait(ev.ApprovalRequest)
    assert "asked.txt" in request.command
    session.respond(request.key, "accept")
    session.wait(ev.TurnCompleted)
    session.connector.set_config(6, approval_policy=None, sandbox_mode="bogus", model=None)
    assert session.result(6).error_code == "invalid_field"
    # codex itself refuses a bad value: its JSON-RPC error comes back on the command
    session.connector.set_config(7, approval_policy="sometimes", sandbox_mode=None, model=None)
    assert session.result(7).ok
    refused = session.send("go")
    assert (refused.ok, refused.error_code) == (False, "backend_error")
    assert "sometimes" in refused.error_message


@pytest.mark.codex
def test_killed_process_is_recovered(codex_env, codex_binary, sim, base_dir):
    """Two sessions on the killed process recover; one on another process sees nothing."""
    sim.reset()
    sim.set_script([{"match": "remember", "text": "noted ALPHA-7"},
                    {"match": "wait a while", "text": "parked", "hold": 60},
                    {"match": "bystander", "text": "untouched"}])
    pool = CodexPoolActor.start(CodexConfig(threads_per_process=2, spare_processes=0),
                                env=codex_env, binary=codex_binary)
    try:
        victim, neighbour, bystander = (Session(pool, base_dir) for _ in range(3))
        for session in (victim, neighbour, bystander):
            session.start()
        victim.turn("remember ALPHA-7")
        assert victim.send("wait a while").ok
        victim.wait(ev.AgentMessageDelta)
        procs = pool.ask(Describe(), timeout=5)
        assert [p["load"] for p in procs] == [2, 1]
        os.kill(procs[0]["pid"], signal.SIGKILL)
        assert victim.wait(ev.TurnCompleted).status == "failed"
        for session in (victim, neighbour):
            lost = session.wait(ev.BackendLost)
            assert not lost.fatal and "SIGKILL" in lost.reason
            session.wait(ev.BackendRecovered)
        # the neighbour never had a turn, so codex had no rollout to resume: it got a new thread
        assert len(neighbour.since(ev.ThreadStarted)) == 2
        sim.append([{"match": "are you there", "text": "still here"}])
        assert victim.turn("are you there?").status == "completed"
        assert "ALPHA-7" in str(sim.requests()[-1]["input"])  # resumed with its history
        assert bystander.turn("bystander check").status == "completed"
        assert not bystander.since(ev.BackendLost) and not bystander.since(ev.BackendRecovered)
        assert procs[0]["pid"] not in [p["pid"] for p in pool.ask(Describe(), timeout=5)]
    finally:
        pool.stop(timeout=10)


@pytest.mark.codex
def test_restarted_session_resumes_in_place(pool, sim, workspace):
    sim.set_script([{"text": "first"}, {"text": "second"}, {"text": "third"}])
    first = Session(pool, workspace)
    thread_id = first.start().thread_id
    first.turn("one")
    first.connector.stop()
    # The thread stays loaded (and writer-locked) in its process: affinity sends it there.
    second = Session(pool, workspace)
    assert second.start(resume_thread_id=thread_id).thread_id == thread_id
    second.turn("two")
    third = Session(pool, workspace)  # e.g. an actor restarted without stopping its connector
    assert third.start(resume_thread_id=thread_id).thread_id == thread_id
    assert third.turn("three").status == "completed"
    assert not second.since(ev.TurnStarted)[1:] and len(pool.ask(Describe(), timeout=5)) == 1
    second.connector.send_message(9, "stale")
    assert second.result(9).error_code == "invalid_state"


@pytest.mark.codex
def test_sessions_share_a_process_and_stay_isolated(pool, sim, workspace):
    names = ["AAA", "BBB", "CCC"]
    sim.set_script([{"match": f"ping-{n}", "text": f"pong-{n}", "chunk": 2} for n in names])
    sessions = {n: Session(pool, workspace) for n in names}
    threads = {n: s.start().thread_id for n, s in sessions.items()}
    assert len(set(threads.values())) == 3
    (proc,) = pool.ask(Describe(), timeout=5)
    assert proc["load"] == 3
    for n, s in sessions.items():
        s.connector.send_message(1, f"ping-{n}")
    for n, s in sessions.items():
        s.wait(ev.TurnCompleted)
        texts = [m.text for m in s.since(ev.AgentMessage)]
        assert texts == [f"pong-{n}"], (n, texts)
        assert "".join(d.delta for d in s.since(ev.AgentMessageDelta)) == f"pong-{n}"
    for s in sessions.values():
        s.connector.stop()


@pytest.mark.codex
def test_resume_unknown_thread_is_fatal_with_codex_text(pool, workspace):
    session = Session(pool, workspace)
    session.connector.start(session.events.put,
                            resume_thread_id="01a20000-0000-7000-8000-000000000000")
    lost = session.wait(ev.BackendLost)
    assert lost.fatal and "thread/resume" in lost.reason and len(lost.reason) > 30
    session.connector.send_message(3, "hello?")
    assert not session.result(3).ok


@pytest.mark.codex
def test_resume_refused_by_writer_lock(pool, codex_env, codex_binary, sim, workspace):
    owner = Session(pool, workspace)
    thread_id = owner.start().thread_id
    owner.turn("make a rollout")
    other_pool = CodexPoolActor.start(CodexConfig(), env=codex_env, binary=codex_binary)
    try:
        intruder = Session(other_pool, workspace)
        intruder.connector.start(intruder.events.put, resume_thread_id=thread_id)
        lost = intruder.wait(ev.BackendLost)
        assert lost.fatal and "active writer" in lost.reason
    finally:
        other_pool.stop(timeout=10)
    assert owner.turn("owner unaffected").status == "completed"


@pytest.mark.codex
def test_model_list(pool):
    models = list_models(pool, timeout=WAIT_S)
    assert "gpt-5.5" in [m.id for m in models]
