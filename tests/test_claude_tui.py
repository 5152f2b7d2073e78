"""The interactive claude (TUI, in tmux) with orbitdock's blocking PermissionRequest hook.

Claude 2.1.332 shows its own permission dialog while the hook runs: whoever answers
first wins. Here nobody decides in orbitdock within ``claude.permission_wait_s``: the
hook returns no decision, claude's dialog is still there, and a decision in orbitdock
is then stale; the person answers in the terminal, the tool runs, and the approval
resolves in orbitdock.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time

import pytest

from claude_env import CLAUDE, box, claude_env, make_box, needs_claude  # noqa: F401
from conftest import wait_until
from orbitdock.client import RemoteError
from orbitdock.protocol import messages as m

WAIT_S = 2.0
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


class Tmux:
    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              text=True, timeout=10).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "t")


def start_tui(tmux: Tmux, box, sim, daemon, prompt: str) -> None:
    """The interactive claude in tmux (env of ``box``, permission mode default), with
    ``prompt`` typed once its prompt box is drawn."""
    env = claude_env(box, sim, daemon.home)
    command = ("env -i " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
               + f" {CLAUDE} --permission-mode default")
    tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "50", "-c", str(box.project),
         command)
    assert wait_until(lambda: "Claude Code" in tmux.screen(), 30, interval=0.2)
    time.sleep(1.0)  # the prompt box takes input once drawn
    tmux("send-keys", "-t", "t", prompt, "")
    time.sleep(0.3)
    tmux("send-keys", "-t", "t", "Enter")


def settled(client, sid: str) -> bool:
    """No approval left and the turn ended as a reply."""
    st = client.request(m.SubscribeSession(session_id=sid)).session
    return not st.approvals and st.work_status == "reply"


def first_pending(client, tmux: Tmux):
    """The first session row with a pending approval, once there is one."""
    rows: list = []

    def pending() -> bool:
        rows[:] = [r for r in client.request(m.SubscribeList()).sessions
                   if r.pending_approvals]
        return bool(rows)

    assert wait_until(pending, 60, interval=0.2), tmux.screen()
    return rows[0]


@needs_claude
@needs_tmux
def test_tui_nobody_decides_claude_asks_and_the_terminal_answer_resolves(daemon_factory,
                                                                          sim, tmp_path):
    box = make_box(tmp_path / "claude", permission_wait_s=WAIT_S)
    d = daemon_factory(ORBITDOCK_CLAUDE__PERMISSION_WAIT_S=str(WAIT_S))
    sim.set_script([{"call": "Bash", "args": {"command": "echo hi > out.txt",
                                              "description": "write it"},
                     "text": "Running it."}, {"text": "Done."}])
    tmux = Tmux(str(tmp_path / "tmux.sock"))
    try:
        start_tui(tmux, box, sim, d, "write out.txt")
        client = d.client()
        row = first_pending(client, tmux)
        sid = row.id
        approval = client.request(m.SubscribeSession(session_id=sid)).session.approvals[0]
        # claude's own dialog is up while orbitdock holds the hook
        assert wait_until(lambda: "Do you want to proceed?" in tmux.screen(), 20,
                          interval=0.2), tmux.screen()
        time.sleep(WAIT_S + 1.0)  # orbitdock gives up waiting: the dialog stays
        assert "Do you want to proceed?" in tmux.screen()
        assert not (box.project / "out.txt").exists()
        with pytest.raises(RemoteError) as stale:
            client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
        assert stale.value.code == "stale_approval"
        assert "terminal" in stale.value.message
        tmux("send-keys", "-t", "t", "1")  # "Yes" in claude's dialog
        assert wait_until(lambda: (box.project / "out.txt").exists(), 30, interval=0.2), \
            tmux.screen()

        assert wait_until(lambda: settled(client, sid), 20, interval=0.2)
    finally:
        tmux("kill-server")


@needs_claude
@needs_tmux
def test_tui_ask_user_question_answered_from_orbitdock(daemon_factory, sim, tmp_path):
    """AskUserQuestion (offered by the TUI only: claude -p says it "is disabled for this
    session") becomes a question approval; `orbitdockctl answer` answers it, the hook
    allows the tool with the answers in its input, and the model gets them as the tool's
    result in the next request."""
    import os
    import sys
    from pathlib import Path

    box = make_box(tmp_path / "claude", permission_wait_s=60)
    d = daemon_factory(ORBITDOCK_CLAUDE__PERMISSION_WAIT_S="60")
    question = {"question": "Which color?", "header": "Color", "multiSelect": False,
                "options": [{"label": "Red", "description": "warm"},
                            {"label": "Blue", "description": "cool"}]}
    sim.set_script([{"call": "AskUserQuestion", "args": {"questions": [question]}},
                    {"text": "Blue it is."}])
    tmux = Tmux(str(tmp_path / "tmux.sock"))
    try:
        start_tui(tmux, box, sim, d, "pick a color")
        client = d.client()
        row = first_pending(client, tmux)
        assert (row.work_status, row.attention_reason) == ("question", "awaitingQuestion")
        sid = row.id
        approval = client.request(m.SubscribeSession(session_id=sid)).session.approvals[0]
        assert approval.type == "question"
        assert [(q.id, q.question, [o["label"] for o in q.options]) for q in approval.questions] \
            == [("q0", "Which color?", ["Red", "Blue"])]
        ctl = str(Path(sys.executable).parent / "orbitdockctl")
        answered = subprocess.run([ctl, "answer", approval.id, "Blue"], capture_output=True,
                                  text=True, timeout=30,
                                  env=dict(os.environ, ORBITDOCK_HOME=str(d.home)))
        assert answered.returncode == 0, answered.stderr
        assert wait_until(lambda: len(sim.requests()) >= 2, 30, interval=0.2), tmux.screen()
        result = sim.requests()[1]["messages"][-1]["content"][0]
        assert result["type"] == "tool_result" and not result.get("is_error"), result
        assert '"Which color?"="Blue"' in str(result["content"])

        assert wait_until(lambda: settled(client, sid), 20, interval=0.2)
    finally:
        tmux("kill-server")
