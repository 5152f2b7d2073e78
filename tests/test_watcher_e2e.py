"""Passive Codex sessions end to end: a real codex in a terminal -> its rollout -> the
real daemon's watcher -> clients.

Each test runs a real ``orbitdockd`` with its watcher (``daemon_factory(watcher=True)``)
on a private CODEX_HOME and talks to it only through the ZeroMQ protocol, the client
library or ``orbitdockctl``. Rollouts come from the real ``codex exec --json`` against the
scripted model (tests marked ``codex``), or from rollout lines the real codex 0.169 wrote
(``tests/fixtures/rollouts``). Damaged files and a crash in mid-import are in
``test_watcher_files.py``; the shared fixtures in ``watcher_env.py``.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import orjson
import pytest

from conftest import wait_until
from orbitdock.client import snapshot_bytes
from orbitdock.codex.home import clean_env, write_sim_codex_home
from orbitdock.protocol import messages as m
from orbitdock.rollout.naming import name_from_first_prompt
from watcher_env import (  # noqa: F401  (fixtures are found by name)
    CODEX,
    CODEX_TIMEOUT_S,
    FIXTURES,
    SHOW_S,
    append,
    codex_exec,
    codex_home,
    file_status,
    line_times,
    needs_codex,
    rollout_path,
    session,
    start_daemon,
    wait_session,
    watcher_status,
    workspace,
)


# ------------------------------------------------------------------ real codex
@needs_codex
def test_terminal_codex_exec_session_appears_with_its_fields(start_daemon, codex_home, sim,
                                                             workspace):
    d = start_daemon(sim)
    client = d.client()
    sim.set_script([{"call": "exec_command", "args": {"cmd": "echo hi > out.txt", "login": False}},
                    {"text": "Wrote out.txt."}])
    prompt = ("  Please   write a small file\n\n named out.txt, then tell me   what you did "
              "in one short sentence  ")
    tid = codex_exec(codex_home, sim, workspace, prompt)

    st = wait_session(client, tid, lambda s: s.work_status == "reply")
    collapsed = " ".join(prompt.split())
    assert len(collapsed) > 72 and st.display_name == collapsed[:72] + "…"
    assert st.display_name == name_from_first_prompt(prompt)
    assert (st.id, st.thread_id, st.provider, st.integration_mode) == (tid, tid, "codex", "passive")
    assert (st.project_path, st.project_name) == (str(workspace), workspace.name)
    assert st.git_branch == "feature/passive-watch" and st.model == "gpt-5.5"
    assert (st.status, st.current_turn_id, st.turn_count) == ("active", None, 1)
    assert (st.prompt_count, st.first_prompt) == (1, prompt)
    assert (st.tool_count, st.last_tool) == (1, "Shell")
    assert [x.type for x in st.messages] == ["user", "tool", "assistant"]
    user, tool, reply = st.messages
    assert (tool.tool_name, tool.tool_input, tool.is_in_progress) == \
        ("Shell", "echo hi > out.txt", False)
    assert reply.content == "Wrote out.txt." and st.last_message == "Wrote out.txt."
    # Times are when codex wrote the lines, not when orbitdock read them.
    rollout = Path(st.transcript_path)
    assert rollout.name.endswith(f"{tid}.jsonl") and codex_home in rollout.parents
    assert user.timestamp == pytest.approx(line_times(rollout, "UserMessage")[0], abs=1e-3)
    assert reply.timestamp == pytest.approx(line_times(rollout, "AgentMessage")[0], abs=1e-3)
    listed = client.request(m.SubscribeList()).sessions
    assert [s.id for s in listed] == [tid]
    # A name codex gives the thread (thread/name/set, /rename: session_index.jsonl) wins.
    append(codex_home / "session_index.jsonl",
           orjson.dumps({"id": tid, "thread_name": "Named in codex"}) + b"\n")
    wait_session(client, tid, lambda s: s.display_name == "Named in codex")


@needs_codex
def test_a_resumed_turn_streams_live_to_a_subscriber(start_daemon, codex_home, sim, workspace):
    d = start_daemon(sim)
    client = d.client()
    sim.set_script([{"text": "first answer"}])
    tid = codex_exec(codex_home, sim, workspace, "first question")
    wait_session(client, tid, lambda s: s.work_status == "reply")
    sub = d.subscription()
    sub.watch_session(tid)
    assert sub.wait_synced(SHOW_S)
    events_before = sub.stats.events

    # The model answers the second turn only when released: while codex still runs,
    # the subscriber must already see the prompt and the tool, i.e. live, not afterwards.
    sim.set_script([{"call": "exec_command", "args": {"cmd": "echo two", "login": False}},
                    {"text": "second answer", "hold": CODEX_TIMEOUT_S}])
    env = clean_env(None, write_sim_codex_home(codex_home, sim.url))
    proc = subprocess.Popen([str(CODEX), "exec", "--json", "--skip-git-repo-check", "resume", tid,
                             "second question"], cwd=workspace, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def mid_turn():
            st = sub.state(tid)
            return (st is not None and st.work_status == "working" and st.tool_count == 1
                    and st.messages[-1].type == "tool" and not st.messages[-1].is_in_progress)
        assert wait_until(mid_turn, CODEX_TIMEOUT_S, poll=sub.poll), sub.state(tid)
        assert proc.poll() is None  # codex is still inside the turn
        assert [x.content for x in sub.state(tid).messages if x.type == "user"] == \
            ["first question", "second question"]
        assert wait_until(lambda: sim.state()["held"] >= 1, CODEX_TIMEOUT_S)
        sim.release()
        assert proc.wait(CODEX_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(CODEX_TIMEOUT_S)
    assert wait_until(lambda: sub.state(tid).work_status == "reply", SHOW_S, poll=sub.poll)
    mirror = sub.state(tid)
    assert mirror.messages[-1].content == "second answer" and mirror.prompt_count == 2
    assert sub.stats.events - events_before >= 6  # message by message, as events
    assert (sub.stats.gaps, sub.stats.resyncs) == (0, 0)
    assert wait_until(lambda: snapshot_bytes(sub.state(tid)) == snapshot_bytes(
        session(client, tid)), SHOW_S, poll=sub.poll)  # the mirror is exact


@needs_codex
def test_a_direct_sessions_own_rollout_creates_no_second_session(start_daemon, sim, workspace):
    d = start_daemon(sim)
    client = d.client(timeout=CODEX_TIMEOUT_S)
    sid = client.request(m.CreateSession(
        provider="codex", cwd=str(workspace), model="gpt-5.5", approval_policy="never",
        sandbox_mode="workspace-write")).session.id
    sim.set_script([{"text": "direct answer"}])
    client.request(m.SendMessage(session_id=sid, content="hello from orbitdock"))
    st = wait_session(client, sid, lambda s: s.work_status == "reply", timeout=CODEX_TIMEOUT_S)
    thread = st.thread_id
    assert thread and thread != sid

    def rollout_read_to_its_end():
        f = next((f for f in watcher_status(client)["files"] if f["session_id"] == thread), None)
        return f is not None and f["lag"] == 0 and f["offset"] > 0 and f
    assert wait_until(rollout_read_to_its_end, SHOW_S, interval=0.05), watcher_status(client)
    assert rollout_read_to_its_end()["own"] is True  # known as ours from its originator
    assert session(client, thread) is None  # no shadow session under the thread id
    assert [s.id for s in client.request(m.SubscribeList()).sessions] == [sid]
    st = session(client, sid)
    assert [(x.type, x.content) for x in st.messages] == [
        ("user", "hello from orbitdock"), ("assistant", "direct answer")]
    assert watcher_status(client)["sessions"] == 0


def test_a_reverted_thread_continues_in_its_new_file_without_duplicates(start_daemon,
                                                                        codex_home):
    """thread/revert makes codex go on in ``rollout-…-<thread>_<uuid>.jsonl`` (same thread
    id, a new session_meta, the ordinals continuing): the same session, every message
    once, and both files' offsets kept across a daemon restart."""
    tid = "01a212ca-fc7f-71a1-aa6f-e4940a55f50b"  # app_server_turns*.jsonl, codex 0.169

    def as_terminal_client(name: str) -> bytes:  # recorded by orbitdock's own client
        return (FIXTURES / name).read_bytes().replace(b'"originator":"orbitdock"',
                                                      b'"originator":"codex_vscode"')

    original = rollout_path(codex_home, tid)
    reverted = original.with_name(f"{original.stem}_{uuid.uuid4()}.jsonl")
    before = ["First prompt please", "Run a command", "Ask me a question", "slow one",
              "this one fails"]

    def prompts(st) -> list[str]:
        return [x.content for x in st.messages if x.type == "user"]

    d = start_daemon()
    client = d.client()
    append(original, as_terminal_client("app_server_turns.jsonl"))
    wait_session(client, tid, lambda s: prompts(s) == before)
    append(reverted, as_terminal_client("app_server_turns_revert.jsonl"))
    st = wait_session(client, tid, lambda s: "post revert" in [x.content for x in s.messages])
    assert prompts(st) == before + ["after revert"] and st.prompt_count == 6
    assert [s.id for s in client.request(m.SubscribeList()).sessions] == [tid]
    assert wait_until(lambda: all(file_status(client, p)["lag"] == 0
                                  for p in (original, reverted)), SHOW_S)
    shown = snapshot_bytes(session(client, tid))

    d.close_clients()
    d.stop()
    client = start_daemon().client()
    assert wait_until(lambda: all((file_status(client, p) or {}).get("lag") == 0
                                  for p in (original, reverted)), SHOW_S)
    assert snapshot_bytes(session(client, tid)) == shown  # nothing read twice
