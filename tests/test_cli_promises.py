"""What orbitdockctl's help promises: --json anywhere, JSON errors, exit codes, --version/-h."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_env import create_scripted, ctl, ctl_json

BIN = Path(sys.executable).parent
QUICK_S = 10  # "at once": well under the 30 s a hung command would take


def json_error(proc) -> dict:
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1])["error"]


def test_json_before_or_after_the_command_and_json_errors(daemon):
    home = daemon.home
    sid = create_scripted(daemon, name="either side")
    before = json.loads(ctl(home, "--json", "session", "list").stdout)
    after = json.loads(ctl(home, "session", "list", "--json").stdout)
    assert [r["id"] for r in before] == [r["id"] for r in after] == [sid]
    assert json.loads(ctl(home, "session", "show", sid, "--json").stdout)["id"] == sid
    assert json.loads(ctl(home, "status", "--json").stdout)["type"] == "server_status"

    missing = ctl(home, "session", "show", "od-nope", "--json", check=False)
    assert missing.returncode == 1
    assert json_error(missing)["code"] == "not_found"
    bad_option = ctl(home, "--json", "session", "list", "--no-such-option", check=False)
    assert bad_option.returncode == 2 and json_error(bad_option)["code"] == "usage"
    plain = ctl(home, "session", "show", "od-nope", check=False)
    assert plain.returncode == 1 and plain.stderr.startswith("Error: error not_found")


def test_watch_and_send_wait_keep_the_exit_codes(daemon, tmp_path):
    nothing = tmp_path / "no-daemon"
    for args in (["watch"], ["watch", "od-x"], ["session", "send", "od-x", "hi", "--wait"]):
        proc = ctl(nothing, "--json", *args, check=False, timeout=QUICK_S)
        assert proc.returncode == 3, (args, proc.stderr)
        assert json_error(proc)["code"] == "daemon_not_running"

    home = daemon.home
    started = time.monotonic()
    bad = ctl(home, "watch", "od-nope", check=False, timeout=QUICK_S)
    assert bad.returncode == 1 and "not_found" in bad.stderr and "Traceback" not in bad.stderr
    assert time.monotonic() - started < QUICK_S
    bad_wait = ctl(home, "session", "send", "od-nope", "hi", "--wait", check=False)
    assert bad_wait.returncode == 1 and "not_found" in bad_wait.stderr

    sid = create_scripted(daemon)
    os.kill(daemon.proc.pid, signal.SIGSTOP)  # alive but silent: every request times out
    try:
        for args in (["status"], ["watch", sid], ["watch"],
                     ["session", "send", sid, "hi", "--wait"]):
            proc = ctl(home, "--timeout", "1", "--json", *args, check=False, timeout=QUICK_S)
            assert proc.returncode == 4, (args, proc.stderr)
            assert json_error(proc)["code"] == "timeout"
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert ctl_json(home, "session", "show", sid)["id"] == sid


@pytest.mark.parametrize("program", ["orbitdockctl", "orbitdock-load", "orbitdock-sim",
                                     "orbitdockd"])
def test_version_and_short_help(program):
    version = subprocess.run([BIN / program, "--version"], capture_output=True, text=True,
                             timeout=QUICK_S)
    assert version.returncode == 0 and "0." in version.stdout
    short = subprocess.run([BIN / program, "-h"], capture_output=True, text=True,
                           timeout=QUICK_S)
    assert short.returncode == 0 and "usage" in short.stdout.lower()
