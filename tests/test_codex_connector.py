"""CodexConnector + CodexPoolActor end to end: the real pinned codex against SimServer.

No daemon: a pool actor, connectors, and a queue per session collecting what
they emit (``codex_session.Session``). Every wait is a bounded ``queue.get``.
CODEX_HOME lives under ``conftest.TEST_ROOT`` (codex refuses helper binaries
under /tmp). The pool's fault handling against fake app-servers is in
test_codex_pool_faults.py.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from actors.codex_pool import CodexPoolActor, Describe, list_models
from codex_session import WAIT_S, Session, make_base_dir
from orbitdock.codex.home import clean_env, write_sim_codex_home
from orbitdock.codex.install import CodexNotFound, find_codex
from orbitdock.config import CodexConfig
from orbitdock.connectors import events as ev
from orbitdock.sim.server import SimServer


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
    yield from make_base_dir("connector")


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
    session.connector.call("interrupt", token)
    assert session.result(token).error_code == "invalid_state"  # nothing to interrupt yet
    assert session.send("take your time").ok
    session.wait(ev.AgentMessageDelta)  # the stream is now parked mid-turn
    session.connector.call("interrupt", token := 100)
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
    session.connector.call("steer", 8, content="STEER-42 change course")
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
    second.connector.call("send_message", 9, content="stale")
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
        s.connector.call("send_message", 1, content=f"ping-{n}")
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
    session.connector.call("send_message", 3, content="hello?")
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
