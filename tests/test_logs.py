"""Daemon logs: readable lines on a terminal, JSON lines in a rotated file and in pipes,
and codex's own stderr levels kept. Real daemons on a real pty; every wait bounded."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_session import make_base_dir
from conftest import REPO, STOP_TIMEOUT_S
from orbitdock import logs
from orbitdock.codex.appserver import AppServerProcess
from orbitdock.config import CodexConfig

WAIT_S = 30.0
# "19:00:07 INFO    orbitdockd: orbitdockd 0.1.0 up  epoch=..."
HUMAN_UP = re.compile(r"^\d\d:\d\d:\d\d INFO +orbitdockd: orbitdockd \S+ up  epoch=\w+ ", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PtyDaemon:
    """orbitdockd with its stderr (and stdout) on a pseudo-terminal, read by a thread."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None):
        master, slave = pty.openpty()
        self.master = master
        self.text = ""
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors.daemon", "--no-watcher", *args], cwd=REPO,
            env=dict(os.environ, ORBITDOCK_HOME=str(home), **(env or {})),
            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.5)
                if ready:
                    chunk = os.read(self.master, 65536)
                    if not chunk:
                        return
                    with self._lock:
                        self.text += ANSI.sub("", chunk.decode("utf-8", "replace")
                                              ).replace("\r\n", "\n")
                elif self.proc.poll() is not None:
                    return
            except OSError:  # EIO once the child closed its end
                return

    def wait_for(self, pattern: re.Pattern[str], timeout: float = WAIT_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                match = pattern.search(self.text)
            if match:
                return match
            assert self.proc.poll() is None, f"orbitdockd exited:\n{self.text[-3000:]}"
            time.sleep(0.05)
        raise AssertionError(f"no {pattern.pattern!r} within {timeout}s:\n{self.text[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(STOP_TIMEOUT_S)
        self._reader.join(5)  # the last lines
        os.close(self.master)
        return code


@pytest.fixture
def base_dir() -> Iterator[Path]:
    # The demo writes a CODEX_HOME under the data dir, and codex refuses one under /tmp.
    yield from make_base_dir("logs")


def test_foreground_daemon_on_a_terminal_writes_readable_lines(tmp_path):
    daemon = PtyDaemon(tmp_path / "home")
    try:
        daemon.wait_for(HUMAN_UP)
    finally:
        assert daemon.stop() == 0
    assert not re.search(r'^\{"ts"', daemon.text, re.M), "JSON on a terminal"
    assert re.search(r"^\d\d:\d\d:\d\d INFO +orbitdockd: orbitdockd stopped(  exit_code=0)?$",
                     daemon.text, re.M)
    # The file still gets JSON lines, with the same extras.
    lines = (tmp_path / "home" / "logs" / "orbitdockd.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    up = next(e for e in entries if e["msg"].endswith(" up"))
    assert up["logger"] == "orbitdockd" and up["level"] == "info" and up["epoch"]


def test_log_format_json_on_a_terminal_and_text_in_a_pipe(tmp_path):
    daemon = PtyDaemon(tmp_path / "home", "--log-format", "json")
    try:
        match = daemon.wait_for(re.compile(r'^\{"ts".* up", .*$', re.M))
    finally:
        daemon.stop()
    assert json.loads(match.group(0))["logger"] == "orbitdockd"

    env = dict(os.environ, ORBITDOCK_HOME=str(tmp_path / "home2"))
    for args, human in (([], False), (["--log-format", "text"], True)):
        proc = subprocess.Popen([sys.executable, "-m", "actors.daemon", "--no-watcher", *args],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        first = ""
        try:
            first = proc.stderr.readline()  # blocks at most until the first log line
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=STOP_TIMEOUT_S)
        assert first.startswith("{") is not human, (args, first)


def test_config_key_chooses_the_stderr_format_and_a_bad_one_is_refused(tmp_path):
    daemon = PtyDaemon(tmp_path / "home", env={"ORBITDOCK_LOGGING__STDERR_FORMAT": "json"})
    try:
        daemon.wait_for(re.compile(r'^\{"ts".* up", ', re.M))
    finally:
        daemon.stop()
    bad = subprocess.run([sys.executable, "-m", "actors.daemon", "--no-watcher"], cwd=REPO,
                         env=dict(os.environ, ORBITDOCK_HOME=str(tmp_path / "home2"),
                                  ORBITDOCK_LOGGING__STDERR_FORMAT="pretty"),
                         capture_output=True, text=True, timeout=STOP_TIMEOUT_S)
    assert bad.returncode == 2  # a configuration the daemon refuses
    assert "unknown log format 'pretty'" in bad.stderr


def test_demo_hint_is_plain_to_see_on_a_terminal(base_dir):
    daemon = PtyDaemon(base_dir / "home", "--demo")
    try:
        match = daemon.wait_for(re.compile(
            r"^\d\d:\d\d:\d\d INFO +orbitdockd\.demo: demo: codex session (\S+) started\. "
            r"Follow it with `orbitdockctl watch (\S+)`", re.M), timeout=60)
    finally:
        daemon.stop()
    assert match.group(1) == match.group(2)


def test_log_file_is_rotated_by_size(tmp_path):
    log_file = tmp_path / "logs" / "orbitdockd.log"
    logs.setup("INFO", log_file, False, max_bytes=2000, backups=2)
    try:
        log = logging.getLogger("orbitdock.test")
        for i in range(200):
            log.info("line %d", i, extra={"session_id": "od-rot"})
    finally:
        logs.setup("INFO", None, False)  # closes the file handler
    names = sorted(p.name for p in log_file.parent.iterdir())
    assert names == ["orbitdockd.log", "orbitdockd.log.1", "orbitdockd.log.2"]
    kept = []
    for name in ("orbitdockd.log.2", "orbitdockd.log.1", "orbitdockd.log"):
        path = log_file.parent / name
        assert path.stat().st_size <= 2000
        kept += [json.loads(line)["msg"] for line in path.read_text().splitlines()]
    assert kept[-1] == "line 199"
    assert kept == [f"line {i}" for i in range(200 - len(kept), 200)]  # newest, in order


def test_human_line_shows_extras_and_tracebacks():
    entry = {"ts": 0.0, "time": "x", "level": "error", "logger": "orbitdockd.gateway",
             "thread": "t", "msg": "bad frame", "session_id": "od-1", "raw": "a b",
             "code": 3, "exc": "Traceback ...\nValueError: x"}
    line = logs.human_line(entry)
    first, rest = line.split("\n", 1)
    assert re.fullmatch(r"\d\d:\d\d:\d\d ERROR   orbitdockd\.gateway: bad frame  "
                        r'session_id=od-1  raw="a b"  code=3', first)
    assert rest == "Traceback ...\nValueError: x"
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", logs.human_line(entry, date=True))


def test_codex_stderr_lines_keep_their_level(caplog):
    script = (
        "import sys\n"
        "sys.stderr.write('2026-12-07T19:00:39.1Z ERROR codex_app_server: no bubblewrap\\n')\n"
        "sys.stderr.write('\\x1b[2m2026-12-07T19:00:39.2Z\\x1b[0m \\x1b[33m WARN\\x1b[0m "
        "codex_core: slow\\n')\n"
        "sys.stderr.write('2026-12-07T19:00:39.3Z  INFO codex_core: fine\\n')\n"
        "sys.stderr.write('2026-12-07T19:00:39.4Z DEBUG codex_core: detail\\n')\n"
        "sys.stderr.write(\"thread 'main' panicked at src/main.rs\\n\")\n"
        "sys.stderr.flush()\n")
    exited = threading.Event()
    proc = AppServerProcess(1, [sys.executable, "-c", script], env=dict(os.environ),
                            config=CodexConfig(), on_exit=lambda p, reason: exited.set())
    with caplog.at_level(logging.DEBUG, logger="orbitdock.codex.appserver"):
        proc.start()
        assert exited.wait(WAIT_S)
        proc.stop(time.monotonic() + 5)
    by_text = {r.getMessage().rsplit(": ", 1)[-1]: r.levelno for r in caplog.records
               if r.getMessage().startswith("codex[")}
    assert by_text == {"no bubblewrap": logging.ERROR, "slow": logging.WARNING,
                       "fine": logging.INFO, "detail": logging.DEBUG,
                       "thread 'main' panicked at src/main.rs": logging.INFO}
