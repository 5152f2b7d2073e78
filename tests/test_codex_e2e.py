"""Direct Codex sessions end to end: ZeroMQ protocol -> daemon -> real codex app-server -> sim.

Crashed app-servers are in ``test_codex_e2e_crash.py``; the shared fixtures in
``codex_daemon_env.py``.
"""

from __future__ import annotations

import sys

import pytest

from codex_daemon_env import (  # noqa: F401  (fixtures are found by name)
    CODEX_MARKS,
    TURN_TIMEOUT_S,
    codex_daemon,
    create,
    state,
    wait_status,
    wait_turn_done,
)
from conftest import wait_until
from orbitdock.client import RemoteError
from orbitdock.codex.install import find_codex
from orbitdock.protocol import messages as m

pytestmark = CODEX_MARKS


def test_streamed_reply_reaches_a_subscriber(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace)
    sub = d.subscription()
    sub.watch_session(sid)
    assert sub.wait_synced(10)
    sim.set_script([{"text": "Hello from the scripted model, streamed in pieces.", "chunk": 5}])
    client.request(m.SendMessage(session_id=sid, content="Say hello"))
    st = wait_status(client, sid, "reply")
    assert st.messages[-1].content == "Hello from the scripted model, streamed in pieces."
    assert st.token_usage.input_tokens > 0 and st.token_usage.context_window > 0
    assert wait_until(lambda: (sub.state(sid) or st).revision == st.revision, 10, poll=sub.poll)
    assert sub.stats.events > 10  # the deltas arrived one by one
    assert sub.state(sid).messages[-1].content == st.messages[-1].content


