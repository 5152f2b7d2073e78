"""Claude Code sessions through hooks, end to end: the real claude 2.1.332 against the
scripted Messages API, with orbitdock's hooks in its settings (``orbitdock-hook`` ->
the real daemon) and clients on the ZeroMQ protocol. Each test has its own claude
sandbox and daemon home; every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from claude_env import (  # noqa: F401  (fixtures are found by name)
    CLAUDE,
    CLAUDE_TIMEOUT_S,
    EventTap,
    box,
    claude_env,
    hook,
    needs_claude,
    run_claude,
    session_id_of,
    spool_files,
    wait_session,
)
from conftest import wait_until
from orbitdock.client import RemoteError, find_daemon
from orbitdock.protocol import messages as m

BASH_WRITE = {"call": "Bash", "args": {"command": "echo hi > out.txt",
                                       "description": "write out.txt"},
              "text": "Writing it."}


def _popen_claude(box, sim, home, prompt: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", "--permission-prompts", "none"],
        cwd=box.project, env=claude_env(box, sim, home), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _pending_approval(client, timeout: float = 60.0):
    """The first pending approval of any session (with its session's summary)."""
    found = []

    def check() -> bool:
        for row in client.request(m.SubscribeList()).sessions:
            if row.pending_approvals:
                state = client.request(m.SubscribeSession(session_id=row.id)).session
                if state.approvals:
                    found.append((row, state.approvals[0]))
                    return True
        return False

    assert wait_until(check, timeout, interval=0.1), "no approval appeared"
    return found[0]


@needs_claude
def test_claude_p_session_appears_with_status_sequence_messages_and_tools(daemon, sim, box):
    tap = EventTap(find_daemon(daemon.config).events)
    try:
        sim.set_script([{"call": "Bash", "args": {"command": "echo hello-from-bash",
                                                   "description": "say hello"},
                         "text": "Running it.", "reasoning": "A quick echo."},
                        {"text": "It printed hello-from-bash."}])
        time.sleep(0.3)  # the SUB's subscription reaches the XPUB
        proc = run_claude(box, sim, daemon.home, "say hello with bash")
        assert proc.returncode == 0, proc.stderr
        sid = session_id_of(proc)
        client = daemon.client()
        st = wait_session(client, sid, lambda s: s.status == "ended")
        wait_until(lambda: "ended" in tap.work_statuses(sid), 5, poll=tap.pump)
    finally:
        tap.close()
    assert st.provider == "claude" and st.integration_mode == "passive"
    assert st.project_path == str(box.project)
    assert st.transcript_path and st.transcript_path.endswith(f"{sid}.jsonl")
    assert tap.work_statuses(sid) == ["working", "reply", "ended"]
    kinds = [(msg.type, msg.content if msg.type != "tool" else msg.tool_name)
             for msg in st.messages]
    assert kinds == [("user", "say hello with bash"), ("thinking", "A quick echo."),
                     ("assistant", "Running it."), ("tool", "Bash"),
                     ("assistant", "It printed hello-from-bash.")]
    tool = st.messages[3]
    assert "hello-from-bash" in tool.tool_output and not tool.is_error
    assert json.loads(tool.tool_input)["command"] == "echo hello-from-bash"
    assert st.tool_count == 1 and st.turn_count == 1 and st.prompt_count == 1
    # two API calls of the sim's default usage: last input, summed output, last cached
    assert (st.token_usage.input_tokens, st.token_usage.output_tokens,
            st.token_usage.cached_tokens) == (100, 50, 15)
    # the history is in the database too, each message once
    page = client.request(m.GetMessages(session_id=sid))
    assert [msg.seq for msg in page.messages] == [1, 2, 3, 4, 5]


@needs_claude
def test_session_start_alone_leaves_no_session(daemon, sim, box):
    """A process that only starts and ends (``claude -c`` bootstrap) creates no ghost."""
    start = {"session_id": "ghost-1", "transcript_path": str(box.root / "ghost.jsonl"),
             "cwd": str(box.project), "hook_event_name": "SessionStart", "source": "startup"}
    end = dict(start, hook_event_name="SessionEnd", reason="other")
    assert hook(daemon.home, "SessionStart", start).returncode == 0
    assert hook(daemon.home, "SessionEnd", end).returncode == 0
    client = daemon.client()
    assert all(s.id != "ghost-1" for s in client.request(m.SubscribeList()).sessions)
    with pytest.raises(RemoteError) as err:
        client.request(m.SubscribeSession(session_id="ghost-1"))
    assert err.value.code == "not_found"


@needs_claude
@pytest.mark.parametrize("decision", ["accept", "decline"])
def test_permission_request_decided_remotely(daemon, sim, box, decision):
    sim.set_script([BASH_WRITE, {"text": "Done."}])
    proc = _popen_claude(box, sim, daemon.home, "write out.txt")
    try:
        client = daemon.client()
        row, approval = _pending_approval(client)
        assert row.provider == "claude" and row.work_status == "permission"
        assert row.attention_reason == "awaitingPermission"
        assert approval.type == "exec" and approval.command == "echo hi > out.txt"
        assert approval.payload["tool_name"] == "Bash"
        assert not (box.project / "out.txt").exists()  # claude waits for the decision
        reply = client.request(m.ApproveTool(approval_id=approval.id, decision=decision))
        assert reply.outcome == "applied"
        out, err = proc.communicate(timeout=CLAUDE_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert (box.project / "out.txt").exists() == (decision == "accept")
    st = wait_session(client, row.id, lambda s: s.status == "ended")
    assert not st.approvals
    tool = next(msg for msg in st.messages if msg.type == "tool")
    assert tool.is_error == (decision == "decline")
    # decided once: a second decision is stale
    with pytest.raises(RemoteError) as late:
        client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    assert late.value.code == "stale_approval"


@needs_claude
def test_permission_request_undecided_falls_back_to_claude(daemon_factory, sim, box):
    """Nobody decides within claude.permission_wait_s: the hook returns no decision, and
    claude -p (no prompt of its own) denies; the approval then resolves."""
    d = daemon_factory(ORBITDOCK_CLAUDE__PERMISSION_WAIT_S="1.5")
    sim.set_script([BASH_WRITE, {"text": "It was denied."}])
    started = time.monotonic()
    proc = run_claude(box, sim, d.home, "write out.txt")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started >= 1.5
    assert not (box.project / "out.txt").exists()
    client = d.client()
    st = wait_session(client, session_id_of(proc), lambda s: s.status == "ended")
    assert not st.approvals
    tool = next(msg for msg in st.messages if msg.type == "tool")
    assert tool.is_error


@needs_claude
def test_daemon_down_hooks_spool_and_replay_once_in_order(daemon_factory, sim, box, tmp_path):
    home = tmp_path / "od-home"
    sim.set_script([{"call": "Bash", "args": {"command": "echo spooled", "description": "x"},
                     "text": "One."}, {"text": "Two."}])
    proc = run_claude(box, sim, home, "while the daemon is down")
    assert proc.returncode == 0, proc.stderr
    sid = session_id_of(proc)
    spooled = spool_files(home)
    events = [json.loads(p.read_text())["event"] for p in spooled]
    assert events == ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop",
                      "SessionEnd"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in spooled)
    d = daemon_factory(home=home)
    client = d.client()
    st = wait_session(client, sid, lambda s: s.status == "ended")
    assert spool_files(home) == []
    assert [msg.type for msg in st.messages] == ["user", "assistant", "tool", "assistant"]
    assert st.turn_count == 1 and st.tool_count == 1
    # a second run of the same session id's hooks after the replay doubles nothing
    d.stop()
    d2 = daemon_factory(home=home)
    st2 = wait_session(d2.client(), sid, lambda s: s.status == "ended")
    assert [msg.seq for msg in st2.messages] == [1, 2, 3, 4]


@needs_claude
def test_spool_found_by_a_forwarder_is_replayed_before_its_event(daemon, box):
    """Events spooled while the daemon was unreachable go first when a later forwarder
    reaches it, and a spooled copy of an event the daemon already had is dropped."""
    sid = "spool-order-1"
    base = {"session_id": sid, "transcript_path": str(box.root / "none.jsonl"),
            "cwd": str(box.project)}
    spool_dir = daemon.home / "spool"
    spool_dir.mkdir(mode=0o700, exist_ok=True)
    from orbitdock.claude.forward import spool

    spool(str(daemon.home), "UserPromptSubmit",
          json.dumps(dict(base, hook_event_name="UserPromptSubmit", prompt="p", prompt_id="t1")),
          "e1")
    proc = hook(daemon.home, "Stop", dict(base, hook_event_name="Stop",
                                          last_assistant_message="done"))
    assert proc.returncode == 0
    client = daemon.client()
    st = wait_session(client, sid, lambda s: s.work_status == "reply")
    assert st.turn_count == 1 and spool_files(daemon.home) == []


@needs_claude
@pytest.mark.parametrize("payload", [b"", b"{not json", b"[1,2]", b'{"session_id": "../x"}',
                                     b'{"session_id": "s1", "hook_event_name": "Stop"}'],
                         ids=["empty", "malformed", "not-object", "bad-id", "wrong-event"])
def test_bad_payloads_are_refused_and_logged(daemon, payload):
    event = "PreToolUse"
    proc = hook(daemon.home, event, payload)
    assert proc.returncode == 0 and proc.stdout == b""
    log = (daemon.home / "logs" / "hooks.log").read_text()
    assert "refused by orbitdockd: invalid_argument" in log
    assert spool_files(daemon.home) == []
    assert daemon.client().request(m.GetStatus()).pid == daemon.proc.pid


def test_unknown_event_and_huge_payload_are_refused(daemon):
    proc = hook(daemon.home, "NoSuchEvent", {"session_id": "s2"})
    assert proc.returncode == 0
    huge = json.dumps({"session_id": "s3", "hook_event_name": "PreToolUse",
                       "mystery": "x" * (2 << 20)}).encode()
    proc = hook(daemon.home, "PreToolUse", huge)
    assert proc.returncode == 0
    log = (daemon.home / "logs" / "hooks.log").read_text()
    assert "NoSuchEvent: refused by orbitdockd: invalid_argument" in log
    assert "PreToolUse: refused by orbitdockd: too_large" in log
    # a huge tool_response is trimmed by the forwarder and delivered
    big = {"session_id": "s4", "hook_event_name": "PostToolUse", "cwd": "/",
           "tool_name": "Read", "tool_use_id": "toolu_1", "tool_input": {},
           "tool_response": {"content": "y" * (2 << 20)}}
    assert hook(daemon.home, "PostToolUse", big).returncode == 0
    client = daemon.client()
    st = wait_session(client, "s4", lambda s: s.tool_count == 1)
    assert "orbitdock_truncated_bytes" in st.messages[-1].tool_output
    assert client.request(m.GetStatus()).pid == daemon.proc.pid


def test_session_list_shows_claude_and_other_sessions_waiting_first(daemon, tmp_path):
    """A Claude session waiting for permission lists before a working scripted one, and
    the approval resolves when its tool finishes in the terminal (PostToolUse)."""
    import os
    import sys
    from pathlib import Path

    client = daemon.client()
    other = client.request(m.CreateSession(provider="scripted", cwd=str(tmp_path))).session.id
    sid = "list-claude-1"
    base = {"session_id": sid, "cwd": str(tmp_path), "transcript_path": str(tmp_path / "t.jsonl"),
            "prompt_id": "p1"}
    tool = {"tool_name": "Bash", "tool_input": {"command": "rm -rf build"}}
    assert hook(daemon.home, "UserPromptSubmit", dict(base, prompt="clean")).returncode == 0
    assert hook(daemon.home, "PreToolUse", dict(base, **tool, tool_use_id="toolu_9")).returncode == 0
    from claude_env import HOOK_COMMAND

    waiting = subprocess.Popen([HOOK_COMMAND, "PermissionRequest"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE,
                               env=dict(os.environ, ORBITDOCK_HOME=str(daemon.home)))
    waiting.stdin.write(json.dumps(dict(base, **tool, permission_suggestions=[])).encode())
    waiting.stdin.close()
    try:
        wait_session(client, sid, lambda s: s.work_status == "permission")
        ctl = str(Path(sys.executable).parent / "orbitdockctl")
        env = dict(os.environ, ORBITDOCK_HOME=str(daemon.home))
        listing = subprocess.run([ctl, "session", "list"], env=env, capture_output=True,
                                 text=True, timeout=30)
        lines = listing.stdout.splitlines()[1:]
        assert lines[0].startswith("!") and sid in lines[0] and "claude" in lines[0]
        assert other in lines[1] and "scripted" in lines[1]
        # answered in the terminal: the tool ran; the held hook is let go with no decision
        done = dict(base, **tool, tool_use_id="toolu_9", tool_response={"stdout": ""})
        assert hook(daemon.home, "PostToolUse", done).returncode == 0
        assert waiting.wait(timeout=15) == 0
        assert waiting.stdout.read() == b""
        st = wait_session(client, sid, lambda s: not s.approvals)
        assert st.work_status == "working"
    finally:
        if waiting.poll() is None:
            waiting.kill()


@needs_claude
def test_approve_for_session_applies_claudes_session_suggestion(daemon_factory, sim, box):
    """accept_for_session answers with Claude's own session-scoped suggestions (for a
    Write: accept edits for the session), so the next edit needs no approval; a patch
    approval carries the diff preview."""
    d = daemon_factory(ORBITDOCK_CLAUDE__PERMISSION_WAIT_S="20")
    first, second = box.project / "first.txt", box.project / "second.txt"
    sim.set_script([{"call": "Write", "args": {"file_path": str(first), "content": "one\n"}},
                    {"call": "Write", "args": {"file_path": str(second), "content": "two\n"}},
                    {"text": "Both written."}])
    proc = _popen_claude(box, sim, d.home, "write two files")
    try:
        client = d.client()
        row, approval = _pending_approval(client)
        assert approval.type == "patch" and approval.file_path == str(first)
        assert "+one" in approval.diff
        suggestions = approval.payload["permission_suggestions"]
        assert any(s.get("destination") == "session" for s in suggestions), suggestions
        client.request(m.ApproveTool(approval_id=approval.id, decision="accept_for_session"))
        decided = time.monotonic()
        out, err = proc.communicate(timeout=CLAUDE_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    # a second approval would have held claude for the 20 s wait (nobody decides it)
    assert time.monotonic() - decided < 20
    assert first.read_text() == "one\n" and second.read_text() == "two\n"
    st = wait_session(client, row.id, lambda s: s.status == "ended")
    tools = [msg for msg in st.messages if msg.type == "tool"]
    assert len(tools) == 2 and not any(t.is_error for t in tools)


@needs_claude
@pytest.mark.parametrize("text,expected", [
    ("Which of the two files should I change?", ("question", "awaitingQuestion")),
    ("I changed both files.", ("reply", "awaitingReply"))], ids=["question", "reply"])
def test_stop_is_a_question_or_a_reply(daemon, sim, box, text, expected):
    """Stop: the session waits for an answer (question) when claude's last text asks the
    person something, else for the next prompt (reply); the same wire fields as a Codex
    session waiting on a question."""
    tap = EventTap(find_daemon(daemon.config).events)
    try:
        sim.set_script([{"text": text}])
        time.sleep(0.3)  # the SUB's subscription reaches the XPUB
        proc = run_claude(box, sim, daemon.home, "change the files")
        assert proc.returncode == 0, proc.stderr
        sid = session_id_of(proc)
        wait_session(daemon.client(), sid, lambda s: s.status == "ended")
        wait_until(lambda: "ended" in tap.work_statuses(sid), 5, poll=tap.pump)
        attention = [e.changes.attention_reason for e in tap.of(sid)
                     if isinstance(e, m.SessionDelta) and isinstance(e.changes.work_status, str)
                     and e.changes.work_status == expected[0]]
    finally:
        tap.close()
    assert tap.work_statuses(sid) == ["working", expected[0], "ended"]
    assert attention == [expected[1]]


def _forwarder(home, event: str, payload: dict, **env: str) -> subprocess.CompletedProcess:
    import os

    from claude_env import HOOK_COMMAND

    return subprocess.run([HOOK_COMMAND, event], input=json.dumps(payload).encode(),
                          env=dict(os.environ, ORBITDOCK_HOME=str(home), **env),
                          capture_output=True, timeout=30)


def test_forwarder_in_a_direct_claude_does_nothing(daemon, tmp_path):
    """DIRECT_SESSION_ENV set (a claude orbitdock drives itself): the forwarder exits 0 at
    once, sends nothing (no session), spools nothing even with no daemon, prints nothing."""
    from orbitdock.claude.forward import DIRECT_SESSION_ENV

    base = {"session_id": "direct-env-1", "cwd": str(tmp_path),
            "transcript_path": str(tmp_path / "t.jsonl"), "prompt_id": "p1"}
    direct = {DIRECT_SESSION_ENV: "od-direct-1"}
    started = time.monotonic()
    for event, extra in (("UserPromptSubmit", {"prompt": "hi"}),
                         ("PermissionRequest", {"tool_name": "Bash",
                                                "tool_input": {"command": "ls"}})):
        proc = _forwarder(daemon.home, event, dict(base, hook_event_name=event, **extra),
                          **direct)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert time.monotonic() - started < 10  # no PermissionRequest wait
    nowhere = tmp_path / "no-daemon-home"
    proc = _forwarder(nowhere, "Stop", dict(base, hook_event_name="Stop"), **direct)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert not nowhere.exists()  # neither spool nor log
    # the control: without the variable the same hook makes a session
    assert _forwarder(daemon.home, "UserPromptSubmit",
                      dict(base, hook_event_name="UserPromptSubmit", prompt="hi")).returncode == 0
    client = daemon.client()
    wait_session(client, "direct-env-1", lambda s: s.turn_count == 1)
    assert spool_files(daemon.home) == [] and spool_files(nowhere) == []
    st = client.request(m.SubscribeSession(session_id="direct-env-1")).session
    assert st.turn_count == 1 and not st.approvals  # only the control's turn


@needs_claude
def test_claude_with_the_direct_variable_creates_no_session(daemon, sim, box):
    from orbitdock.claude.forward import DIRECT_SESSION_ENV

    sim.set_script([{"call": "Bash", "args": {"command": "echo x", "description": "x"}},
                    {"text": "Direct."}, {"text": "Passive."}])
    env = dict(claude_env(box, sim, daemon.home), **{DIRECT_SESSION_ENV: "od-direct-2"})
    direct = subprocess.run([str(CLAUDE), "-p", "as if driven by orbitdock", "--output-format",
                             "json", "--permission-prompts", "none", "--allowedTools", "Bash"],
                            cwd=box.project, env=env, capture_output=True, text=True,
                            timeout=CLAUDE_TIMEOUT_S)
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout)["result"] == "Direct."
    # a passive run after it: once its session shows, the direct run's hooks (had any been
    # sent) would have been handled before it
    passive = run_claude(box, sim, daemon.home, "typed in a terminal")
    client = daemon.client()
    wait_session(client, session_id_of(passive), lambda s: s.status == "ended")
    ids = {s.id for s in client.request(m.SubscribeList()).sessions}
    ids |= {s.id for s in client.request(m.ListSessions()).sessions}
    assert session_id_of(direct) not in ids and session_id_of(passive) in ids
    assert spool_files(daemon.home) == []


def test_hooks_of_a_direct_sessions_thread_are_dropped(daemon, tmp_path):
    """A forwarder of an older install (no DIRECT_SESSION_ENV) inside a claude orbitdock
    drives: the daemon acknowledges and drops hooks whose session id is a direct session's
    thread id (asked of the supervisor), and a PermissionRequest is let go at once."""
    client = daemon.client()
    own = client.request(m.CreateSession(provider="scripted", cwd=str(tmp_path))).session.id
    st = wait_session(client, own, lambda s: bool(s.thread_id))
    thread, before = st.thread_id, st.revision
    base = {"session_id": thread, "cwd": str(tmp_path),
            "transcript_path": str(tmp_path / "t.jsonl"), "prompt_id": "p1"}
    started = time.monotonic()
    for event, extra in (("UserPromptSubmit", {"prompt": "hi"}),
                         ("PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "ls"},
                                         "tool_use_id": "toolu_d"}),
                         ("PermissionRequest", {"tool_name": "Bash",
                                                "tool_input": {"command": "ls"}}),
                         ("Stop", {"last_assistant_message": "ok"})):
        proc = hook(daemon.home, event, dict(base, hook_event_name=event, **extra))
        assert (proc.returncode, proc.stdout) == (0, b"")
    assert time.monotonic() - started < 10  # the PermissionRequest did not wait
    with pytest.raises(RemoteError) as err:
        client.request(m.SubscribeSession(session_id=thread))
    assert err.value.code == "not_found"
    assert client.request(m.SubscribeSession(session_id=own)).session.revision == before
    assert spool_files(daemon.home) == []


@needs_claude
def test_compaction_shows_like_codex_and_ends_with_the_boundary(daemon, sim, box):
    """/compact: PreCompact starts a compaction row (is_compacting, as a Codex compaction
    shows); the transcript's compact_boundary line ends it (read at the SessionStart
    "compact" that follows), and the summary agent's SubagentStop is no tool row."""
    from orbitdock.session.core import COMPACTED_TEXT

    tap = EventTap(find_daemon(daemon.config).events)
    try:
        sim.set_script([{"text": "First answer."},
                        {"match": "TEXT ONLY", "text": "<summary>We said hello.</summary>"}])
        time.sleep(0.3)  # the SUB's subscription reaches the XPUB
        first = run_claude(box, sim, daemon.home, "hello")
        assert first.returncode == 0, first.stderr
        sid = session_id_of(first)
        client = daemon.client()
        wait_session(client, sid, lambda s: s.status == "ended")
        compact = run_claude(box, sim, daemon.home, "/compact keep it short", "--resume", sid)
        assert compact.returncode == 0, compact.stderr
        st = wait_session(client, sid, lambda s: any(
            msg.type == "compaction" and not msg.is_in_progress for msg in s.messages)
            and s.status == "ended")
        wait_until(lambda: any(isinstance(e, m.SessionEnded) for e in tap.of(sid)[-3:]), 5,
                   poll=tap.pump)
        compacting = [e.changes.is_compacting for e in tap.of(sid)
                      if isinstance(e, m.SessionDelta)
                      and isinstance(e.changes.is_compacting, bool)]
    finally:
        tap.close()
    rows = [(msg.type, msg.content) for msg in st.messages]
    # the slash command is its command line; its local output is no row
    assert rows == [("user", "hello"), ("assistant", "First answer."),
                    ("compaction", COMPACTED_TEXT), ("user", "/compact keep it short")]
    assert not st.is_compacting and compacting == [True, False]
    assert not any(msg.type == "tool" for msg in st.messages)  # the summary agent is no row


def test_rows_follow_the_transcript_when_hooks_run_ahead_of_it(daemon_factory, tmp_path):
    """A loaded claude: PreToolUse and PostToolUse arrive before the transcript has the
    text that announced the tool or the call itself. The tool row still comes after
    that text (the order of the transcript), once, with its output."""
    d = daemon_factory(ORBITDOCK_CLAUDE__TRANSCRIPT_SETTLE_MS="60000")
    sid = "order-race-1"
    transcript = tmp_path / f"{sid}.jsonl"
    base = {"session_id": sid, "cwd": str(tmp_path), "transcript_path": str(transcript),
            "prompt_id": "p1"}
    tool = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "toolu_1"}

    def append(*lines: dict) -> None:
        with transcript.open("a") as out:
            for obj in lines:
                out.write(json.dumps(dict(obj, sessionId=sid, isSidechain=False,
                                          timestamp="2026-12-07T19:29:00Z")) + "\n")

    def said(uuid: str, msg_id: str, block: dict) -> dict:
        return {"type": "assistant", "uuid": uuid,
                "message": {"id": msg_id, "role": "assistant", "content": [block]}}

    append({"type": "user", "uuid": "u1", "message": {"role": "user", "content": "list"}})
    for event, extra in (("UserPromptSubmit", {"prompt": "list"}), ("PreToolUse", tool),
                         ("PostToolUse", dict(tool, tool_response={"stdout": "a\nb"}))):
        assert hook(d.home, event, dict(base, hook_event_name=event, **extra)).returncode == 0
    # only now does the transcript get the text, the call and its result
    append(said("a1", "msg1", {"type": "text", "text": "Listing."}),
           said("a2", "msg1", {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                               "input": {"command": "ls"}}),
           {"type": "user", "uuid": "u2", "message": {"role": "user", "content": [
               {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a\nb"}]}},
           said("a3", "msg2", {"type": "text", "text": "Done."}))
    assert hook(d.home, "Stop", dict(base, hook_event_name="Stop",
                                     last_assistant_message="Done.")).returncode == 0
    st = wait_session(d.client(), sid, lambda s: s.work_status == "reply")
    assert [(msg.type, msg.content if msg.type != "tool" else msg.tool_name)
            for msg in st.messages] == [("user", "list"), ("assistant", "Listing."),
                                        ("tool", "Bash"), ("assistant", "Done.")]
    assert st.messages[2].tool_output == "a\nb" and st.tool_count == 1


def test_events_waiting_for_the_transcript_are_not_lost_when_the_daemon_stops(
        daemon_factory, tmp_path):
    """A tool row waits for a transcript that does not have its call yet; the daemon is
    stopped meanwhile (its forwarders were answered, so nothing is spooled). The row is
    sent at stop, not dropped: after a restart the session has it."""
    home = tmp_path / "home"
    d = daemon_factory(home=home, ORBITDOCK_CLAUDE__TRANSCRIPT_SETTLE_MS="60000")
    sid = "stop-flush-1"
    transcript = tmp_path / f"{sid}.jsonl"
    transcript.write_text(json.dumps({
        "type": "user", "uuid": "u1", "sessionId": sid, "isSidechain": False,
        "timestamp": "2026-12-07T19:29:00Z",
        "message": {"role": "user", "content": "list"}}) + "\n")
    base = {"session_id": sid, "cwd": str(tmp_path), "transcript_path": str(transcript)}
    tool = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "toolu_9"}
    for event, extra in (("UserPromptSubmit", {"prompt": "list"}), ("PreToolUse", tool),
                         ("PostToolUse", dict(tool, tool_response={"stdout": "a\nb"}))):
        assert hook(d.home, event, dict(base, hook_event_name=event, **extra)).returncode == 0
    st = wait_session(d.client(), sid, lambda s: s.prompt_count == 1)
    assert [msg.type for msg in st.messages] == ["user"]  # the tool row still waits
    d.close_clients()
    assert d.stop() == 0
    again = daemon_factory(home=home)
    st = again.client().request(m.SubscribeSession(session_id=sid)).session
    assert [(msg.type, msg.tool_name) for msg in st.messages] == [("user", None),
                                                                   ("tool", "Bash")]
    assert st.messages[1].tool_output == "a\nb"
