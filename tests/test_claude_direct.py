"""Direct Claude sessions end to end: orbitdock creates and drives the real claude 2.1.332
(``claude -p`` stream-json, one process per session) against the scripted Messages API,
and clients see it on the ZeroMQ protocol as they see a Codex session. Every wait is
bounded; each test has its own claude sandbox and daemon home.
"""

from __future__ import annotations

import json
import signal
import stat
import time
from pathlib import Path

import psutil
import pytest

from claude_env import (
    CLAUDE,
    EventTap,
    daemon_env,
    make_box,
    needs_claude,
    wait_session,
)
from cli_env import ctl_json
from conftest import wait_until
from orbitdock.client import RemoteError, find_daemon
from orbitdock.protocol import messages as m

TURN_S = 60.0  # one claude turn against the sim takes ~1 s; generous for a loaded machine


@pytest.fixture
def direct(daemon_factory, sim, tmp_path):
    """``start(**config)`` -> (daemon, client, box): a daemon whose environment runs claude
    offline against ``sim``; the box's settings carry no hooks unless ``hooks``."""
    box = make_box(tmp_path / "claude")
    plain = box.settings.read_text()
    box.settings.write_text("{}")

    def start(*args: str, home: Path | None = None, hooks: bool = False, **config: str):
        if hooks:
            box.settings.write_text(plain)  # orbitdock's hooks, as `hooks install` writes them
        env = daemon_env(box, sim)
        d = daemon_factory(*args, home=home, **env, **config)
        return d, d.client(), box

    return start


def create(client, box, **fields) -> str:
    snap = client.request(m.CreateSession(provider="claude", cwd=str(box.project), **fields),
                          timeout=TURN_S)
    return snap.session.id


def send(client, sid: str, text: str, **fields):
    return client.request(m.SendMessage(session_id=sid, content=text, **fields), timeout=TURN_S)


def turn_done(turns: int):
    return lambda s: s.turn_count >= turns and s.current_turn_id is None


def pending(client, sid: str):
    st = wait_session(client, sid, lambda s: bool(s.approvals), timeout=TURN_S)
    return st.approvals[0]


def claude_children(daemon) -> list[psutil.Process]:
    return [p for p in psutil.Process(daemon.pid).children(recursive=True)
            if p.name().startswith("claude")]


@needs_claude
def test_streamed_reply_with_thinking_usage_and_the_process_env(direct, sim):
    daemon, client, box = direct()
    tap = EventTap(find_daemon(daemon.config).events)
    try:
        sim.set_script([{"text": "Hello there, friend.", "reasoning": "Greet them.", "chunk": 4}])
        sid = create(client, box)
        snap = client.request(m.SubscribeSession(session_id=sid)).session
        assert snap.provider == "claude" and snap.integration_mode == "direct"
        assert snap.thread_id and snap.approval_policy == "default"
        time.sleep(0.2)  # the SUB's subscription reaches the XPUB
        send(client, sid, "say hello")
        st = wait_session(client, sid, turn_done(1), timeout=TURN_S)
        wait_until(lambda: any(isinstance(e, m.SessionDelta) and e.changes.work_status == "reply"
                               for e in tap.of(sid)), 5, poll=tap.pump)
    finally:
        tap.close()
    kinds = [(msg.type, msg.content) for msg in st.messages]
    assert kinds == [("user", "say hello"), ("thinking", "Greet them."),
                     ("assistant", "Hello there, friend.")]
    assert st.work_status == "reply" and st.turn_count == 1
    assert not any(msg.is_in_progress for msg in st.messages)
    # streamed: the reply grew by content_append deltas before it was finished
    appends = [e.changes.content_append for e in tap.of(sid) if isinstance(e, m.MessageUpdated)
               and isinstance(e.changes.content_append, str)]
    assert "".join(appends).endswith("friend.") and len(appends) >= 3
    usage = st.token_usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (100, 25, 15)
    assert usage.context_window > 0 and usage.cost_usd > 0  # the result line's total
    # the child carries the session id, so orbitdock's own hook forwarder skips it
    (child,) = claude_children(daemon)
    assert child.environ().get("ORBITDOCK_CLAUDE_DIRECT") == sid
    assert st.thread_id in child.cmdline()