def test_exec_approval_accept_and_decline_and_patch_diff(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    ws = codex_daemon.workspace
    sid = create(client, ws)
    sim.set_script([
        {"call": "exec_command", "args": {"cmd": "echo yes > accepted.txt", "login": False}},
        {"call": "exec_command", "args": {"cmd": "echo no > declined.txt", "login": False}},
        {"custom": "apply_patch",
         "input": "*** Begin Patch\n*** Add File: hello.py\n+print('hi')\n*** End Patch\n"},
        {"text": "all done"},
    ])
    client.request(m.SendMessage(session_id=sid, content="do things"))
    st = wait_status(client, sid, "permission")
    first = st.approvals[0]
    assert first.type == "exec" and "accepted.txt" in first.command
    assert "accept" in first.available_decisions
    assert client.request(m.ApproveTool(approval_id=first.id, decision="accept")).outcome == "applied"
    with pytest.raises(Exception, match="stale_approval"):
        client.request(m.ApproveTool(approval_id=first.id, decision="accept"))
    st = wait_until(lambda: any(a.id != first.id for a in state(client, sid).approvals), TURN_TIMEOUT_S)
    second = state(client, sid).approvals[0]
    assert "declined.txt" in second.command
    client.request(m.ApproveTool(approval_id=second.id, decision="decline"))
    assert wait_until(lambda: state(client, sid).approvals and
                      state(client, sid).approvals[0].type == "patch", TURN_TIMEOUT_S)
    patch = state(client, sid).approvals[0]
    assert "hello.py" in (patch.diff or "") or "hello.py" in (patch.file_path or "")
    client.request(m.ApproveTool(approval_id=patch.id, decision="accept"))
    st = wait_status(client, sid, "reply")
    assert (ws / "accepted.txt").exists() and not (ws / "declined.txt").exists()
    assert (ws / "hello.py").read_text() == "print('hi')\n"
    tools = [x for x in st.messages if x.type == "tool"]
    assert any(x.is_error for x in tools) and st.tool_count >= 3
    assert st.current_diff and "hello.py" in st.current_diff


def test_question_answered_and_plan(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace)
    sim.set_script([
        {"call": "update_plan", "args": {"plan": [{"step": "ask", "status": "in_progress"}]}},
        {"call": "request_user_input", "args": {"questions": [{
            "id": "color", "header": "Color", "question": "Which color?",
            "options": [{"label": "Blue", "description": "cool"},
                        {"label": "Red", "description": "warm"}]}]}},
        {"match": "Blue", "text": "Blue it is."},
    ])
    client.request(m.SendMessage(session_id=sid, content="pick a color"))
    st = wait_status(client, sid, "question")
    assert st.attention_reason == "awaitingQuestion"
    question = st.approvals[0]
    assert question.questions[0].id == "color"
    assert st.current_plan and st.current_plan[0]["step"] == "ask"
    client.request(m.AnswerQuestion(approval_id=question.id, answers={"color": ["Blue"]}))
    st = wait_status(client, sid, "reply")
    assert st.messages[-1].content == "Blue it is."


def test_interrupt_rename_and_autonomy_change(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    sim.set_script([{"text": "thinking for a long time", "hold": 60}])
    client.request(m.SendMessage(session_id=sid, content="long task"))
    wait_status(client, sid, "working")
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)
    client.request(m.InterruptSession(session_id=sid))
    st = wait_status(client, sid, "waiting")
    assert st.current_turn_id is None

    client.request(m.RenameSession(session_id=sid, name="Renamed via orbitdock"))
    assert wait_until(lambda: state(client, sid).display_name == "Renamed via orbitdock", 10)

    # never -> untrusted: the next turn's command now asks first.
    client.request(m.UpdateSessionConfig(session_id=sid, approval_policy="untrusted"))
    sim.set_script([{"call": "exec_command", "args": {"cmd": "true", "login": False}},
                    {"text": "ok"}])
    client.request(m.SendMessage(session_id=sid, content="run it"))
    st = wait_status(client, sid, "permission")  # (was "waiting" before this turn)
    assert st.approval_policy == "untrusted"
    client.request(m.ApproveTool(approval_id=st.approvals[0].id, decision="accept"))
    wait_status(client, sid, "reply")


def test_resume_after_daemon_restart_keeps_context(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace)
    sim.set_script([{"text": "remembered: PINEAPPLE"}])
    client.request(m.SendMessage(session_id=sid, content="remember the word PINEAPPLE"))
    wait_status(client, sid, "reply")
    d.stop()
    d.start()
    client = d.client(timeout=10)
    assert state(client, sid).work_status == "reply"
    sim.set_script([{"text": "you said pineapple"}])
    before = state(client, sid).turn_count
    client.request(m.SendMessage(session_id=sid, content="what word?"), timeout=TURN_TIMEOUT_S)
    st = wait_turn_done(client, sid, before)
    assert st.messages[-1].content == "you said pineapple"
    last_request = sim.requests()[-1]
    assert "PINEAPPLE" in str(last_request["input"])  # the model saw the earlier turn


def test_end_then_resume_keeps_context_and_missing_binary_is_clear(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    sim.set_script([{"text": "noted MANGO"}])
    client.request(m.SendMessage(session_id=sid, content="remember MANGO"))
    st = wait_status(client, sid, "reply")
    assert st.rate_limits is not None  # account/rateLimits/updated reached the session
    client.request(m.EndSession(session_id=sid))
    assert state(client, sid).status == "ended"
    with pytest.raises(Exception, match="invalid_state"):
        client.request(m.SendMessage(session_id=sid, content="too late"))
    resumed = client.request(m.ResumeSession(session_id=sid), timeout=TURN_TIMEOUT_S).session
    assert resumed.status == "active"
    sim.set_script([{"text": "it was mango"}])
    before = state(client, sid).turn_count
    client.request(m.SendMessage(session_id=sid, content="which fruit?"), timeout=TURN_TIMEOUT_S)
    assert wait_turn_done(client, sid, before).messages[-1].content == "it was mango"
    assert "MANGO" in str(sim.requests()[-1]["input"])


def test_missing_codex_binary_is_a_clear_error(daemon_factory, tmp_path):
    d = daemon_factory(ORBITDOCK_CODEX__BINARY=str(tmp_path / "no-such-codex"))
    client = d.client()
    with pytest.raises(Exception, match="unavailable: codex is not available"):
        client.request(m.CreateSession(provider="codex", cwd=str(tmp_path)))
    assert client.request(m.GetStatus()).sessions == 0
    with pytest.raises(Exception, match="unavailable: codex is not available"):
        client.request(m.GetCodexStatus())
    warnings = [line for line in d.log_lines() if "codex sessions unavailable" in line]
    assert warnings and "no-such-codex" in warnings[0]


DROP_FIRST_THREAD_START = r'''
import json, os, subprocess, sys, threading
real, log = os.environ["REAL_CODEX"], os.environ["PROXY_LOG"]
if sys.argv[1:2] != ["app-server"]:
    os.execv(real, [real, *sys.argv[1:]])
child = subprocess.Popen([real, *sys.argv[1:]], stdin=subprocess.PIPE, stdout=sys.stdout)
dropped = os.path.exists(log)  # one drop per test, whichever process sees it first
for line in sys.stdin:
    method = json.loads(line).get("method")
    with open(log, "a") as fh:
        fh.write(f"{method}\n")
    if method == "thread/start" and not dropped:
        dropped = True  # codex never hears of it: orbitdock's request times out
        continue
    child.stdin.write(line.encode())
    child.stdin.flush()
child.stdin.close()
sys.exit(child.wait())
'''


def test_a_create_whose_thread_start_timed_out_is_refused_and_leaves_nothing(
        codex_daemon, sim, tmp_path):
    """The backend gave up (codex never answered thread/start): the create is answered
    with that error and no session exists (no zombie "waiting" session); the next create
    works."""
    script, log = tmp_path / "drop_first_thread_start.py", tmp_path / "proxy.log"
    script.write_text(DROP_FIRST_THREAD_START)
    shim = tmp_path / "codex-proxy"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    shim.chmod(0o755)
    d = codex_daemon(ORBITDOCK_CODEX__BINARY=str(shim), ORBITDOCK_CODEX__REQUEST_TIMEOUT_S="3",
                     REAL_CODEX=str(find_codex()), PROXY_LOG=str(log))
    client = d.client(timeout=10)
    with pytest.raises(RemoteError) as caught:
        create(client, codex_daemon.workspace, policy="never")
    assert caught.value.code == "backend_error" and "thread/start failed" in caught.value.message
    assert client.request(m.GetStatus()).sessions == 0
    assert client.request(m.SubscribeList()).sessions == []

    sid = create(client, codex_daemon.workspace, policy="never")
    sim.set_script([{"text": "second time lucky"}])
    client.request(m.SendMessage(session_id=sid, content="are you there?"),
                   timeout=TURN_TIMEOUT_S)
    st = wait_turn_done(client, sid, 0)
    assert st.messages[-1].content == "second time lucky"
    assert st.thread_id is not None and st.last_error is None
    assert log.read_text().splitlines().count("thread/start") == 2
    d.stop()
    d.start()  # nothing of the refused session comes back either
    assert [s.id for s in d.client().request(m.SubscribeList()).sessions] == [sid]


@pytest.mark.parametrize("field, value, allowed", [
    ("model", "gpt-nope", "gpt-5.5"),
    ("sandbox_mode", "wide-open", "workspace-write"),
    ("approval_policy", "sometimes", "on-request"),
    ("cwd", "/no/such/dir", "existing directory"),
    ("cwd", "FILE", "a directory"),
])
def test_create_with_a_bad_value_is_refused_before_anything_exists(
        codex_daemon, field, value, allowed):
    d = codex_daemon()
    client = d.client(timeout=10)
    if value == "FILE":
        value = str(codex_daemon.workspace / "a-file")
        (codex_daemon.workspace / "a-file").write_text("x")
    fields = dict(provider="codex", cwd=str(codex_daemon.workspace), model="gpt-5.5",
                  approval_policy="never", sandbox_mode="workspace-write")
    fields[field] = value
    with pytest.raises(RemoteError) as caught:
        client.request(m.CreateSession(**fields), timeout=TURN_TIMEOUT_S)
    assert caught.value.code == "invalid_argument", caught.value
    assert field in caught.value.message and allowed in caught.value.message
    assert client.request(m.GetStatus()).sessions == 0


def test_config_change_with_a_bad_value_is_refused_and_changes_nothing(codex_daemon):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    for change in (dict(model="gpt-nope"), dict(sandbox_mode="wide-open"),
                   dict(approval_policy="sometimes")):
        with pytest.raises(RemoteError) as caught:
            client.request(m.UpdateSessionConfig(session_id=sid, **change),
                           timeout=TURN_TIMEOUT_S)
        assert caught.value.code == "invalid_argument" and next(iter(change)) in \
            caught.value.message
    st = state(client, sid)
    assert (st.model, st.sandbox_mode, st.approval_policy) == \
        ("gpt-5.5", "workspace-write", "never")
    client.request(m.UpdateSessionConfig(session_id=sid, approval_policy="on-request"))
    assert state(client, sid).approval_policy == "on-request"


def test_a_passivated_session_releases_its_codex_thread_and_resumes_it_when_asked(
        codex_daemon, sim):
    d = codex_daemon(ORBITDOCK_SESSIONS__PASSIVATE_AFTER_S="0.5",
                     ORBITDOCK_SESSIONS__PASSIVATE_CHECK_S="0.1")
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    sim.set_script([{"text": "noted KIWI"}])
    client.request(m.SendMessage(session_id=sid, content="remember KIWI"))
    wait_status(client, sid, "reply")

    def hosted() -> list[str]:
        report = client.request(m.GetCodexStatus()).report
        return [s for p in report["processes"] for s in p["sessions"]]

    assert sid in hosted()
    actors = client.request(m.GetStatus()).actors
    # Idle: the actor is released and its codex thread detached (thread/unsubscribe).
    assert wait_until(lambda: client.request(m.GetStatus()).actors < actors
                      and sid not in hosted(), 15)
    sim.set_script([{"text": "it was kiwi"}])
    before = state(client, sid).turn_count  # wakes it, without a backend yet
    assert sid not in hosted()
    client.request(m.SendMessage(session_id=sid, content="which fruit?"), timeout=TURN_TIMEOUT_S)
    assert wait_turn_done(client, sid, before).messages[-1].content == "it was kiwi"
    assert "KIWI" in str(sim.requests()[-1]["input"])  # thread/resume kept the context
