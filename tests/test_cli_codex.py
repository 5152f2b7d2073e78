"""orbitdockctl with real Codex sessions (against the scripted model): steering a running
turn, and an exec approval shown whole (command, cwd, reason)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from cli_env import ctl
from codex_daemon_env import (  # noqa: F401  (fixtures are found by name)
    CODEX_MARKS,
    TURN_TIMEOUT_S,
    codex_daemon,
    create,
    wait_status,
)
from conftest import REPO, wait_until

pytestmark = CODEX_MARKS

STEER = "also mention pytest"


def test_send_to_a_working_codex_session_steers_its_turn(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    sim.set_script([{"text": "working on it", "hold": 60},
                    {"match": STEER, "text": "Steered: pytest too."}])
    ctl(d.home, "session", "send", sid, "a long task")
    wait_status(client, sid, "working")
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)

    waiting = subprocess.Popen(
        [sys.executable, "-m", "orbitdock.cli", "session", "send", sid, STEER, "--wait"],
        cwd=REPO, env=dict(os.environ, ORBITDOCK_HOME=str(d.home)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert waiting.stdout.readline().strip() == "steered the running turn"
    sim.release()
    rest = waiting.stdout.read()  # --wait returns when the steered turn ends
    assert waiting.wait(TURN_TIMEOUT_S) == 0, waiting.stderr.read()
    assert rest.splitlines() == ["turn completed", "Steered: pytest too."]
    st = wait_status(client, sid, "reply")
    assert st.messages[-1].content == "Steered: pytest too."
    assert st.turn_count == 1  # the steer joined the running turn, it started no other
    assert any(STEER in str(request) for request in sim.requests()[1:])


def test_an_exec_approval_shows_its_command_cwd_and_reason(codex_daemon, sim):
    d = codex_daemon()
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="on-request")
    sim.set_script([{"call": "exec_command", "args": {
        "cmd": "touch escalated.txt", "login": False,
        "sandbox_permissions": "require_escalated", "justification": "needs to write here"}},
        {"text": "skipped"}])
    ctl(d.home, "session", "send", sid, "make a file")
    st = wait_status(client, sid, "permission")
    shown = ctl(d.home, "session", "show", sid[:12]).stdout
    # codex wraps the command in the user's shell (`/bin/bash -c '...'` here)
    assert re.search(r"^ +command  .*touch escalated\.txt", shown, re.M), shown
    assert f"cwd      {codex_daemon.workspace}" in shown
    assert "reason   needs to write here" in shown
    whole = ctl(d.home, "approval", "show", st.approvals[0].id).stdout
    assert "touch escalated.txt" in whole and "needs to write here" in whole
    ctl(d.home, "deny", st.approvals[0].id)
    wait_status(client, sid, "reply")
