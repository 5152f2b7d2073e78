"""CodexPoolActor against fake app-servers: protocol faults, crash recovery, spares, priority.

Small Python scripts stand in for ``codex app-server`` so a test can hold, gate or
refuse resumes at will and kill the process at an exact point; the real codex runs in
test_codex_connector.py. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from actors.codex_pool import CodexPoolActor, Describe, list_models
from codex_session import WAIT_S, Session, make_base_dir
from orbitdock.config import CodexConfig
from orbitdock.connectors import events as ev


@pytest.fixture(scope="module")
def base_dir():
    yield from make_base_dir("pool-faults")


def fake_codex(base_dir: Path, server_source: str) -> Path:
    """An executable that runs ``server_source`` (a fake app-server) with its arguments."""
    name = uuid.uuid4().hex[:6]
    script = base_dir / f"fake_server_{name}.py"
    script.write_text(server_source)
    binary = base_dir / f"fake-codex-{name}"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    binary.chmod(0o755)
    return binary


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
gates = os.environ.get("FAKE_RESUME_GATES", "")  # or each until <gates>/<thread id> exists
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
def answer_when_open(m):
    while not os.path.exists(os.path.join(gates, m["params"]["threadId"])):
        time.sleep(0.02)
    send({"id": m["id"], "result": {"thread": {"id": m["params"]["threadId"]}}})
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
        if gates:
            threading.Thread(target=answer_when_open, args=(msg,), daemon=True).start()
            continue
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
        first.connector.send_message("after", "after recovery")
        first.connector.steer("steer", "and a steer")  # held behind it, in order
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
    binary = fake_codex(base_dir, FAKE_RECOVERY_SERVER)
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
    binary = fake_codex(base_dir, FAKE_RECOVERY_SERVER)  # (it passes its arguments on)
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
