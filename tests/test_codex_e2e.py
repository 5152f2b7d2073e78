"""Direct Codex sessions end to end: ZeroMQ protocol -> daemon -> real codex app-server -> sim."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import uuid

import psutil
import pytest

from conftest import REPO, wait_until
from orbitdock.codex.home import write_sim_codex_home
from orbitdock.codex.install import CodexNotFound, find_codex
from orbitdock.protocol import messages as m
from orbitdock.sim.server import SimServer

pytestmark = pytest.mark.codex
TURN_TIMEOUT_S = 30

try:
    find_codex()
except CodexNotFound as exc:  # pragma: no cover - bin/setup installs it
    pytestmark = [pytestmark, pytest.mark.skip(reason=str(exc))]


@pytest.fixture
def sim():
    with SimServer() as server:
        server.start()
        yield server


@pytest.fixture
def codex_daemon(daemon_factory, sim, tmp_path):
    # CODEX_HOME outside /tmp: codex refuses its helper binaries under the temp dir.
    codex_home = REPO / ".orbitdock-test" / f"e2e-{uuid.uuid4().hex[:8]}"
    env = write_sim_codex_home(codex_home, sim.url)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    holder = {}

    def start(**extra):
        holder["d"] = daemon_factory(home=tmp_path / "home", **env, **extra)
        return holder["d"]

    start.workspace = workspace
    start.codex_home = codex_home
    yield start
    if "d" in holder:
        holder["d"].stop()
    shutil.rmtree(codex_home, ignore_errors=True)


def state(client, sid):
    return client.request(m.SubscribeSession(session_id=sid)).session


def create(client, workspace, policy="untrusted", name=None):
    return client.request(m.CreateSession(
        provider="codex", cwd=str(workspace), model="gpt-5.5", approval_policy=policy,
        sandbox_mode="workspace-write", name=name), timeout=TURN_TIMEOUT_S).session.id


def wait_status(client, sid, *statuses, timeout=TURN_TIMEOUT_S):
    assert wait_until(lambda: state(client, sid).work_status in statuses, timeout), \
        (state(client, sid).work_status, state(client, sid).last_error)
    return state(client, sid)


def wait_turn_done(client, sid, turns_before, timeout=TURN_TIMEOUT_S):
    def done():
        st = state(client, sid)
        return st.turn_count > turns_before and st.current_turn_id is None
    assert wait_until(done, timeout), state(client, sid)
    return state(client, sid)


def app_servers(daemon_pid: int, name: str = "") -> list[int]:
    """The daemon's live app-server processes (whose command line also holds ``name``)."""
    pids = []
    for proc in psutil.Process(daemon_pid).children(recursive=True):
        try:
            cmdline = proc.cmdline()
            if (proc.status() != psutil.STATUS_ZOMBIE and "app-server" in cmdline
                    and name in " ".join(cmdline)):
                pids.append(proc.pid)
        except psutil.Error:  # exited while we looked
            pass
    return pids


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


def test_app_server_killed_sessions_resume_and_others_stay_isolated(codex_daemon, sim):
    """4 sessions on the killed process (4 per process) come back with their context;
    the 5th, on the other process, sees nothing. Prints the time from kill to resumed."""
    d = codex_daemon(ORBITDOCK_CODEX__THREADS_PER_PROCESS="4")
    client = d.client(timeout=10)
    victims = [create(client, codex_daemon.workspace, policy="never") for _ in range(4)]
    (victim,) = app_servers(d.proc.pid)  # the four share one app-server process
    bystander = create(client, codex_daemon.workspace, policy="never")  # on a second one
    ids = [*victims, bystander]
    for i, sid in enumerate(ids):
        sim.append([{"match": f"MARK{i}", "text": f"reply {i}"}])
        client.request(m.SendMessage(session_id=sid, content=f"MARK{i}"))
    for i, sid in enumerate(ids):
        assert wait_status(client, sid, "reply").messages[-1].content == f"reply {i}"
    assert len(app_servers(d.proc.pid)) == 2
    revs = {sid: state(client, sid).revision for sid in ids}
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    recovered: dict[str, float] = {}

    def all_recovered() -> bool:
        for sid in victims:
            st = state(client, sid)
            if sid not in recovered and st.revision > revs[sid] and st.last_error is None:
                recovered[sid] = time.monotonic() - killed_at
        return len(recovered) == len(victims)
    assert wait_until(all_recovered, 20), (recovered, [state(client, s).last_error for s in ids])
    print(f"\napp-server kill -> resumed, per session: "
          f"{sorted(round(t, 2) for t in recovered.values())} s")
    st = state(client, bystander)  # untouched (later turns' rate limits reach it, so look now)
    assert st.revision == revs[bystander] and st.last_error is None
    for i, sid in enumerate(victims):
        sim.append([{"match": f"AGAIN{i}", "text": f"back again {i}"}])
        before = state(client, sid).turn_count
        client.request(m.SendMessage(session_id=sid, content=f"AGAIN{i}"))
        st = wait_turn_done(client, sid, before)
        assert st.messages[-1].content == f"back again {i}"
        assert f"MARK{i}" in str(sim.requests()[-1]["input"])  # resumed with its context
        assert [x.content for x in st.messages if x.type == "user"] == [f"MARK{i}", f"AGAIN{i}"]
    st = state(client, bystander)
    assert st.last_error is None and not [x for x in st.messages if x.is_error]
    assert [x.content for x in st.messages if x.type == "assistant"] == ["reply 4"]