def last_request_text(sim) -> str:
    """The whole body of the last Messages request the sim saw, as JSON text."""
    return json.dumps(sim.requests()[-1])


BASH_WRITE = {"call": "Bash", "args": {"command": "echo hi > out.txt",
                                       "description": "write out.txt"}}


@needs_claude
@pytest.mark.parametrize("decision", ["accept", "decline"])
def test_exec_approval(direct, sim, decision):
    daemon, client, box = direct()
    sim.set_script([BASH_WRITE, {"text": "Done."}])
    sid = create(client, box)
    send(client, sid, "write out.txt")
    approval = pending(client, sid)
    assert approval.type == "exec" and approval.command == "echo hi > out.txt"
    assert approval.method == "can_use_tool" and approval.cwd == str(box.project)
    assert set(approval.available_decisions) >= {"accept", "accept_for_session", "decline",
                                                 "cancel"}
    assert wait_session(client, sid, lambda s: s.work_status == "permission")
    reply = client.request(m.ApproveTool(approval_id=approval.id, decision=decision))
    assert reply.outcome == "applied"
    st = wait_session(client, sid, turn_done(1), timeout=TURN_S)
    tool = next(msg for msg in st.messages if msg.type == "tool")
    if decision == "accept":
        assert (box.project / "out.txt").read_text() == "hi\n"
        assert not tool.is_error
    else:
        assert not (box.project / "out.txt").exists()
        assert tool.is_error and "Denied from orbitdock" in tool.tool_output
    assert st.messages[-1].content == "Done." and not st.approvals
    # the decision is in the database's approval history
    with pytest.raises(RemoteError) as err:
        client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    assert err.value.code == "stale_approval"


@needs_claude
@pytest.mark.parametrize("decision", ["accept", "decline"])
def test_edit_approval_with_a_diff_preview(direct, sim, decision):
    daemon, client, box = direct()
    target = box.project / "notes.txt"
    sim.set_script([{"call": "Write", "args": {"file_path": str(target),
                                               "content": "two\n"}},
                    {"text": "Written."}])
    sid = create(client, box)
    send(client, sid, "write notes")
    approval = pending(client, sid)
    assert approval.type == "patch" and approval.file_path == str(target)
    assert "+two" in approval.diff
    client.request(m.ApproveTool(approval_id=approval.id, decision=decision))
    wait_session(client, sid, turn_done(1), timeout=TURN_S)
    if decision == "accept":
        assert target.read_text() == "two\n"
    else:
        assert not target.exists()


@needs_claude
def test_accept_for_session_and_cancel(direct, sim):
    """accept_for_session hands Claude its own suggestions (scoped to the session): the
    same command runs again without asking; cancel denies and ends the turn. (Claude asks
    again for a command with an output redirection whatever its rules say.)"""
    daemon, client, box = direct()
    touch = {"call": "Bash", "args": {"command": "touch out.txt", "description": "touch"}}
    sim.set_script([touch, touch, {"text": "Twice."},
                    {"call": "Bash", "args": {"command": "rm -rf build", "description": "clean"}},
                    {"text": "never sent"}])
    sid = create(client, box)
    send(client, sid, "write it twice")
    approval = pending(client, sid)
    client.request(m.ApproveTool(approval_id=approval.id, decision="accept_for_session"))
    st = wait_session(client, sid, turn_done(1), timeout=TURN_S)
    assert [msg.type for msg in st.messages].count("tool") == 2
    assert st.messages[-1].content == "Twice."
    assert not (box.project / ".claude" / "settings.local.json").exists()  # session only
    # Claude's suggestions for a file-touching command include acceptEdits for the session
    assert st.approval_policy == "acceptEdits"
    other = create(client, box)
    send(client, other, "clean")
    approval = pending(client, other)
    client.request(m.ApproveTool(approval_id=approval.id, decision="cancel"))
    st = wait_session(client, other, turn_done(1), timeout=TURN_S)
    assert st.messages[-1].content != "never sent" and st.work_status == "waiting"
    assert sim.state()["remaining"] == 1  # the model was not asked again


