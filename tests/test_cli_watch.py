"""`watch` reads like a live view: timestamped lines, one per meaningful change; a table
redrawn in place on a terminal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

from cli_env import STATE_TIMEOUT_S, create_scripted, ctl, wait_for_state
from conftest import REPO
from test_cli_approvals import on_a_terminal

STAMP = re.compile(r"^\d\d:\d\d:\d\d ")


def start_watch(home, *args) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "orbitdock.cli", "watch", *args], cwd=REPO,
                            env=dict(os.environ, ORBITDOCK_HOME=str(home)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # the opening line: the watch is live from here on
    assert first, proc.stderr.read()
    return proc, first


class Reader:
    """Collects a watch's lines on a thread, so a test can wait for one then stop it."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop_when(self, predicate, timeout: float = STATE_TIMEOUT_S) -> list[str]:
        deadline = time.monotonic() + timeout
        while not predicate([STAMP.sub("", line) for line in self.lines]):
            assert time.monotonic() < deadline, self.lines
            time.sleep(0.05)
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C: the normal way out, exit 0
        assert self.proc.wait(30) == 0, self.proc.stderr.read()
        self.thread.join(30)
        return self.lines


def test_one_session_is_one_line_per_meaningful_change(daemon):
    home = daemon.home
    reply = "line one\nline two\nline three"
    sid = create_scripted(daemon, name="watched", script=[
        {"text": reply, "chunk": 2}, {"approval": "exec", "command": "make test"}])
    proc, first = start_watch(home, sid)
    reader = Reader(proc)
    assert STAMP.match(first) and "watched" in first and "snapshot rev" in first

    ctl(home, "session", "send", sid, "talk")
    wait_for_state(home, sid, lambda s: s["work_status"] == "reply")
    ctl(home, "session", "send", sid, "run it")
    [pending] = wait_for_state(home, sid, lambda s: len(s["approvals"]) == 1)["approvals"]
    ctl(home, "approve", pending["id"])
    lines = reader.stop_when(lambda texts: texts.count("work working -> reply") == 2)

    assert all(STAMP.match(line) for line in lines), lines
    assert not any("{" in line for line in lines), lines  # no raw delta dicts
    texts = [STAMP.sub("", line) for line in lines]
    assert all(a != b for a, b in zip(texts, texts[1:])), texts  # no repeated rows
    # 16 streamed pieces, one line: the message once complete, cut to its first line
    assert texts.count("assistant: line one (+2 lines)") == 1, texts
    assert not any("line two" in t for t in texts)
    assert "user: talk" in texts and "turn started" in texts and "turn ended" in texts
    assert "work waiting -> working" in texts and "work working -> reply" in texts
    assert f"APPROVAL {pending['id']} exec: make test" in texts
    assert f"approval {pending['id']} -> accept" in texts
    assert "tool Shell: make test" in texts and "tool Shell done: ran" in texts
    assert "\x1b[" not in "".join(lines)  # not a terminal: no colors


def test_the_list_prints_a_row_when_it_changes(daemon):
    home = daemon.home
    sid = create_scripted(daemon, name="listed")
    proc, first = start_watch(home)
    assert first.strip() == "1 sessions"
    reader = Reader(proc)
    ctl(home, "session", "send", sid, "hello")
    done = f"* {sid} now active/reply  listed"
    lines = reader.stop_when(lambda texts: done in texts)
    assert all(STAMP.match(line) for line in lines), lines
    rows = [STAMP.sub("", line) for line in lines if sid in line]
    assert rows[0] == f"* {sid} new active/waiting  listed", lines
    assert rows[-1] == done
    assert len(rows) == len(set(rows))  # each row shown once per change


def test_the_list_is_a_table_redrawn_in_place_on_a_terminal(daemon):
    home = daemon.home
    first = create_scripted(daemon, name="left")
    second = create_scripted(daemon, name="right")
    screen = on_a_terminal(home, "watch", "--duration", "4", env={"COLUMNS": "160"})
    assert first in screen and second in screen and "orbitdock sessions" in screen
    assert screen.count("orbitdock sessions") > 1  # drawn more than once ...
    assert "\x1b[2K" in screen  # ... over itself (erase line), not below


def test_one_session_is_colored_on_a_terminal(daemon):
    home = daemon.home
    sid = create_scripted(daemon, script=[{"approval": "exec", "command": "make test"}])
    ctl(home, "session", "send", sid, "go")
    wait_for_state(home, sid, lambda s: len(s["approvals"]) == 1)
    screen = on_a_terminal(home, "watch", sid, "--duration", "0.5")
    assert "\x1b[33m" in screen and "APPROVAL" in screen  # the pending approval, in yellow
    assert STAMP.match(re.sub(r"\x1b\[[0-9;]*m", "", screen))
