"""`orbitdockd --demo` runs on <home>/demo: its sessions never reach the user's database,
and it works with the home under the temp dir (its CODEX_HOME then goes to the cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from codex_daemon_env import CODEX_MARKS
from conftest import REPO, wait_until
from orbitdock.client import RemoteError
from orbitdock.codex.home import outside_temp_dir
from orbitdock.protocol import messages as m

pytestmark = CODEX_MARKS
DEMO_TIMEOUT_S = 60.0  # codex (or claude) starts and reaches the scripted command's approval


def test_the_demo_keeps_its_own_home_and_a_plain_start_does_not_restore_it(daemon_factory,
                                                                            tmp_path):
    home = tmp_path / "home"  # under the temp dir, as a throw-away ORBITDOCK_HOME would be
    demo_home = home / "demo"
    codex_home = outside_temp_dir(demo_home / "codex-home")
    demo = daemon_factory("--demo", home=home, serves=demo_home)
    try:
        with demo.client() as client:
            def codex_waits_on_you():
                sessions = client.request(m.SubscribeList()).sessions
                return any(s.provider == "codex" and s.pending_approvals for s in sessions)
            assert wait_until(codex_waits_on_you, DEMO_TIMEOUT_S, interval=0.2), \
                client.request(m.SubscribeList()).sessions
            assert len(client.request(m.SubscribeList()).sessions) == 4
            # The Claude session (a real claude on the scripted Messages API) asks to run
            # a command, then to write NOTES.md: approving both writes the file.
            claude = next(s for s in client.request(m.SubscribeList()).sessions
                          if s.provider == "claude")
            assert claude.integration_mode == "direct"
            notes = demo_home / "workspace" / "NOTES.md"

            def approve_claude():
                state = client.request(m.SubscribeSession(session_id=claude.id)).session
                for approval in state.approvals:
                    try:
                        client.request(m.ApproveTool(approval_id=approval.id,
                                                     decision="accept"))
                    except RemoteError:  # decided by the previous round, not yet resolved
                        pass
                return notes.exists()
            assert wait_until(approve_claude, DEMO_TIMEOUT_S, interval=0.3), \
                client.request(m.SubscribeSession(session_id=claude.id)).session
            assert "orbitdock demo" in notes.read_text()
        assert (demo_home / "orbitdock.db").exists()
        assert not (home / "orbitdock.db").exists()
        assert any(f"CODEX_HOME {codex_home} (in your cache" in line
                   for line in demo.log_lines())
        # orbitdockctl with no home given finds the demo (no other daemon runs on the home).
        env = {k: v for k, v in os.environ.items() if k != "ORBITDOCK_HOME"}
        listed = subprocess.run(
            [sys.executable, "-m", "orbitdock.cli", "--json", "session", "list"], cwd=REPO,
            env=dict(env, ORBITDOCK_PATHS__DATA_DIR=str(home)), capture_output=True,
            text=True, timeout=30)
        assert listed.returncode == 0 and "the demo daemon at" in listed.stderr, listed.stderr
        assert len(json.loads(listed.stdout)) == 4
        assert demo.stop() == 0
        plain = daemon_factory(home=home)
        with plain.client() as client:
            assert client.request(m.SubscribeList()).sessions == []
    finally:
        shutil.rmtree(codex_home, ignore_errors=True)