@needs_claude
def test_question_answered(direct, sim):
    daemon, client, box = direct()
    question = {"question": "Which color?", "header": "Color", "multiSelect": False,
                "options": [{"label": "red", "description": "warm"},
                            {"label": "blue", "description": "cool"}]}
    sim.set_script([{"call": "AskUserQuestion", "args": {"questions": [question]}},
                    {"text": "Blue it is."}])
    sid = create(client, box)
    send(client, sid, "ask me")
    approval = pending(client, sid)
    assert approval.type == "question"
    assert approval.questions[0].question == "Which color?"
    assert [o["label"] for o in approval.questions[0].options] == ["red", "blue"]
    assert wait_session(client, sid, lambda s: s.work_status == "question")
    with pytest.raises(RemoteError) as err:
        client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    assert err.value.code == "wrong_verb"
    client.request(m.AnswerQuestion(approval_id=approval.id, answers={"q0": ["blue"]}))
    st = wait_session(client, sid, turn_done(1), timeout=TURN_S)
    assert st.messages[-1].content == "Blue it is."
    # the model read the answer as the tool's result
    assert '\\"Which color?\\"=\\"blue\\"' in last_request_text(sim)


@needs_claude
def test_interrupt_then_the_next_turn(direct, sim):
    daemon, client, box = direct()
    sim.set_script([{"text": "A very slow reply", "hold": 30}, {"text": "After."}])
    sid = create(client, box)
    with pytest.raises(RemoteError) as err:
        client.request(m.InterruptSession(session_id=sid))
    assert err.value.code == "invalid_state"
    send(client, sid, "take your time")
    assert wait_until(lambda: sim.state()["requests"] >= 1, TURN_S, interval=0.05)
    client.request(m.InterruptSession(session_id=sid), timeout=TURN_S)
    st = wait_session(client, sid, turn_done(1), timeout=TURN_S)
    assert st.work_status == "waiting"
    send(client, sid, "go on")
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert st.messages[-1].content == "After."


@needs_claude
def test_resume_an_ended_session_keeps_its_context(direct, sim):
    daemon, client, box = direct()
    sim.set_script([{"text": "Noted."}, {"text": "It was 42."}])
    sid = create(client, box)
    send(client, sid, "remember the number 42")
    wait_session(client, sid, turn_done(1), timeout=TURN_S)
    client.request(m.EndSession(session_id=sid))
    assert wait_until(lambda: not claude_children(daemon), 10, interval=0.05)
    with pytest.raises(RemoteError) as err:
        send(client, sid, "too late")
    assert err.value.code == "invalid_state"
    client.request(m.ResumeSession(session_id=sid))
    send(client, sid, "which number?")
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert st.status == "active" and st.messages[-1].content == "It was 42."
    assert "remember the number 42" in last_request_text(sim)
    (child,) = claude_children(daemon)
    assert "--resume" in child.cmdline() and st.thread_id in child.cmdline()


@needs_claude
def test_daemon_restart_restores_a_resumable_session(direct, sim):
    daemon, client, box = direct()
    sim.set_script([{"text": "Noted."}, {"text": "Blue, you said."}])
    sid = create(client, box, name="colors")
    send(client, sid, "my favourite color is blue")
    wait_session(client, sid, turn_done(1), timeout=TURN_S)
    daemon.close_clients()
    daemon.stop()
    again, client, _ = direct(home=daemon.home)
    st = client.request(m.SubscribeSession(session_id=sid)).session
    assert st.status == "active" and st.custom_name == "colors" and st.turn_count == 1
    assert st.token_usage.cost_usd > 0  # kept in the database (0006)
    assert not claude_children(again)  # started on demand
    send(client, sid, "what is my favourite color?")
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert st.messages[-1].content == "Blue, you said."
    assert "my favourite color is blue" in last_request_text(sim)


