"""CodexPoolActor against fake app-servers: protocol faults and crash recovery (the spare
and priority in test_codex_pool_spares.py).

Small Python scripts stand in for ``codex app-server`` so a test can hold, gate or
refuse resumes at will and kill the process at an exact point; the real codex runs in
test_codex_connector.py. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from actors.codex_pool import CodexPoolActor, Describe, list_models
from codex_session import WAIT_S, Session, make_base_dir
from fake_app_server import FAKE_RECOVERY_SERVER, fake_codex
from orbitdock.config import CodexConfig
from orbitdock.connectors import events as ev


@pytest.fixture(autouse=True)
def sinks_move_only_as_declared(caplog):
    """No sink changes state outside orbitdock.codex.sink_state.SINK_TRANSITIONS."""
    yield
    assert not [r for r in caplog.records if "unexpected state change" in r.getMessage()]


@pytest.fixture(scope="module")
def base_dir():
    yield from make_base_dir("pool-faults")


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
    binary = fake_codex(base_dir, FAKE_APP_SERVER)
    log = base_dir / f"fake-{uuid.uuid4().hex[:6]}.log"
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
        session.connector.call("send_message", 1, content="hello")
        lost = session.wait(ev.BackendLost)
        assert lost.fatal and "code 2" in lost.reason and "broken install" in lost.reason
        assert session.result(1).ok is False
        with pytest.raises(RuntimeError, match="code 2"):
            list_models(pool, timeout=WAIT_S)
    finally:
        pool.stop(timeout=10)


def test_lost_process_keeps_acknowledged_prompts_and_resumes_concurrently(base_dir):
    """Problem 3 and 6 without codex: what a dying app-server leaves, and how it is resumed.

    Each session's prompt stops the fake at another point after the ``turn/start``
    answer (then the fake is killed): its turn is closed failed either way, and its
    prompt appears exactly once. The 6 sessions are then resumed 3 per process
    (``recovery_batch``), the waiting ones dealt first, and each new process answers no
    ``thread/resume`` before it holds all 3: they must all be in flight at once.
    """
    binary = fake_codex(base_dir, FAKE_RECOVERY_SERVER)
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
        started.connector.call("steer", 50, content="steer that codex acknowledged")
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


@pytest.mark.parametrize("hold_s", [WAIT_S, 0.3])
def test_resumed_sessions_work_waits_for_the_other_resumes(base_dir, hold_s):
    """After a crash, a resumed session's new work is held until the last resume on its
    process is done (a turn there would take the CPU that resume needs), or until
    ``resume_hold_s`` has passed."""
    binary = fake_codex(base_dir, FAKE_RECOVERY_SERVER)
    gates = base_dir / f"gates-{uuid.uuid4().hex[:6]}"
    gates.mkdir()
    env = {**os.environ, "FAKE_RESUME_BARRIER": "1", "FAKE_RESUME_GATES": str(gates)}
    config = CodexConfig(threads_per_process=2, recovery_batch=2, spare_processes=0,
                         resume_timeout_s=WAIT_S, resume_hold_s=hold_s)
    pool = CodexPoolActor.start(config, env=env, binary=binary)
    try:
        first, second = Session(pool, base_dir), Session(pool, base_dir)
        first_id, second_id = (s.start().thread_id for s in (first, second))
        (gates / first_id).touch()
        (proc,) = pool.ask(Describe(), timeout=5)
        os.kill(proc["pid"], signal.SIGKILL)
        first.wait(ev.BackendRecovered)
        first.connector.call("send_message", "after", content="after recovery")
        first.connector.call("steer", "steer", content="and a steer")  # held behind it, in order
        if hold_s == WAIT_S:
            with pytest.raises(AssertionError, match="no CommandResult"):
                first.wait(ev.CommandResult, timeout=0.5)  # the second is still resuming
            (gates / second_id).touch()
        results = [first.wait(ev.CommandResult) for _ in range(2)]
        assert [(r.token, r.ok) for r in results] == [("after", True), ("steer", True)]
        queued = [second.events.get_nowait() for _ in range(second.events.qsize())]
        # a short hold ended with the second resume still open: the work went to codex
        assert any(isinstance(e, ev.BackendRecovered) for e in queued) is (hold_s == WAIT_S)
        (gates / second_id).touch()
        if hold_s != WAIT_S:
            second.wait(ev.BackendRecovered)
        assert second.send("the second works too").ok
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
    binary = fake_codex(base_dir, FAKE_RECOVERY_SERVER)
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