# A stand-in for the app-server binary: runs the real one and passes its stdout through,
# except that once armed (GATE_ARM_FILE exists when a turn/start goes in; one turn, one
# process) it lets only the lines up to GATE_POINT out; codex itself runs on unaware. Killed
# then, it is an app-server that died right after answering turn/start ("response"),
# after turn/started ("started") or after echoing the prompt ("echoed").
GATE = r"""
import json, os, subprocess, sys, threading
real = os.environ["GATE_REAL_CODEX"]
if sys.argv[1:2] != ["app-server"]:
    os.execv(real, [real, *sys.argv[1:]])  # --version and friends
arm, point = os.environ["GATE_ARM_FILE"], os.environ["GATE_POINT"]
child = subprocess.Popen([real, *sys.argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
armed = {}
def pump():
    for line in sys.stdin.buffer:
        msg = json.loads(line) if line.strip() else {}
        if msg.get("method") == "turn/start" and not armed:
            try:
                os.rename(arm, arm + ".fired")
                armed["id"] = msg["id"]
            except OSError:
                pass
        child.stdin.write(line)
        child.stdin.flush()
    child.stdin.close()
threading.Thread(target=pump, daemon=True).start()
def passes(msg):
    if "method" not in msg:
        return msg.get("id") == armed["id"]
    if point in ("started", "echoed") and msg["method"] == "turn/started":
        return True
    item = (msg.get("params") or {}).get("item") or {}
    echo = msg["method"] == "item/completed" and item.get("type") == "userMessage"
    return point == "echoed" and echo
for line in child.stdout:
    if armed and not passes(json.loads(line)):
        continue
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
"""


@pytest.mark.parametrize("point", ["response", "started", "echoed"])
def test_acknowledged_prompt_survives_app_server_death(codex_daemon, sim, tmp_path, point):
    """Problem 3: killed right after turn/start returned, the prompt is kept exactly once.

    Whether codex's turn/started and its echo of the prompt got out before the death or
    not, the turn ends failed (not stuck "working"), the prompt is in the session's
    messages once, and after the resume (codex's resumed thread holds the prompt) the
    next turn does not add it again.
    """
    gate = tmp_path / "codex-gate"
    gate.write_text(f"#!{sys.executable}\n{GATE}")
    gate.chmod(0o755)
    arm = tmp_path / "gate-armed"
    d = codex_daemon(ORBITDOCK_CODEX__BINARY=str(gate), GATE_REAL_CODEX=str(find_codex()),
                     GATE_ARM_FILE=str(arm), GATE_POINT=point)
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    sim.set_script([{"match": "WARMUP", "text": "warm"},
                    {"match": "GATED", "text": "nobody reads this", "hold": 60}])
    client.request(m.SendMessage(session_id=sid, content="WARMUP"))
    wait_status(client, sid, "reply")
    (gated,) = app_servers(d.proc.pid, name="codex-gate")
    arm.touch()
    reply = client.request(m.SendMessage(session_id=sid, content="GATED prompt"))
    turn_id = reply.result["turn_id"]  # acknowledged: the client holds this turn id
    if point == "started":
        wait_status(client, sid, "working")
    elif point == "echoed":
        assert wait_until(lambda: "GATED prompt" in _user_texts(state(client, sid)),
                          TURN_TIMEOUT_S)
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)  # codex is mid-turn
    revision = state(client, sid).revision
    os.kill(gated, signal.SIGKILL)
    assert wait_until(lambda: (st := state(client, sid)).revision > revision
                      and st.last_error is None, TURN_TIMEOUT_S), state(client, sid).last_error
    st = state(client, sid)
    assert _user_texts(st) == ["WARMUP", "GATED prompt"]
    assert st.work_status == "waiting" and st.current_turn_id is None and st.turn_count == 2
    (prompt,) = [x for x in st.messages if x.content == "GATED prompt"]
    assert prompt.turn_id == turn_id  # the acknowledged turn is the one that was closed
    assert any(x.is_error and "SIGKILL" in x.content for x in st.messages)
    sim.append([{"match": "AFTER", "text": "after the crash"}])
    client.request(m.SendMessage(session_id=sid, content="AFTER"))
    st = wait_turn_done(client, sid, 2)
    assert st.messages[-1].content == "after the crash"
    assert "GATED prompt" in str(sim.requests()[-1]["input"])  # codex's resumed thread has it
    assert _user_texts(st) == ["WARMUP", "GATED prompt", "AFTER"]


def _user_texts(st) -> list[str]:
    return [x.content for x in st.messages if x.type == "user"]


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


def test_a_session_whose_thread_start_timed_out_starts_again_on_the_next_prompt(
        codex_daemon, sim, tmp_path):
    """The backend gave up (codex never answered thread/start): the session says so, and
    the next prompt gets a new backend instead of ``unavailable`` until a restart."""
    script, log = tmp_path / "drop_first_thread_start.py", tmp_path / "proxy.log"
    script.write_text(DROP_FIRST_THREAD_START)
    shim = tmp_path / "codex-proxy"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    shim.chmod(0o755)
    d = codex_daemon(ORBITDOCK_CODEX__BINARY=str(shim), ORBITDOCK_CODEX__REQUEST_TIMEOUT_S="3",
                     REAL_CODEX=str(find_codex()), PROXY_LOG=str(log))
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    assert wait_until(lambda: "thread/start failed" in (state(client, sid).last_error or ""),
                      TURN_TIMEOUT_S), state(client, sid)
    assert state(client, sid).thread_id is None

    sim.set_script([{"text": "second time lucky"}])
    before = state(client, sid).turn_count
    client.request(m.SendMessage(session_id=sid, content="are you there?"),
                   timeout=TURN_TIMEOUT_S)
    st = wait_turn_done(client, sid, before)
    assert st.messages[-1].content == "second time lucky"
    assert st.thread_id is not None and st.last_error is None
    assert log.read_text().splitlines().count("thread/start") == 2
