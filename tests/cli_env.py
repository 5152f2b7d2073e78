"""Running orbitdockctl as a user does (a real subprocess) against a test daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from conftest import REPO

CLI_TIMEOUT_S = 30
STATE_TIMEOUT_S = 10.0  # a scripted session reaches any state in well under a second


def ctl(home, *args, check=True, timeout=CLI_TIMEOUT_S, env=None):
    full_env = dict(os.environ, ORBITDOCK_HOME=str(home), **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "orbitdock.cli", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"orbitdockctl {args} -> {proc.returncode}: {proc.stderr}")
    return proc


def ctl_json(home, *args):
    return json.loads(ctl(home, "--json", *args).stdout)


def create_scripted(daemon, script=None, name=None) -> str:
    """A scripted session made through the client library (the CLI has no --script)."""
    from orbitdock.protocol import messages as m

    reply = daemon.client().request(m.CreateSession(provider="scripted", cwd=str(REPO),
                                                    script=script, name=name))
    return reply.session.id


def wait_for_state(home, session_id, predicate, timeout=STATE_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = ctl_json(home, "session", "show", session_id)
        if predicate(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"session {session_id} never reached the state; last {state}")
        time.sleep(0.1)
