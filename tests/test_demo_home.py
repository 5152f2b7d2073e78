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
from orbitdock.codex.home import outside_temp_dir
from orbitdock.protocol import messages as m

pytestmark = CODEX_MARKS
DEMO_TIMEOUT_S = 60.0  # codex starts and reaches the scripted command's approval


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
            assert len(client.request(m.SubscribeList()).sessions) == 3
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
        assert len(json.loads(listed.stdout)) == 3
        assert demo.stop() == 0
        plain = daemon_factory(home=home)
        with plain.client() as client:
            assert client.request(m.SubscribeList()).sessions == []
    finally:
        shutil.rmtree(codex_home, ignore_errors=True)

