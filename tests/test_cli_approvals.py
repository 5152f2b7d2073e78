"""Approving safely: see the whole request (command, diff, questions) before deciding."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from cli_env import CLI_TIMEOUT_S, create_scripted, ctl, ctl_json, wait_for_state
from conftest import REPO

DIFF = ("diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n"
        " import os\n-print('old')\n+print('new')\n")
GREEN = "\x1b[32m"


def on_a_terminal(home, *args, env=None) -> str:
    """orbitdockctl's output with a pseudo-terminal as its stdout (colors on)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "orbitdock.cli", *args], cwd=REPO,
                            env=dict(os.environ, ORBITDOCK_HOME=str(home), TERM="xterm",
                                     **(env or {})),
                            stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the follower side closed: the program is done
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(CLI_TIMEOUT_S)
    os.close(leader)
    return b"".join(chunks).decode()


def test_show_has_the_diff_the_command_and_the_question(daemon):
    home = daemon.home
    sid = create_scripted(daemon, script=[{"approval": "patch", "diff": DIFF},
                                          {"approval": "exec", "command": "rm -rf build"},
                                          {"question": "Which db?", "options": ["sqlite", "pg"]}])
    ctl(home, "session", "send", sid, "edit")
    [patch] = wait_for_state(home, sid, lambda s: len(s["approvals"]) == 1)["approvals"]
    shown = ctl(home, "session", "show", sid).stdout
    assert "+print('new')" in shown and "-print('old')" in shown and "\x1b[" not in shown
    colored = on_a_terminal(home, "session", "show", sid)
    assert GREEN + "+print('new')" in colored

    whole = ctl(home, "approval", "show", patch["id"]).stdout
    assert DIFF.splitlines()[0] in whole and "+print('new')" in whole
    assert ctl(home, "approve", "--show", patch["id"]).stdout == whole  # shows, decides nothing
    assert ctl_json(home, "approval", "show", patch["id"])["diff"] == DIFF
    assert ctl_json(home, "session", "show", sid)["approvals"][0]["id"] == patch["id"]
    cut = ctl(home, "session", "show", sid, "--diff-lines", "2").stdout
    assert "+print('new')" not in cut and "5 more lines" in cut
    ctl(home, "approve", patch["id"])

    wait_for_state(home, sid, lambda s: s["work_status"] == "reply")
    ctl(home, "session", "send", sid, "run")
    [run] = wait_for_state(home, sid, lambda s: len(s["approvals"]) == 1)["approvals"]
    assert "command  rm -rf build" in ctl(home, "session", "show", sid).stdout
    assert [a["id"] for a in ctl_json(home, "approval", "list")] == [run["id"]]
    ctl(home, "deny", run["id"])

    wait_for_state(home, sid, lambda s: s["work_status"] == "reply")
    ctl(home, "session", "send", sid, "ask")
    [question] = wait_for_state(home, sid, lambda s: len(s["approvals"]) == 1)["approvals"]
    wrong = ctl(home, "approve", question["id"], check=False)
    assert wrong.returncode == 1
    assert "Which db?" in wrong.stdout and "sqlite | pg" in wrong.stdout
    assert f"orbitdockctl answer {question['id']}" in wrong.stderr
    wrong_json = ctl(home, "--json", "approve", question["id"], check=False)
    assert wrong_json.returncode == 1 and '"wrong_verb"' in wrong_json.stderr
    assert ctl_json(home, "session", "show", sid)["approvals"][0]["id"] == question["id"]
    assert "answered" in ctl(home, "answer", question["id"], "pg").stdout