@needs_claude
def test_killed_claude_fails_the_turn_and_the_next_send_resumes(direct, sim):
    daemon, client, box = direct()
    sim.set_script([{"text": "One."}, {"text": "Other."}, {"text": "Cut off", "hold": 30},
                    {"text": "Back again."}])
    sid = create(client, box)
    other = create(client, box)
    send(client, sid, "first")
    wait_session(client, sid, turn_done(1), timeout=TURN_S)
    send(client, other, "hello other")
    wait_session(client, other, turn_done(1), timeout=TURN_S)
    children = {p.environ()["ORBITDOCK_CLAUDE_DIRECT"]: p for p in claude_children(daemon)}
    send(client, sid, "second")
    assert wait_until(lambda: sim.state()["requests"] >= 3, TURN_S, interval=0.05)
    children[sid].send_signal(signal.SIGKILL)
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert st.work_status == "waiting" and "backend lost" in (st.last_error or "")
    assert st.status == "active"
    assert children[other].is_running()  # the other session's claude is untouched
    send(client, sid, "third")
    st = wait_session(client, sid, turn_done(3), timeout=TURN_S)
    assert st.messages[-1].content == "Back again." and st.last_error is None
    assert "first" in last_request_text(sim)
    assert client.request(m.SubscribeSession(session_id=other)).session.status == "active"


@needs_claude
def test_model_and_autonomy_changes_apply_to_the_next_turn(direct, sim):
    daemon, client, box = direct()
    target = box.project / "notes.txt"
    write = {"call": "Write", "args": {"file_path": str(target), "content": "two\n"}}
    sim.set_script([{"text": "On a."}, {"text": "probe"}, write, {"text": "On b."}])
    sid = create(client, box, model="claude-sim-a")
    send(client, sid, "hi")
    wait_session(client, sid, turn_done(1), timeout=TURN_S)
    assert sim.requests()[-1]["model"] == "claude-sim-a"
    # model: set_model (claude probes the model first: the "probe" reply);
    # autonomy on-failure = acceptEdits (set_permission_mode): edits no longer ask
    client.request(m.UpdateSessionConfig(session_id=sid, model="claude-sim-b",
                                         approval_policy="on-failure"))
    for bad in (dict(approval_policy="sometimes"), dict(sandbox_mode="read-only")):
        with pytest.raises(RemoteError) as err:
            client.request(m.UpdateSessionConfig(session_id=sid, **bad))
        assert err.value.code == "invalid_argument"
    send(client, sid, "write it")
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert [r["model"] for r in sim.requests()[-3:]] == ["claude-sim-b"] * 3
    assert sim.requests()[-3]["max_tokens"] == 1  # the probe
    assert target.read_text() == "two\n" and not st.approvals  # written without asking
    assert st.model == "claude-sim-b" and st.approval_policy == "acceptEdits"
    assert st.messages[-1].content == "On b."


GARBAGE_WRAPPER = r"""#!/bin/bash
# claude, with lines that are not stream-json put into its output (sed -u: unbuffered)
[ "$1" = "--version" ] && exec {claude} --version
echo 'this is not json {{'
{claude} "$@" | sed -u -e '/"type":"assistant"/a\[1, 2]' \
    -e '/"type":"assistant"/a\{{"no": "type"}}' -e '/"type":"assistant"/a\]]garbage[['
"""


@needs_claude
def test_malformed_stream_json_lines_are_logged_and_skipped(direct, sim, tmp_path):
    wrapper = tmp_path / "claude-garbage"
    wrapper.write_text(GARBAGE_WRAPPER.format(claude=CLAUDE))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    daemon, client, box = direct(ORBITDOCK_CLAUDE__BINARY=str(wrapper))
    sim.set_script([{"text": "First."}, {"text": "Second."}])
    sid = create(client, box)
    send(client, sid, "one")
    wait_session(client, sid, turn_done(1), timeout=TURN_S)
    send(client, sid, "two")
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert [msg.content for msg in st.messages if msg.type == "assistant"] == ["First.",
                                                                                "Second."]
    log = "\n".join(daemon.log_lines())
    assert log.count("skipped a stream-json line") >= 4
    assert "this is not json" in log and "]]garbage[[" in log


