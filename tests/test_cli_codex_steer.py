"""`session send` steers a running Codex turn: the model's next request carries the text."""

from __future__ import annotations

import os
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
