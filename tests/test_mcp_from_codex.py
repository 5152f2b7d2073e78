"""The seed's smoke test, automated: an agent supervises an agent through orbitdock-mcp.

A direct Codex session (real codex, scripted model) whose CODEX_HOME configures
``orbitdock-mcp`` searches for orbitdock's tools, lists the sessions, sends a message
into a second session and approves that session's pending command, which then really
runs.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid

from codex_daemon_env import CODEX_MARKS, TURN_TIMEOUT_S, create, state, wait_turn_done
from conftest import REPO, TEST_ROOT, wait_until
from orbitdock.codex.home import write_sim_codex_home
from orbitdock.protocol import messages as m

pytestmark = CODEX_MARKS
NS = "mcp__orbitdock"


def test_a_codex_session_supervises_another_through_orbitdock_mcp(daemon_factory, sim,
                                                                    tmp_path):
    home = tmp_path / "home"
    codex_home = TEST_ROOT / f"mcp-e2e-{uuid.uuid4().hex[:8]}"
    server = {"command": sys.executable, "args": ["-m", "orbitdock.mcp.server"],
              "cwd": str(REPO), "env": {"ORBITDOCK_HOME": str(home)},
              "startup_timeout_sec": 60, "tool_timeout_sec": 120,
              "default_tools_approval_mode": "approve"}
    extra = "[mcp_servers.orbitdock]\n" + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in server.items() if key != "env") + \
        "[mcp_servers.orbitdock.env]\n" + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in server["env"].items())
    env = write_sim_codex_home(codex_home, sim.url, extra_toml=extra)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    try:
        d = daemon_factory(home=home, **env)
        client = d.client(timeout=10)
        worker = create(client, workspace, policy="untrusted", name="worker")
        boss = create(client, workspace, policy="never", name="boss")
        # codex starts its MCP servers with the thread; the first turn sees only the tools
        # of those that are ready, so wait for orbitdock-mcp (the session shows it).
        assert wait_until(lambda: any(
            s.name == "orbitdock" and s.state == "ready" and s.tool_count >= 13
            for s in state(client, boss).mcp_servers), 90), state(client, boss).mcp_servers
        proof = workspace / "proof.txt"
        # Each request takes the first reply whose match is in its body. The boss's later
        # requests carry its whole history (the worker's task too), so its replies come
        # first, keyed by its own call ids, which the worker's requests never contain.
        sim.set_script([
            # The boss's turn: find orbitdock's tools (deferred behind tool_search for
            # gpt-5.5), list the sessions, hand the worker a task, approve its command.
            {"match": "SUPERVISE", "tool_search": {"query": "orbitdock sessions"},
             "call_id": "ts-1"},
            {"match": "ts-1", "call": "list_sessions", "namespace": NS,
             "args": {"controllable_only": True}, "call_id": "mcp-list"},
            {"match": "mcp-list", "call": "send_message", "namespace": NS,
             "args": {"session_id": worker, "message": "WORKER write the proof"},
             "call_id": "mcp-send"},
            {"match": "mcp-approve", "text": "boss: the worker is done"},
            {"match": "mcp-send", "call": "approve", "namespace": NS,
             "args": {"session_id": worker, "decision": "approved", "wait_s": 60},
             "call_id": "mcp-approve"},
            # The worker's turn: a command its policy (untrusted) sends for approval.
            {"match": "c-proof", "text": "worker: proof written"},
            {"match": "WORKER", "call": "exec_command", "call_id": "c-proof",
             "args": {"cmd": f"echo supervised > {proof}", "login": False}},
        ])
        client.request(m.SendMessage(session_id=boss, content="SUPERVISE the worker"),
                       timeout=TURN_TIMEOUT_S)
        done = wait_turn_done(client, boss, 0, timeout=180)
        assert done.messages[-1].content == "boss: the worker is done", \
            [(x.type, x.content[:120], x.tool_output) for x in done.messages]
        assert wait_until(lambda: state(client, worker).turn_count == 1
                          and state(client, worker).current_turn_id is None, TURN_TIMEOUT_S), \
            [(x.type, x.content[:200], x.tool_output) for x in state(client, worker).messages]
        assert proof.read_text().strip() == "supervised"  # the command really ran
        worker_state = state(client, worker)
        assert worker_state.messages[0].content == "WORKER write the proof"
        assert worker_state.messages[-1].content == "worker: proof written"
        # The boss's tool calls went through orbitdock-mcp, and the daemon logged them.
        tools = [x for x in done.messages if x.type == "tool"]
        assert [t.tool_name for t in tools][-3:] and any(
            "list_sessions" in (t.tool_name or "") + (t.tool_input or "") for t in tools)
        assert any("from orbitdock-mcp" in line and "approve_tool" in line
                   for line in d.log_lines())
    finally:
        shutil.rmtree(codex_home, ignore_errors=True)
