"""orbitdockctl against a running daemon, as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO
from orbitdock.protocol import messages as m

CLI_TIMEOUT_S = 30


def ctl(home, *args, check=True):
    env = dict(os.environ, ORBITDOCK_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "orbitdock.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if check and proc.returncode != 0:
        raise AssertionError(f"orbitdockctl {args} -> {proc.returncode}: {proc.stderr}")
    return proc


def test_cli_against_running_daemon(daemon):
    home = daemon.home
    status = json.loads(ctl(home, "--json", "status").stdout)
    assert status["type"] == "server_status" and status["sessions"] == 0
    assert "uptime" in ctl(home, "status").stdout
    codex = json.loads(ctl(home, "--json", "codex").stdout)  # no session yet: no process
    assert codex["processes"] == [] and codex["recoveries"]["processes_lost"] == 0
    assert "not measured yet" in ctl(home, "codex").stdout

    sid = ctl(home, "session", "create", "--provider", "scripted", "--cwd", str(REPO),
              "--name", "cli demo").stdout.strip()
    assert sid.startswith("od-")
    out = json.loads(ctl(home, "--json", "session", "send", sid, "hello", "--wait").stdout)
    assert out["outcome"] == "completed" and "hello" in out["last_assistant_message"]

    out = json.loads(ctl(home, "--json", "session", "send", sid, "/approve make test",
                         "--wait").stdout)
    assert out["outcome"] == "waiting_on_approval" and len(out["pending_approvals"]) == 1
    approval = out["pending_approvals"][0]
    shown = ctl(home, "session", "show", sid).stdout
    assert approval in shown and "make test" in shown

    listing = json.loads(ctl(home, "--json", "session", "list").stdout)
    assert [row["id"] for row in listing] == [sid]
    assert listing[0]["attention_reason"] == "awaitingPermission"
    assert "cli demo" in ctl(home, "session", "list").stdout

    watcher = subprocess.Popen(
        [sys.executable, "-m", "orbitdock.cli", "watch", sid, "--duration", "3"], cwd=REPO,
        env=dict(os.environ, ORBITDOCK_HOME=str(home)), stdout=subprocess.PIPE, text=True)
    client = daemon.client()
    import time
    time.sleep(1.0)
    assert "applied" in ctl(home, "approve", approval).stdout
    stale = ctl(home, "approve", approval, check=False)
    assert stale.returncode == 1 and "stale_approval" in stale.stderr
    streamed, _ = watcher.communicate(timeout=CLI_TIMEOUT_S)
    assert "snapshot" in streamed and f"approval {approval} -> accept" in streamed

    ctl(home, "session", "rename", sid, "renamed")
    assert client.request(m.SubscribeSession(session_id=sid)).session.display_name == "renamed"
    ctl(home, "session", "end", sid)
    ended = json.loads(ctl(home, "--json", "session", "show", sid).stdout)
    assert ended["status"] == "ended"
    missing = ctl(home, "session", "show", "od-nope", check=False)
    assert missing.returncode == 1 and "not_found" in missing.stderr


def test_cli_says_clearly_when_no_daemon(tmp_path):
    proc = ctl(tmp_path / "nothing-here", "status", check=False)
    assert proc.returncode == 3
    assert "not running" in proc.stderr
    proc = ctl(tmp_path / "nothing-here", "--json", "session", "list", check=False)
    assert proc.returncode == 3


def test_session_list_pages_the_history_with_filters(daemon):
    home = daemon.home
    client = daemon.client()
    ids = [client.request(m.CreateSession(provider="scripted", cwd=f"/w/{name}", name=name)
                          ).session.id for name in ("alpha", "beta", "gamma", "delta")]
    for sid in ids[:3]:
        client.request(m.EndSession(session_id=sid))

    def listed(*args) -> list[str]:
        return [row["id"] for row in json.loads(ctl(home, "--json", "session", "list",
                                                     *args).stdout)]

    assert listed() == [ids[3]]  # the live list, active only
    assert sorted(listed("--all", "--limit", "0")) == sorted(ids)  # every page
    assert len(listed("--all", "--limit", "2")) == 2
    assert listed("--all", "--search", "GAM") == [ids[2]]
    assert listed("--all", "--project", "beta") == [ids[1]]
    assert sorted(listed("--all", "--since", "1h", "--provider", "scripted")) == sorted(ids)
    assert listed("--provider", "codex") == []
    assert "alpha" in ctl(home, "session", "list", "--all").stdout