@needs_claude
@pytest.mark.parametrize("config", [
    {"ORBITDOCK_CLAUDE__IDLE_STOP_S": "0.5"},  # the process alone stops
    {"ORBITDOCK_SESSIONS__PASSIVATE_AFTER_S": "0.5",  # the whole session actor is released
     "ORBITDOCK_SESSIONS__PASSIVATE_CHECK_S": "0.2"},
], ids=["idle_stop", "passivation"])
def test_idle_process_is_stopped_and_resumed_on_the_next_send(direct, sim, config):
    daemon, client, box = direct(**config)
    sim.set_script([{"text": "Noted."}, {"text": "Still 7."}])
    sid = create(client, box)
    send(client, sid, "the number is 7")
    wait_session(client, sid, turn_done(1), timeout=TURN_S)
    assert wait_until(lambda: not claude_children(daemon), 15, interval=0.1)
    assert client.request(m.SubscribeSession(session_id=sid)).session.status == "active"
    send(client, sid, "the number?")
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert st.messages[-1].content == "Still 7." and st.last_error is None
    assert "the number is 7" in last_request_text(sim)


@needs_claude
def test_create_is_checked_before_anything_exists(direct, sim, tmp_path):
    daemon, client, box = direct()
    bad = [dict(cwd=str(tmp_path / "nowhere")), dict(cwd="relative/dir"),
           dict(cwd=str(box.project), approval_policy="sometimes"),
           dict(cwd=str(box.project), sandbox_mode="read-only")]
    for fields in bad:
        with pytest.raises(RemoteError) as err:
            client.request(m.CreateSession(provider="claude", **fields))
        assert err.value.code == "invalid_argument", fields
    assert not client.request(m.SubscribeList()).sessions and not claude_children(daemon)
    sid = create(client, box, approval_policy="acceptEdits")
    assert client.request(m.SubscribeSession(session_id=sid)).session.approval_policy == \
        "acceptEdits"
    # and from the command line, with an orbitdock autonomy value (on-request = default)
    made = ctl_json(daemon.home, "session", "create", "--provider", "claude", "--cwd",
                    str(box.project), "--approval-policy", "on-request")
    assert made["provider"] == "claude" and made["approval_policy"] == "default"


def test_missing_or_wrong_claude_binary_is_a_clear_error(direct, tmp_path):
    old = tmp_path / "old-claude"
    old.write_text("#!/bin/sh\necho '1.0.0 (Claude Code)'\n")
    old.chmod(0o755)
    for binary, says in ((str(tmp_path / "no-such-claude"), "is not a file"),
                         (str(old), "version 1.0.0")):
        daemon, client, box = direct(ORBITDOCK_CLAUDE__BINARY=binary)
        with pytest.raises(RemoteError) as err:
            client.request(m.CreateSession(provider="claude", cwd=str(box.project)))
        assert err.value.code == "unavailable" and says in err.value.message
        assert client.request(m.GetStatus())  # the daemon runs on
        daemon.stop()


@needs_claude
def test_fork_continues_the_conversation_in_a_new_session(direct, sim):
    daemon, client, box = direct()
    sim.set_script([{"text": "Noted."}, {"text": "It was 42."}])
    parent = create(client, box)
    send(client, parent, "remember the number 42")
    wait_session(client, parent, turn_done(1), timeout=TURN_S)
    fork = client.request(m.ForkSession(session_id=parent), timeout=TURN_S).session
    assert fork.id != parent and fork.forked_from_session_id == parent
    parent_thread = client.request(m.SubscribeSession(session_id=parent)).session.thread_id
    assert fork.thread_id and fork.thread_id != parent_thread
    send(client, fork.id, "which number?")
    st = wait_session(client, fork.id, turn_done(2), timeout=TURN_S)
    assert st.messages[-1].content == "It was 42."
    assert "remember the number 42" in last_request_text(sim)


