"""`orbitdockctl logs`: the daemon's JSON log file printed for people, filtered, followed
across rotation. Real files written by the real logging set-up; the CLI as a subprocess."""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO
from orbitdock import logs

CLI_TIMEOUT_S = 30
WAIT_S = 10.0
log = logging.getLogger("orbitdock.testlog")


def ctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orbitdock.cli", *args], cwd=REPO,
                          env=dict(os.environ, ORBITDOCK_HOME=str(home)),
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


@pytest.fixture
def log_file(tmp_path):
    """The default log path of home ``tmp_path/home``, written by ``logs.setup``
    with a small rotation size so a few dozen lines span several files."""
    path = tmp_path / "home" / "logs" / "orbitdockd.log"
    logs.setup("DEBUG", path, False, max_bytes=1500, backups=20)
    yield path
    logs.setup("INFO", None, False)


def test_prints_filtered_readable_lines_across_rotated_files(log_file):
    for i in range(30):
        log.info("turn %d done", i, extra={"session_id": "od-a"})
        log.debug("noise %d", i)
    log.error("connector lost", extra={"session_id": "od-b", "code": 7})
    log.warning("codex[1]: thread od-a is slow")
    assert len(list(log_file.parent.iterdir())) > 3  # the lines below come from backups
    home = log_file.parent.parent

    out = ctl(home, "logs", "--session", "od-a", "-n", "25")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 25
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO    orbitdock\.testlog: "
                        r"turn 6 done  session_id=od-a", lines[0])
    assert [line.split(": ", 1)[1] for line in lines[-2:]] == [
        "turn 29 done  session_id=od-a", "codex[1]: thread od-a is slow"]

    out = ctl(home, "logs", "--level", "WARN")
    assert [line.split(": ", 1)[1] for line in out.stdout.splitlines()] == [
        "connector lost  session_id=od-b  code=7", "codex[1]: thread od-a is slow"]
    assert " ERROR   " in out.stdout

    out = ctl(home, "--json", "logs", "--level", "error", "-n", "5")
    assert [json.loads(line)["code"] for line in out.stdout.splitlines()] == [7]

    bad = ctl(home, "logs", "--level", "loud")
    assert bad.returncode == 2 and "unknown log level 'loud'" in bad.stderr
    missing = ctl(home.parent / "elsewhere", "logs")
    assert missing.returncode == 1 and "no log file at" in missing.stderr


def test_logs_of_a_real_daemon(daemon):
    out = ctl(daemon.home, "logs", "-n", "100")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^\S+ \S+ INFO    orbitdockd: orbitdockd \S+ up  epoch=\w+", out.stdout,
                     re.M)


class Follower:
    """`orbitdockctl logs -f` as a subprocess; its lines land in a queue."""

    def __init__(self, home: Path, *args: str, poll_s: float = 0.02):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orbitdock.cli", "logs", "-f", *args], cwd=REPO,
            env=dict(os.environ, ORBITDOCK_HOME=str(home),
                     ORBITDOCK_LOGGING__FOLLOW_POLL_S=str(poll_s)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout],
                         daemon=True).start()

    def next_message(self) -> str:
        try:
            return self.lines.get(timeout=WAIT_S).rstrip("\n").split(": ", 1)[1]
        except queue.Empty:
            raise AssertionError(f"no line within {WAIT_S}s") from None

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(WAIT_S)
        finally:
            self.proc.kill()


def test_follow_reads_new_lines_across_rotation_until_ctrl_c(log_file):
    log.warning("before")
    follower = Follower(log_file.parent.parent, "-n", "1", "--level", "warning")
    try:
        assert follower.next_message() == "before"  # the tail: from here on it follows
        for i in range(60):  # ~5 rotations; each file lives far longer than a poll
            log.warning("w%d", i)
            log.info("skipped %d", i)
            time.sleep(0.03)
        assert len(list(log_file.parent.iterdir())) > 4
        assert [follower.next_message() for _ in range(60)] == [f"w{i}" for i in range(60)]
    finally:
        code = follower.interrupt()
    assert code == 0
    assert follower.lines.empty()  # nothing read twice
    assert "Traceback" not in follower.proc.stderr.read()


def test_follow_loses_nothing_when_the_file_rotates_several_times_between_looks(log_file):
    log.warning("before")
    follower = Follower(log_file.parent.parent, "-n", "1", poll_s=1.0)
    try:
        assert follower.next_message() == "before"
        time.sleep(0.3)  # it has looked once and sleeps for a second now
        for i in range(40):  # ~5 rotations in a few ms, well inside one poll
            log.warning("w%d", i)
        assert [follower.next_message() for _ in range(40)] == [f"w{i}" for i in range(40)]
    finally:
        assert follower.interrupt() == 0
    assert follower.lines.empty()


def test_follow_waits_for_a_log_file_that_does_not_exist_yet(tmp_path):
    home = tmp_path / "home"
    follower = Follower(home)
    try:
        time.sleep(0.3)  # it is polling for the file now (or soon): either way all is read
        logs.setup("INFO", home / "logs" / "orbitdockd.log", False)
        log.info("first line")
        assert follower.next_message() == "first line"
    finally:
        logs.setup("INFO", None, False)
        assert follower.interrupt() == 0
