"""The watcher against hostile and interrupted input, end to end through the real daemon:
a kill -9 in mid-import, damaged and truncated rollouts, the inactivity timeout, and
``orbitdockctl rollouts``. Rollouts are lines the real codex 0.169 wrote
(``tests/fixtures/rollouts``) or a generated rollout of the same shape; the shared
fixtures are in ``watcher_env.py``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import apsw
import orjson
import pytest

from conftest import wait_until
from orbitdock.protocol import messages as m
from watcher_env import (  # noqa: F401  (fixtures are found by name)
    FIXTURE_THREAD,
    SHOW_S,
    another_turn,
    append,
    codex_home,
    ctl,
    file_status,
    fixture_lines,
    rollout_path,
    session,
    start_daemon,
    wait_session,
    watcher_status,
)


# ------------------------------------------------------------------ a crash in mid-import
# A generated turn is 7 lines; with 4 lines before the first turn, batches of 7 lines
# always end just after a turn's function_call, so whichever batch the kill interrupts,
# the import resumes between a tool's start and its completion.
TURN_LINES, PREFIX_LINES = 7, 4


def generated_rollout(thread_id: str, cwd: str, turns: int, start: float):
    """A 0.169-shaped rollout of ``turns`` turns (prompt, shell call, reply each).

    Returns ``(bytes, rows, ends)``: ``rows`` are the message rows the file must become,
    ``(type, content, timestamp)`` in order, and ``ends`` maps each line's end offset
    to how many of those rows the lines up to it produce.
    """
    def line(ordinal, ts, ltype, payload):
        stamp = datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
        return orjson.dumps({"timestamp": stamp.replace("+00:00", "Z"), "ordinal": ordinal,
                             "type": ltype, "payload": payload}) + b"\n"

    out, rows, ends = bytearray(), [], []
    ordinal = 0

    def add(ts, ltype, payload, row=None):
        nonlocal ordinal
        out.extend(line(ordinal, ts, ltype, payload))
        ordinal += 1
        if row is not None:
            rows.append((*row, ts))
        ends.append((len(out), len(rows)))

    add(start, "session_meta", {"id": thread_id, "cwd": cwd, "originator": "codex_exec",
                                "cli_version": "0.169.0", "source": "exec"})
    for _ in range(PREFIX_LINES - 1):
        add(start, "world_state", {"full": True, "state": {}})
    for i in range(turns):
        t0, turn = start + 10 * i + 1, f"turn-{i}"
        add(t0, "event_msg", {"type": "task_started", "turn_id": turn})
        add(t0 + 0.1, "event_msg", {"type": "item_completed", "turn_id": turn, "item": {
            "type": "UserMessage", "id": f"user-{i}",
            "content": [{"type": "text", "text": f"prompt {i}"}]}}, ("user", f"prompt {i}"))
        add(t0 + 0.2, "response_item", {
            "type": "function_call", "name": "exec_command", "call_id": f"call-{i}",
            "arguments": orjson.dumps({"cmd": f"echo {i}", "login": False}).decode()},
            ("tool", "Shell"))
        add(t0 + 0.3, "event_msg", {"type": "item_completed", "turn_id": turn, "item": {
            "type": "CommandExecution", "id": f"call-{i}", "command": ["/bin/bash", "-c",
                                                                       f"echo {i}"],
            "status": "completed", "aggregated_output": f"{i}\n", "exit_code": 0}})
        add(t0 + 0.4, "response_item", {"type": "function_call_output", "call_id": f"call-{i}",
                                        "output": f"Process exited with code 0\nOutput:\n{i}\n"})
        add(t0 + 0.5, "event_msg", {"type": "item_completed", "turn_id": turn, "item": {
            "type": "AgentMessage", "id": f"reply-{i}",
            "content": [{"type": "Text", "text": f"reply {i}"}]}}, ("assistant", f"reply {i}"))
        add(t0 + 0.6, "event_msg", {"type": "task_complete", "turn_id": turn})
    return bytes(out), rows, ends


def db_messages(db_path: Path, sid: str) -> list[tuple]:
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("SELECT seq, type, content, tool_name, tool_output, timestamp "
                            "FROM messages WHERE session_id=? ORDER BY seq", (sid,)).fetchall()
    finally:
        conn.close()


def db_offset(db_path: Path, path: Path) -> int | None:
    if not db_path.exists():
        return None
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.set_busy_timeout(1000)
        rows = conn.execute("SELECT offset FROM rollout_offsets WHERE path=?",
                            (str(path),)).fetchall()
        return rows[0][0] if rows else None
    except apsw.Error:
        return None  # the schema is not there yet
    finally:
        conn.close()


def test_kill9_mid_import_then_restart_imports_every_message_exactly_once(
        start_daemon, tmp_path, codex_home):
    tid = f"01a2{uuid.uuid4().hex[4:8]}-1111-7222-8333-{uuid.uuid4().hex[:12]}"
    old = time.time() - 3 * 86_400
    data, rows, ends = generated_rollout(tid, str(tmp_path), turns=1500, start=old)
    path = rollout_path(codex_home, tid, old)
    path.write_bytes(data)
    os.utime(path, (old, old))  # older than follow_recent_minutes: imported on demand only
    # One turn per batch: many commit points, each one inside a tool call (see above).
    d = start_daemon(batch_lines=TURN_LINES)
    db = d.home / "orbitdock.db"
    client = d.client()
    assert watcher_status(client)["files_unknown"] == 1
    report = client.request(m.ImportRollouts()).report
    assert (report["queued_files"], report["queued_bytes"]) == (1, len(data))
    assert wait_until(lambda: len(data) // 10 < (db_offset(db, path) or 0) < len(data) // 2,
                      30, interval=0.01), "the import ran past the window for the kill"
    d.kill9()

    # Exactly the rows of the lines before the committed offset: both in one transaction.
    committed = db_offset(db, path)
    expected_now = dict(ends)[committed]  # (a KeyError: an offset inside a line)
    got = db_messages(db, tid)
    assert 0 < committed < len(data) and len(got) == expected_now
    assert [(t, c) for _, t, c, *_ in got] == [(t, c) for t, c, _ in rows[:expected_now]]
    assert [r[0] for r in got] == list(range(1, len(got) + 1))
    assert got[-1][1:5] == ("tool", "Shell", "Shell", None)  # started, not completed

    d.start()  # same home: the session is restored, the watcher resumes at the offset
    client = d.client()
    # Resumed on start from the committed offset; importing again has nothing left to queue.
    assert client.request(m.ImportRollouts()).report["queued_files"] == 0
    assert wait_until(lambda: (file_status(client, path) or {}).get("lag") == 0, 60,
                      interval=0.1), file_status(client, path)
    assert wait_until(lambda: session(client, tid).total_message_count == len(rows), 30,
                      interval=0.1), session(client, tid).total_message_count
    st = session(client, tid)
    assert (st.prompt_count, st.tool_count) == (1500, 1500)
    d.stop()

    got = db_messages(db, tid)
    assert [r[0] for r in got] == list(range(1, len(rows) + 1))  # no gap, no duplicate
    assert [(t, c) for _, t, c, *_ in got] == [(t, c) for t, c, _ in rows]
    # Every shell call is one row with its output, including one started before the kill
    # and completed after the restart (the restored session has no item ids in memory).
    outputs = [out for _, t, _, _, out, _ in got if t == "tool"]
    assert outputs == [f"{i}\n" for i in range(1500)]
    # Imported history keeps the times codex wrote it, not the time of the import.
    assert [ts for *_, ts in got] == pytest.approx([ts for *_, ts in rows], abs=1e-3)


# ------------------------------------------------------------------ damaged files, timeout, CLI
def test_garbage_unknown_types_partial_line_and_truncation(start_daemon, codex_home):
    d = start_daemon()
    client = d.client()
    lines = fixture_lines()
    path = rollout_path(codex_home, FIXTURE_THREAD)
    tail = lines[13]  # task_complete
    append(path, b"".join(lines[:9]) + b"this is not json\n"
           + b'{"timestamp":"2026-11-25T12:58:46.050Z","type":"future_line","payload":{}}\n'
           + b'{"type":"event_msg","payload":{"type":"future_event","x":1}}\n'
           + b"\n" + b"".join(lines[9:13]) + tail[:40])
    st = wait_session(client, FIXTURE_THREAD, lambda s: len(s.messages) == 2)
    assert [(x.type, x.content) for x in st.messages] == [
        ("user", "Say hello"), ("assistant", "Hello from the mock")]
    assert st.work_status == "working"  # task_complete is still half written
    report = watcher_status(client)
    assert report["malformed_lines"] == 1 and report["errors"] == 0
    assert report["unknown_types"] == {"future_line": 1, "event_msg:future_event": 1}
    assert file_status(client, path)["lag"] == 40  # the partial line waits for its newline

    append(path, tail[40:])
    wait_session(client, FIXTURE_THREAD, lambda s: s.work_status == "reply")
    assert file_status(client, path)["lag"] == 0

    # Truncated below what was read: read again from 0, keep the session, follow new lines.
    with open(path, "r+b") as fh:
        fh.truncate(len(lines[0]))
    assert wait_until(lambda: watcher_status(client)["counters"].get("resets") == 1, SHOW_S)
    assert wait_until(lambda: file_status(client, path)["lag"] == 0, SHOW_S)
    append(path, another_turn(lines, 1))
    st = wait_session(client, FIXTURE_THREAD, lambda s: len(s.messages) == 4
                      and s.work_status == "reply")
    assert [x.content for x in st.messages] == [
        "Say hello", "Hello from the mock", "Say hello again 1", "Hello once more 1"]
    assert [s.id for s in client.request(m.SubscribeList()).sessions] == [FIXTURE_THREAD]
    assert watcher_status(client)["errors"] == 0


def test_inactivity_timeout_ends_the_session_and_a_new_line_reactivates_it(start_daemon,
                                                                           codex_home):
    d = start_daemon(inactivity_timeout_s=1.0)
    client = d.client()
    lines = fixture_lines()
    path = rollout_path(codex_home, FIXTURE_THREAD)
    written = time.monotonic()
    append(path, b"".join(lines))
    wait_session(client, FIXTURE_THREAD, lambda s: s.work_status == "reply")
    st = wait_session(client, FIXTURE_THREAD, lambda s: s.status == "ended", timeout=SHOW_S)
    assert st.end_reason == "timeout" and 0.9 < time.monotonic() - written < 5

    append(path, another_turn(lines, 1))
    st = wait_session(client, FIXTURE_THREAD, lambda s: s.status == "active")
    assert st.end_reason is None and st.ended_at is None
    st = wait_session(client, FIXTURE_THREAD, lambda s: s.work_status == "reply"
                      and len(s.messages) == 4)
    assert st.prompt_count == 2
    wait_session(client, FIXTURE_THREAD, lambda s: s.status == "ended")  # the clock restarted


def test_rollouts_cli_status_import_since_and_session_show(start_daemon, codex_home):
    lines = fixture_lines()
    recent_tid, older_tid = FIXTURE_THREAD, "01a212c9-9ba1-7b71-b548-9a68d68a9904"
    hours_ago, days_ago = time.time() - 3 * 3600, time.time() - 3 * 86_400
    recent = rollout_path(codex_home, recent_tid, hours_ago)
    recent.write_bytes(b"".join(lines))
    older = rollout_path(codex_home, older_tid, days_ago)
    older.write_bytes(b"".join(fixture_lines("exec_patch_question.jsonl")))
    os.utime(recent, (hours_ago, hours_ago))
    os.utime(older, (days_ago, days_ago))
    d = start_daemon()

    out = ctl(d.home, "rollouts", "status")
    assert f"CODEX_HOME {codex_home}" in out
    assert "files followed 0" in out and "older, not imported 2" in out

    out = ctl(d.home, "rollouts", "import", "--since", "1d")
    assert "importing 1 files" in out and f"imported 1 files ({recent.stat().st_size} bytes)" in out
    shown = ctl(d.home, "session", "show", recent_tid)
    assert recent_tid in shown and "Say hello" in shown and "Hello from the mock" in shown

    out = ctl(d.home, "rollouts", "status")
    assert "files followed 1" in out and "older, not imported 1" in out
    assert f"{recent_tid}  {recent}" in out and "lag        0" in out

    report = json.loads(ctl(d.home, "--json", "rollouts", "import"))
    assert (report["queued_files"], report["remaining_unknown"]) == (1, 0)
    client = d.client()
    wait_session(client, older_tid, lambda s: s.turn_count == 1 and s.current_turn_id is None)
    assert "nothing to import (0 older files left)" in ctl(d.home, "rollouts", "import")
    status = json.loads(ctl(d.home, "--json", "rollouts", "status"))
    assert (status["files_followed"], status["files_unknown"], status["lag_bytes"]) == (2, 0, 0)
    assert {f["session_id"] for f in status["files"]} == {recent_tid, older_tid}
