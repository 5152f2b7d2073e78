"""Codex thread operations end to end: orbitdockctl -> daemon -> real codex app-server -> sim.

Each operation through the command line a user runs, checked against what codex did
(its files, what the scripted model was sent) and what orbitdock shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
from conftest import REPO, wait_until
from orbitdock.protocol import messages as m

pytestmark = CODEX_MARKS


def ctl(d, *args, check=True):
    """orbitdockctl as a user runs it, against daemon ``d``; --json output parsed."""
    env = dict(os.environ, ORBITDOCK_HOME=str(d.home))
    proc = subprocess.run([sys.executable, "-m", "orbitdock.cli", "--json", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=TURN_TIMEOUT_S)
    if check and proc.returncode != 0:
        raise AssertionError(f"orbitdockctl {args} -> {proc.returncode}: {proc.stderr}")
    return json.loads(proc.stdout) if proc.returncode == 0 else proc


def rollouts(codex_home, where: str) -> list[str]:
    return sorted(p.name for p in (codex_home / where).rglob("rollout-*.jsonl"))


def one_turn(client, sim, sid, prompt, answer):
    sim.set_script([{"text": answer}])
    before = state(client, sid).turn_count
    client.request(m.SendMessage(session_id=sid, content=prompt), timeout=TURN_TIMEOUT_S)
    return wait_turn_done(client, sid, before)


def test_archive_then_unarchive_resumes_transparently(codex_daemon, sim):
    d = codex_daemon(watcher=True)
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    one_turn(client, sim, sid, "remember KIWI", "noted KIWI")
    home = codex_daemon.codex_home
    assert len(rollouts(home, "sessions")) == 1

    # Archiving during a turn is refused and changes nothing.
    sim.set_script([{"text": "busy", "hold": 60}])
    client.request(m.SendMessage(session_id=sid, content="long one"))
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)
    refused = ctl(d, "session", "archive", sid, check=False)
    assert refused.returncode == 1 and "invalid_state" in refused.stderr
    sim.release()
    wait_status(client, sid, "reply")

    assert ctl(d, "session", "archive", sid)["result"] == {"archived": True}
    assert wait_until(lambda: rollouts(home, "archived_sessions"), 10)
    assert rollouts(home, "sessions") == []
    with pytest.raises(Exception, match="invalid_state.*archived"):
        client.request(m.SendMessage(session_id=sid, content="while archived"))
    again = ctl(d, "session", "archive", sid, check=False)
    assert again.returncode == 1 and "already archived" in again.stderr

    assert ctl(d, "session", "unarchive", sid)["result"] == {"archived": False}
    assert wait_until(lambda: rollouts(home, "sessions"), 10)
    assert rollouts(home, "archived_sessions") == []
    # codex left the thread unloaded: the next prompt resumes it first, unseen by the user.
    st = one_turn(client, sim, sid, "which fruit?", "KIWI, of course")
    assert st.messages[-1].content == "KIWI, of course" and st.last_error is None
    assert "KIWI" in str(sim.requests()[-1]["input"])
    # The watcher saw the file leave and come back: no terminal session appeared, none ended.
    sessions = client.request(m.SubscribeList()).sessions
    assert [s.id for s in sessions] == [sid] and sessions[0].status == "active"


def test_archive_bad_input_is_coded(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    missing = ctl(d, "session", "archive", "od-no-such-session", check=False)
    assert missing.returncode == 1 and "not_found" in missing.stderr
    sid = create(client, codex_daemon.workspace, policy="never")
    not_archived = ctl(d, "session", "unarchive", sid, check=False)
    assert not_archived.returncode == 1 and "invalid_state" in not_archived.stderr
    client.request(m.EndSession(session_id=sid))
    ended = ctl(d, "session", "archive", sid, check=False)
    assert ended.returncode == 1 and "invalid_state" in ended.stderr


def test_archived_is_persisted_listed_apart_and_restored(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    other = create(client, codex_daemon.workspace, policy="never")
    one_turn(client, sim, sid, "remember PLUM", "noted PLUM")
    ctl(d, "session", "archive", sid)
    assert wait_until(lambda: state(client, sid).is_archived, 10)
    assert [s["id"] for s in ctl(d, "session", "list")] == [other]
    assert [s["id"] for s in ctl(d, "session", "list", "--archived")] == [sid]

    d.stop()
    d.start()
    client = d.client(timeout=10)
    st = state(client, sid)
    assert st.is_archived and st.status == "active"
    assert [s["id"] for s in ctl(d, "session", "list", "--archived")] == [sid]
    assert ctl(d, "session", "show", sid)["is_archived"] is True
    with pytest.raises(Exception, match="invalid_state.*archived"):
        client.request(m.SendMessage(session_id=sid, content="still archived"))
    ctl(d, "session", "unarchive", sid)
    assert wait_until(lambda: not state(client, sid).is_archived, 10)
    assert {s["id"] for s in ctl(d, "session", "list")} == {sid, other}
    st = one_turn(client, sim, sid, "which fruit?", "PLUM")
    assert st.last_error is None and "PLUM" in str(sim.requests()[-1]["input"])


def test_per_turn_overrides_reach_the_model_stick_and_persist(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    sim.set_script([{"text": "luna here"}])
    ctl(d, "session", "send", sid, "hi", "--wait", "--model", "gpt-6-luna", "--effort", "high",
        "--sandbox", "read-only", "--approval-policy", "untrusted")
    seen = sim.requests()[-1]
    assert seen["model"] == "gpt-6-luna" and seen["reasoning"]["effort"] == "high"
    st = state(client, sid)
    assert (st.model, st.effort, st.sandbox_mode, st.approval_policy) == (
        "gpt-6-luna", "high", "read-only", "untrusted")
    shown = ctl(d, "session", "show", sid)
    assert shown["effort"] == "high" and shown["model"] == "gpt-6-luna"

    # Refused before anything is sent: an effort the model does not offer, bad values.
    sent = len(sim.requests())
    for args, why in ((["--effort", "ultra"], "does not support effort 'ultra'"),
                      (["--model", "gpt-5.5", "--effort", "max"], "does not support effort"),
                      (["--sandbox", "everything"], "sandbox: unknown"),
                      (["--approval-policy", "sometimes"], "approval policy: unknown")):
        refused = ctl(d, "session", "send", sid, "nope", *args, check=False)
        assert refused.returncode == 1 and "invalid_argument" in refused.stderr, refused.stderr
        assert why in refused.stderr
    assert len(sim.requests()) == sent and state(client, sid).effort == "high"

    # The overrides stick for the next turn, and across a daemon restart.
    d.stop()
    d.start()
    client = d.client(timeout=10)
    st = state(client, sid)
    assert (st.model, st.effort, st.sandbox_mode) == ("gpt-6-luna", "high", "read-only")
    one_turn(client, sim, sid, "again", "still luna")
    seen = sim.requests()[-1]
    assert seen["model"] == "gpt-6-luna" and seen["reasoning"]["effort"] == "high"


def test_compaction_is_shown_while_it_runs_then_a_message(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    one_turn(client, sim, sid, "remember FIG", "noted FIG")
    tokens_before = state(client, sid).token_usage.total_tokens

    sim.set_script([{"text": "busy", "hold": 60}])
    client.request(m.SendMessage(session_id=sid, content="long one"))
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)
    refused = ctl(d, "session", "compact", sid, check=False)
    assert refused.returncode == 1 and "invalid_state" in refused.stderr
    sim.release()
    wait_status(client, sid, "reply")

    sub = d.subscription()
    sub.watch_session(sid)
    assert sub.wait_synced(10)
    sim.set_script([{"text": "SUMMARY: the user likes FIG", "hold": 60}])
    before = state(client, sid).turn_count
    ctl(d, "session", "compact", sid)
    assert wait_until(lambda: (sub.state(sid) or state(client, sid)).is_compacting, 10,
                      poll=sub.poll)
    assert wait_until(lambda: sim.state()["held"] >= 1 and "CONTEXT CHECKPOINT COMPACTION"
                      in str(sim.requests()[-1]["input"]), 10)
    assert ctl(d, "session", "show", sid)["is_compacting"] is True
    sim.release()
    st = wait_turn_done(client, sid, before)
    assert not st.is_compacting
    last = st.messages[-1]
    assert last.type == "compaction" and not last.is_in_progress
    assert st.token_usage.total_tokens > tokens_before
    assert wait_until(lambda: sub.state(sid).revision == st.revision, 10, poll=sub.poll)
    assert not sub.state(sid).is_compacting and sub.state(sid).messages[-1].type == "compaction"
    # The model continues from the summary, also after a daemon restart.
    d.stop()
    d.start()
    client = d.client(timeout=10)
    assert [x.type for x in state(client, sid).messages][-1] == "compaction"
    one_turn(client, sim, sid, "what fruit?", "FIG")
    assert "SUMMARY: the user likes FIG" in str(sim.requests()[-1]["input"])


def test_rollback_drops_the_turns_everywhere_and_from_the_model(codex_daemon, sim):
    d = codex_daemon(watcher=True)
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    one_turn(client, sim, sid, "first ALPHA", "ok ALPHA")
    one_turn(client, sim, sid, "second BETA", "ok BETA")
    one_turn(client, sim, sid, "third GAMMA", "ok GAMMA")
    sub = d.subscription()
    sub.watch_session(sid)
    assert sub.wait_synced(10)
    too_many = ctl(d, "session", "rollback", sid, "--turns", "4", check=False)
    assert too_many.returncode == 1 and "invalid_argument" in too_many.stderr
    assert state(client, sid).turn_count == 3

    reply = ctl(d, "session", "rollback", sid, "--turns", "2")
    assert reply["result"]["turns_dropped"] == 2 and reply["result"]["files_reverted"] is False
    assert "NOT reverted" in reply["result"]["warning"]
    st = state(client, sid)
    contents = [x.content for x in st.messages]
    assert "first ALPHA" in contents and not any("BETA" in c or "GAMMA" in c for c in contents)
    assert st.turn_count == 1 and st.total_message_count == len(st.messages)
    assert wait_until(lambda: sub.state(sid) is not None and sub.state(sid).revision == st.revision,
                      10, poll=sub.poll)
    assert [x.content for x in sub.state(sid).messages] == contents  # a fresh snapshot, no drift
    stored = client.request(m.GetMessages(session_id=sid)).messages
    assert [x.content for x in stored] == contents

    st = one_turn(client, sim, sid, "what do you remember?", "only ALPHA")
    sent = str(sim.requests()[-1]["input"])
    assert "ALPHA" in sent and "BETA" not in sent and "GAMMA" not in sent
    # thread/revert wrote a second rollout file: the watcher made no session of it.
    assert len(rollouts(codex_daemon.codex_home, "sessions")) == 2
    assert [s.id for s in client.request(m.SubscribeList()).sessions] == [sid]

    d.stop()
    d.start()
    client = d.client(timeout=10)
    st = state(client, sid)
    assert [x.content for x in st.messages][-2:] == ["what do you remember?", "only ALPHA"]
    assert not any("BETA" in x.content for x in st.messages) and st.turn_count == 2


def test_fork_carries_the_conversation_and_goes_its_own_way(codex_daemon, sim):
    d = codex_daemon(watcher=True)
    client = d.client(timeout=10)
    parent = create(client, codex_daemon.workspace, policy="never")
    one_turn(client, sim, parent, "remember LIME", "noted LIME")
    before = state(client, parent)

    forked = ctl(d, "session", "fork", parent, "--model", "gpt-6-luna", "--name", "lime fork")
    fid = forked["id"]
    assert fid != parent and forked["forked_from_session_id"] == parent
    assert forked["model"] == "gpt-6-luna" and forked["display_name"] == "lime fork"
    assert [x.content for x in before.messages] == [x["content"] for x in forked["messages"]]
    assert forked["thread_id"] and forked["thread_id"] != before.thread_id
    rows = {s["id"]: s for s in ctl(d, "session", "list")}
    assert rows[fid]["forked_from_session_id"] == parent
    assert ctl(d, "session", "show", fid)["forked_from_session_id"] == parent

    # codex compacts the history first when a turn switches to another model.
    sim.set_script([{"match": "CONTEXT CHECKPOINT COMPACTION", "text": "SUMMARY: user said LIME"},
                    {"text": "LIME (from the fork)"}])
    client.request(m.SendMessage(session_id=fid, content="which fruit?"), timeout=TURN_TIMEOUT_S)
    assert wait_until(lambda: state(client, fid).messages[-1].content == "LIME (from the fork)"
                      and state(client, fid).current_turn_id is None, TURN_TIMEOUT_S)
    st = state(client, fid)
    seen = sim.requests()[-1]
    assert "LIME" in str(seen["input"]) and seen["model"] == "gpt-6-luna"
    assert state(client, parent).revision == before.revision  # the parent is untouched
    stored = [x.content for x in client.request(m.GetMessages(session_id=fid)).messages]
    assert stored == [x.content for x in st.messages]
    assert len(client.request(m.GetMessages(session_id=parent)).messages) == len(before.messages)

    d.stop()
    d.start()
    client = d.client(timeout=10)
    st = state(client, fid)
    assert st.forked_from_session_id == parent and st.messages[-1].content == "LIME (from the fork)"
    assert [x.content for x in st.messages[:len(before.messages)]] == [
        x.content for x in before.messages]


def test_fork_bad_input_is_coded_and_creates_nothing(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    missing = ctl(d, "session", "fork", "od-no-such", check=False)
    assert missing.returncode == 1 and "not_found" in missing.stderr
    sid = create(client, codex_daemon.workspace, policy="never")
    assert wait_until(lambda: state(client, sid).thread_id, TURN_TIMEOUT_S)
    no_turn_yet = ctl(d, "session", "fork", sid, check=False)  # codex writes no rollout yet
    assert no_turn_yet.returncode == 1 and "backend_error" in no_turn_yet.stderr
    one_turn(client, sim, sid, "hello", "hi")
    for path in codex_daemon.codex_home.joinpath("sessions").rglob("rollout-*.jsonl"):
        path.unlink()  # the thread is gone from codex's disk
    client.request(m.EndSession(session_id=sid))  # unloaded: codex must read its rollout
    gone = ctl(d, "session", "fork", sid, check=False)
    assert gone.returncode == 1 and "backend_error" in gone.stderr and "fork failed" in gone.stderr
    # No fork was left behind: the history holds the parent alone (ended: not in the live list).
    assert [s.id for s in client.request(m.ListSessions(status="all")).sessions] == [sid]


def test_a_terminal_session_forks_into_a_direct_one(codex_daemon, sim):
    from watcher_env import codex_exec

    d = codex_daemon(watcher=True)
    client = d.client(timeout=10)
    sim.set_script([{"text": "terminal says MELON"}])
    tid = codex_exec(codex_daemon.codex_home, sim, codex_daemon.workspace, "remember MELON")
    assert wait_until(lambda: any(s.id == tid for s in client.request(m.SubscribeList()).sessions)
                      and state(client, tid).messages, 10)
    passive = state(client, tid)
    assert passive.integration_mode == "passive"
    # No operation drives a passive session (codex in the terminal owns its thread).
    for args in (["compact"], ["archive"], ["unarchive"], ["rollback"], ["review", "--custom", "x"],
                 ["mcp"], ["send", "--effort", "low"]):
        command = [args[0], tid, *args[1:]] if args[0] != "send" else ["send", tid, "hi", *args[1:]]
        refused = ctl(d, "session", *command, check=False)
        assert refused.returncode == 1 and "invalid_state" in refused.stderr, (args, refused.stderr)
    assert state(client, tid).revision == passive.revision

    forked = ctl(d, "session", "fork", tid)
    assert forked.get("integration_mode", "direct") == "direct"
    assert forked["forked_from_session_id"] == tid
    st = one_turn(client, sim, forked["id"], "which fruit?", "MELON, said the fork")
    assert "MELON" in str(sim.requests()[-1]["input"])
    assert st.messages[-1].content == "MELON, said the fork"
    assert state(client, tid).revision == passive.revision


REVIEW = {"findings": [{"title": "Magic number", "body": "x = 1 is unexplained.",
                        "confidence_score": 0.8, "priority": 2,
                        "code_location": {"absolute_file_path": "HELLO", "line_range":
                                          {"start": 2, "end": 3}}}],
          "overall_correctness": "patch is correct", "overall_explanation": "Fine overall.",
          "overall_confidence_score": 0.7}


def test_review_mode_reports_findings_and_refuses_steering(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    ws = codex_daemon.workspace
    subprocess.run(["git", "init", "-q", str(ws)], check=True, timeout=30)
    (ws / "hello.py").write_text("print('hi')\nx = 1\n")
    sid = create(client, ws, policy="never")
    review = dict(REVIEW, findings=[dict(REVIEW["findings"][0], code_location={
        "absolute_file_path": str(ws / "hello.py"), "line_range": {"start": 2, "end": 3}})])
    sim.set_script([{"text": json.dumps(review), "hold": 60}])
    before = state(client, sid).turn_count
    ctl(d, "session", "review", sid, "--uncommitted")
    assert wait_until(lambda: state(client, sid).work_status == "reviewing", TURN_TIMEOUT_S), \
        state(client, sid)
    assert state(client, sid).is_reviewing
    with pytest.raises(Exception, match="invalid_state.*review turn cannot be steered"):
        client.request(m.SteerTurn(session_id=sid, content="faster please"))
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)
    assert "uncommitted" in str(sim.requests()[-1]["input"]).lower() or \
        "current code changes" in str(sim.requests()[-1]["input"])
    sim.release()
    st = wait_turn_done(client, sid, before)
    assert st.work_status == "reply" and not st.is_reviewing
    reviews = [x for x in st.messages if x.type == "review"]
    assert len(reviews) == 1 and "Magic number" in reviews[0].content
    assert not any(x.type == "assistant" and x.content == reviews[0].content for x in st.messages)
    result = json.loads(reviews[0].tool_output)
    assert result["verdict"] == "patch is correct"
    assert result["findings"] == [{"title": "Magic number", "body": "x = 1 is unexplained.",
                                   "priority": 2, "confidence": 0.8,
                                   "file": str(ws / "hello.py"), "line_start": 2, "line_end": 3}]
    shown = subprocess.run([sys.executable, "-m", "orbitdock.cli", "session", "show", sid],
                           cwd=REPO, env=dict(os.environ, ORBITDOCK_HOME=str(d.home)),
                           capture_output=True, text=True, timeout=TURN_TIMEOUT_S).stdout
    assert "[P2] Magic number" in shown and "verdict: patch is correct" in shown
    # The thread goes on normally after the review; the review survives a daemon restart.
    assert one_turn(client, sim, sid, "thanks", "welcome").messages[-1].content == "welcome"
    d.stop()
    d.start()
    client = d.client(timeout=10)
    restored = [x for x in state(client, sid).messages if x.type == "review"]
    assert json.loads(restored[0].tool_output) == result


@pytest.fixture
def outside_git():
    """A directory with no git work tree above it (this machine's /tmp has a .git)."""
    import shutil
    import tempfile

    from orbitdock.codex.review import in_git_checkout

    for base in ("/var/tmp", "/dev/shm", tempfile.gettempdir()):
        if os.path.isdir(base) and not in_git_checkout(base):
            path = tempfile.mkdtemp(prefix="orbitdock-not-git-", dir=base)
            yield Path(path)
            shutil.rmtree(path, ignore_errors=True)
            return
    pytest.skip("no directory outside a git work tree on this machine")


def test_review_bad_input_is_coded(codex_daemon, sim, outside_git):
    d = codex_daemon()
    client = d.client(timeout=10)
    plain = outside_git
    sid = create(client, plain, policy="never")
    outside = ctl(d, "session", "review", sid, check=False)
    assert outside.returncode == 1 and "invalid_state" in outside.stderr
    assert "not in a git repository" in outside.stderr
    missing = ctl(d, "session", "review", "od-nope", "--base", "main", check=False)
    assert missing.returncode == 1 and "not_found" in missing.stderr
    with pytest.raises(Exception, match="invalid_argument.*needs a value"):
        client.request(m.ReviewSession(session_id=sid, target="commit"))
    assert state(client, sid).turn_count == 0


MCP_SERVER = REPO / "tests" / "fixtures" / "mcp_echo_server.py"


def test_mcp_servers_ready_and_failed_are_shown_and_persisted(codex_daemon, sim):
    from orbitdock.codex.home import write_sim_codex_home

    write_sim_codex_home(codex_daemon.codex_home, sim.url, extra_toml=f"""
[mcp_servers.echo]
command = {json.dumps(sys.executable)}
args = [{json.dumps(str(MCP_SERVER))}]
default_tools_approval_mode = "approve"

[mcp_servers.broken]
command = "/nonexistent/orbitdock-test-mcp-server"
args = []
""")
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")

    def settled():
        servers = {s.name: s for s in state(client, sid).mcp_servers}
        return (servers.get("echo") and servers["echo"].tools == ["echo"]
                and servers.get("broken") and servers["broken"].state == "failed")
    assert wait_until(settled, TURN_TIMEOUT_S), state(client, sid).mcp_servers
    st = state(client, sid)
    echo, broken = sorted(st.mcp_servers, key=lambda s: s.name, reverse=True)
    assert (echo.state, echo.tool_count, echo.error) == ("ready", 1, None)
    assert broken.tool_count == 0 and "No such file" in broken.error
    assert (st.mcp_server_count, st.mcp_failed_count) == (2, 1)
    row = next(s for s in client.request(m.SubscribeList()).sessions if s.id == sid)
    assert (row.mcp_server_count, row.mcp_failed_count) == (2, 1)

    listed = {s["name"]: s for s in ctl(d, "session", "mcp", sid)}
    assert listed["echo"]["state"] == "ready" and listed["echo"]["tools"] == ["echo"]
    assert listed["broken"]["state"] == "failed" and "No such file" in listed["broken"]["error"]
    text = subprocess.run([sys.executable, "-m", "orbitdock.cli", "session", "show", sid],
                          cwd=REPO, env=dict(os.environ, ORBITDOCK_HOME=str(d.home)),
                          capture_output=True, text=True, timeout=TURN_TIMEOUT_S).stdout
    assert "MCP servers:" in text and "echo" in text and "failed" in text

    # The tool works through codex (deferred behind tool_search for gpt-5.5).
    sim.set_script([{"tool_search": {"query": "echo"}},
                    {"call": "echo", "namespace": "mcp__echo", "args": {"text": "ping"}},
                    {"text": "done"}])
    before = state(client, sid).turn_count
    client.request(m.SendMessage(session_id=sid, content="use echo"), timeout=TURN_TIMEOUT_S)
    st = wait_turn_done(client, sid, before)
    assert any(x.tool_name == "MCP:echo/echo" and "pong: ping" in (x.tool_output or "")
               for x in st.messages)

    d.stop()
    d.start()
    client = d.client(timeout=10)
    st = state(client, sid)
    assert {s.name: s.state for s in st.mcp_servers} == {"echo": "ready", "broken": "failed"}
    assert st.mcp_server_count == 2


def test_operations_on_an_ended_session_are_refused_and_change_nothing(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    one_turn(client, sim, sid, "hello", "hi")
    client.request(m.EndSession(session_id=sid))
    before = state(client, sid)
    for args in (["compact"], ["archive"], ["unarchive"], ["rollback"], ["review"], ["mcp"]):
        refused = ctl(d, "session", args[0], sid, *args[1:], check=False)
        assert refused.returncode == 1 and "invalid_state" in refused.stderr, (args, refused.stderr)
    for args in (["compact"], ["rollback"], ["review"], ["mcp"], ["archive"]):
        missing = ctl(d, "session", args[0], "od-missing", check=False)
        assert missing.returncode == 1 and "not_found" in missing.stderr
    after = state(client, sid)
    assert (after.revision, after.status, len(after.messages)) == (
        before.revision, "ended", len(before.messages))
    # Fork applies to an ended session: it continues the conversation in a new one.
    forked = ctl(d, "session", "fork", sid)
    assert forked["forked_from_session_id"] == sid and state(client, sid).status == "ended"


def test_mcp_status_bad_input_is_coded(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    missing = ctl(d, "session", "mcp", "od-nope", check=False)
    assert missing.returncode == 1 and "not_found" in missing.stderr
    sid = create(client, codex_daemon.workspace, policy="never")
    assert ctl(d, "session", "mcp", sid) == []  # no MCP server configured
    client.request(m.EndSession(session_id=sid))
    ended = ctl(d, "session", "mcp", sid, check=False)
    assert ended.returncode == 1 and "invalid_state" in ended.stderr