@needs_claude
def test_with_orbitdocks_hooks_installed_a_direct_session_stays_one_session(direct, sim):
    """The hooks fire inside the direct session too; they make no second (passive) session
    of it (the supervisor knows the thread as its own) and do not hold up its approval."""
    daemon, client, box = direct(hooks=True)
    sim.set_script([BASH_WRITE, {"text": "Done."}])
    sid = create(client, box)
    send(client, sid, "write out.txt")
    approval = pending(client, sid)
    asked = time.monotonic()
    client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    wait_session(client, sid, turn_done(1), timeout=TURN_S)
    assert time.monotonic() - asked < 20  # not claude.permission_wait_s (60 s)
    assert (box.project / "out.txt").read_text() == "hi\n"
    time.sleep(0.5)  # the last hooks (Stop) reach the daemon
    assert [(s.id, s.integration_mode) for s in client.request(m.SubscribeList()).sessions] \
        == [(sid, "direct")]


@needs_claude
def test_steer_reaches_the_running_turn(direct, sim):
    daemon, client, box = direct()
    sim.set_script([BASH_WRITE, {"text": "Steered."}, {"text": "A new turn."}])
    sid = create(client, box)
    send(client, sid, "write out.txt")
    approval = pending(client, sid)  # the turn waits for a decision meanwhile
    client.request(m.SteerTurn(session_id=sid, content="and only touch out.txt"))
    client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    st = wait_session(client, sid, turn_done(1), timeout=TURN_S)
    assert st.turn_count == 1 and st.messages[-1].content == "Steered."
    assert "and only touch out.txt" in last_request_text(sim)  # within the same turn
    assert [msg.content for msg in st.messages if msg.type == "user"] == [
        "write out.txt", "and only touch out.txt"]
    client.request(m.SteerTurn(session_id=sid, content="next"))  # idle: a new turn
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert st.messages[-1].content == "A new turn."


FAKE_CLAUDE = """#!/bin/bash
[ "$1" = "--version" ] && echo "2.1.332 (Claude Code)" && exit 0
{body}
"""


@pytest.mark.parametrize("body, says", [
    ("exec sleep 60", "did not answer initialize within 1.0 s"),
    ("echo 'no API key' >&2; exit 3", "exited with code 3: no API key"),
])
def test_a_claude_that_does_not_come_up_refuses_the_create(direct, tmp_path, body, says):
    fake = tmp_path / "fake-claude"
    fake.write_text(FAKE_CLAUDE.format(body=body))
    fake.chmod(0o755)
    daemon, client, box = direct(ORBITDOCK_CLAUDE__BINARY=str(fake),
                                 ORBITDOCK_CLAUDE__START_TIMEOUT_S="1")
    with pytest.raises(RemoteError) as err:
        client.request(m.CreateSession(provider="claude", cwd=str(box.project)), timeout=30)
    assert err.value.code == "backend_error" and says in err.value.message
    assert not client.request(m.SubscribeList()).sessions  # nothing of it exists


@needs_claude
def test_interrupt_while_an_approval_waits_withdraws_it(direct, sim):
    daemon, client, box = direct()
    sim.set_script([BASH_WRITE, {"text": "After."}])
    sid = create(client, box)
    send(client, sid, "write out.txt")
    approval = pending(client, sid)
    client.request(m.InterruptSession(session_id=sid), timeout=TURN_S)
    st = wait_session(client, sid, lambda s: turn_done(1)(s) and not s.approvals, timeout=TURN_S)
    assert st.work_status == "waiting" and not (box.project / "out.txt").exists()
    assert sim.state()["remaining"] == 1  # the model was not asked again in that turn
    with pytest.raises(RemoteError) as err:
        client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    assert err.value.code == "stale_approval"
    send(client, sid, "go on")
    st = wait_session(client, sid, turn_done(2), timeout=TURN_S)
    assert st.messages[-1].content == "After."


@needs_claude
def test_claude_models_are_listed(direct):
    daemon, client, box = direct()
    models = client.request(m.ListModels(provider="claude"), timeout=TURN_S).models
    assert [o.id for o in models if o.is_default] == ["default"]
    assert all(o.model and o.display_name for o in models) and len(models) >= 2
    assert "high" in models[0].supported_reasoning_efforts
    listed = ctl_json(daemon.home, "models", "--provider", "claude")
    assert [o["id"] for o in listed] == [o.id for o in models]
    assert not claude_children(daemon)  # the asking process is gone
