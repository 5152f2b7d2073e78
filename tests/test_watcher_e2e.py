"""Passive Codex sessions end to end: rollout files -> the real daemon's watcher -> clients.

Each test runs a real ``orbitdockd`` with its watcher (``daemon_factory(watcher=True)``)
on a private CODEX_HOME and talks to it only through the ZeroMQ protocol, the client
library or ``orbitdockctl``. Rollouts come from the real ``codex exec --json`` against the
scripted model (tests marked ``codex``), from rollout lines the real codex 0.169 wrote
(``tests/fixtures/rollouts``), or, for the crash test, from a generated rollout in the
same shape. CODEX_HOME lives under the repository (codex refuses its helper binaries
under the temp dir) and is removed afterwards. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import apsw
import orjson
import pytest

from conftest import REPO, wait_until
from orbitdock.client import RemoteError, snapshot_bytes
from orbitdock.codex.home import clean_env, write_sim_codex_home
from orbitdock.codex.install import CodexNotFound, find_codex
from orbitdock.protocol import messages as m
from orbitdock.rollout.naming import name_from_first_prompt
from orbitdock.rollout.parser import parse_time
from orbitdock.sim.server import SimServer

try:
    CODEX: Path | None = find_codex()
    NO_CODEX = ""
except CodexNotFound as exc:  # pragma: no cover - bin/setup installs it
    CODEX, NO_CODEX = None, str(exc)


def needs_codex(test):
    """Mark a test as running the real codex; skip it cleanly when there is none."""
    return pytest.mark.codex(pytest.mark.skipif(CODEX is None, reason=NO_CODEX)(test))


FIXTURES = Path(__file__).parent / "fixtures" / "rollouts"
FIXTURE_THREAD = "01a212c9-8339-7d13-a385-a834fc49dc32"  # text_turn.jsonl, codex exec 0.169
CODEX_TIMEOUT_S = 60  # one `codex exec` against the sim takes about a second
SHOW_S = 10.0  # a line codex wrote shows in the daemon within this (inotify + coalesce)
CLI_TIMEOUT_S = 30


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture
def codex_home():
    home = REPO / ".orbitdock-test" / f"watch-{uuid.uuid4().hex[:8]}"
    (home / "sessions").mkdir(parents=True)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def sim():
    with SimServer() as server:
        server.start()
        yield server


@pytest.fixture
def workspace(tmp_path):
    """A git checkout on a named branch: the passive session must report that branch."""
    ws = tmp_path / "checkout"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "feature/passive-watch", str(ws)], check=True,
                   capture_output=True, timeout=CLI_TIMEOUT_S)
    return ws


@pytest.fixture
def start_daemon(daemon_factory, tmp_path, codex_home):
    """start_daemon(sim=None, **watcher_config): orbitdockd with its watcher on codex_home.

    Stopped here, before codex_home is removed: a running app-server would otherwise
    write into the directory again after it was deleted.
    """
    started = []

    def start(sim=None, **config):
        env = (write_sim_codex_home(codex_home, sim.url) if sim is not None
               else {"CODEX_HOME": str(codex_home)})
        env.update({f"ORBITDOCK_WATCHER__{k.upper()}": str(v) for k, v in config.items()})
        started.append(daemon_factory(home=tmp_path / "home", watcher=True, **env))
        return started[-1]

    yield start
    for d in started:
        d.close_clients()
        d.stop()


def codex_exec(codex_home, sim, cwd, *args) -> str:
    """Run ``codex exec --json`` like a user in a terminal; returns the thread id."""
    env = clean_env(None, write_sim_codex_home(codex_home, sim.url))
    proc = subprocess.run([str(CODEX), "exec", "--json", "--skip-git-repo-check", *args],
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=CODEX_TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout.splitlines()[0])["thread_id"]


def session(client, sid):
    """The session's state, or None while it does not exist (yet)."""
    try:
        return client.request(m.SubscribeSession(session_id=sid)).session
    except RemoteError as exc:
        if exc.code == "not_found":
            return None
        raise


def wait_session(client, sid, predicate=lambda st: True, timeout=SHOW_S):
    holder = {}

    def ok():
        holder["st"] = session(client, sid)
        return holder["st"] is not None and predicate(holder["st"])
    assert wait_until(ok, timeout, interval=0.05), holder.get("st")
    return holder["st"]


def watcher_status(client) -> dict:
    return client.request(m.RolloutsStatus()).report


def file_status(client, path) -> dict | None:
    return next((f for f in watcher_status(client)["files"] if f["path"] == str(path)), None)


def day_dir(codex_home, when=None) -> Path:
    day = codex_home / "sessions" / time.strftime("%Y/%m/%d", time.localtime(when))
    day.mkdir(parents=True, exist_ok=True)
    return day


def rollout_path(codex_home, thread_id, when=None) -> Path:
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(when))
    return day_dir(codex_home, when) / f"rollout-{stamp}-{thread_id}.jsonl"


def fixture_lines(name="text_turn.jsonl") -> list[bytes]:
    return (FIXTURES / name).read_bytes().splitlines(keepends=True)


def another_turn(lines: list[bytes], n: int) -> bytes:
    """text_turn's turn again with fresh ids and texts (codex appending turn ``n``)."""
    text = b"".join(lines[1:]).decode()
    for old, new in (("01a212c9-835e-7f31-a4ba-5a71fc41fb2a", f"turn-again-{n}"),
                     ("01a212c9-8391-7f60-a2fe-61388ac506a1", f"user-again-{n}"),
                     ('"msg_0"', f'"msg-again-{n}"'), ("Say hello", f"Say hello again {n}"),
                     ("Hello from the mock", f"Hello once more {n}")):
        text = text.replace(old, new)
    return text.encode()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def line_times(path: Path, item_type: str) -> list[float]:
    """Timestamps of a rollout's ``item_completed`` lines of one item type, in file order."""
    out = []
    for line in path.read_bytes().splitlines():
        obj = orjson.loads(line)
        payload = obj.get("payload") or {}
        if payload.get("type") == "item_completed" and payload["item"]["type"] == item_type:
            out.append(parse_time(obj["timestamp"]))
    return out


def ctl(home, *args):
    env = dict(os.environ, ORBITDOCK_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "orbitdock.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    assert proc.returncode == 0, f"orbitdockctl {args} -> {proc.returncode}: {proc.stderr}"
    return proc.stdout


# ------------------------------------------------------------------ real codex
@needs_codex
def test_terminal_codex_exec_session_appears_with_its_fields(start_daemon, codex_home, sim,
                                                             workspace):
    d = start_daemon(sim)
    client = d.client()
    sim.set_script([{"call": "exec_command", "args": {"cmd": "echo hi > out.txt", "login": False}},
                    {"text": "Wrote out.txt."}])
    prompt = ("  Please   write a small file\n\n named out.txt, then tell me   what you did "
              "in one short sentence  ")
    tid = codex_exec(codex_home, sim, workspace, prompt)

    st = wait_session(client, tid, lambda s: s.work_status == "reply")
    collapsed = " ".join(prompt.split())
    assert len(collapsed) > 72 and st.display_name == collapsed[:72] + "…"
    assert st.display_name == name_from_first_prompt(prompt)
    assert (st.id, st.thread_id, st.provider, st.integration_mode) == (tid, tid, "codex", "passive")
    assert (st.project_path, st.project_name) == (str(workspace), workspace.name)
    assert st.git_branch == "feature/passive-watch" and st.model == "gpt-5.5"
    assert (st.status, st.current_turn_id, st.turn_count) == ("active", None, 1)
    assert (st.prompt_count, st.first_prompt) == (1, prompt)
    assert (st.tool_count, st.last_tool) == (1, "Shell")
    assert [x.type for x in st.messages] == ["user", "tool", "assistant"]
    user, tool, reply = st.messages
    assert (tool.tool_name, tool.tool_input, tool.is_in_progress) == \
        ("Shell", "echo hi > out.txt", False)
    assert reply.content == "Wrote out.txt." and st.last_message == "Wrote out.txt."
    # Times are when codex wrote the lines, not when orbitdock read them.
    rollout = Path(st.transcript_path)
    assert rollout.name.endswith(f"{tid}.jsonl") and codex_home in rollout.parents
    assert user.timestamp == pytest.approx(line_times(rollout, "UserMessage")[0], abs=1e-3)
    assert reply.timestamp == pytest.approx(line_times(rollout, "AgentMessage")[0], abs=1e-3)
    listed = client.request(m.SubscribeList()).sessions
    assert [s.id for s in listed] == [tid]
    # A name codex gives the thread (thread/name/set, /rename: session_index.jsonl) wins.
    append(codex_home / "session_index.jsonl",
           orjson.dumps({"id": tid, "thread_name": "Named in codex"}) + b"\n")
    wait_session(client, tid, lambda s: s.display_name == "Named in codex")


@needs_codex
def test_a_resumed_turn_streams_live_to_a_subscriber(start_daemon, codex_home, sim, workspace):
    d = start_daemon(sim)
    client = d.client()
    sim.set_script([{"text": "first answer"}])
    tid = codex_exec(codex_home, sim, workspace, "first question")
    wait_session(client, tid, lambda s: s.work_status == "reply")
    sub = d.subscription()
    sub.watch_session(tid)
    assert sub.wait_synced(SHOW_S)
    events_before = sub.stats.events

    # The model answers the second turn only when released: while codex still runs,
    # the subscriber must already see the prompt and the tool, i.e. live, not afterwards.
    sim.set_script([{"call": "exec_command", "args": {"cmd": "echo two", "login": False}},
                    {"text": "second answer", "hold": CODEX_TIMEOUT_S}])
    env = clean_env(None, write_sim_codex_home(codex_home, sim.url))
    proc = subprocess.Popen([str(CODEX), "exec", "--json", "--skip-git-repo-check", "resume", tid,
                             "second question"], cwd=workspace, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def mid_turn():
            st = sub.state(tid)
            return (st is not None and st.work_status == "working" and st.tool_count == 1
                    and st.messages[-1].type == "tool" and not st.messages[-1].is_in_progress)
        assert wait_until(mid_turn, CODEX_TIMEOUT_S, poll=sub.poll), sub.state(tid)
        assert proc.poll() is None  # codex is still inside the turn
        assert [x.content for x in sub.state(tid).messages if x.type == "user"] == \
            ["first question", "second question"]
        assert wait_until(lambda: sim.state()["held"] >= 1, CODEX_TIMEOUT_S)
        sim.release()
        assert proc.wait(CODEX_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(CODEX_TIMEOUT_S)
    assert wait_until(lambda: sub.state(tid).work_status == "reply", SHOW_S, poll=sub.poll)
    mirror = sub.state(tid)
    assert mirror.messages[-1].content == "second answer" and mirror.prompt_count == 2
    assert sub.stats.events - events_before >= 6  # message by message, as events
    assert (sub.stats.gaps, sub.stats.resyncs) == (0, 0)
    assert wait_until(lambda: snapshot_bytes(sub.state(tid)) == snapshot_bytes(
        session(client, tid)), SHOW_S, poll=sub.poll)  # the mirror is exact


@needs_codex
def test_a_direct_sessions_own_rollout_creates_no_second_session(start_daemon, sim, workspace):
    d = start_daemon(sim)
    client = d.client(timeout=CODEX_TIMEOUT_S)
    sid = client.request(m.CreateSession(
        provider="codex", cwd=str(workspace), model="gpt-5.5", approval_policy="never",
        sandbox_mode="workspace-write")).session.id
    sim.set_script([{"text": "direct answer"}])
    client.request(m.SendMessage(session_id=sid, content="hello from orbitdock"))
    st = wait_session(client, sid, lambda s: s.work_status == "reply", timeout=CODEX_TIMEOUT_S)
    thread = st.thread_id
    assert thread and thread != sid

    def rollout_read_to_its_end():
        f = next((f for f in watcher_status(client)["files"] if f["session_id"] == thread), None)
        return f is not None and f["lag"] == 0 and f["offset"] > 0 and f
    assert wait_until(rollout_read_to_its_end, SHOW_S, interval=0.05), watcher_status(client)
    assert rollout_read_to_its_end()["own"] is True  # known as ours from its originator
    assert session(client, thread) is None  # no shadow session under the thread id
    assert [s.id for s in client.request(m.SubscribeList()).sessions] == [sid]
    st = session(client, sid)
    assert [(x.type, x.content) for x in st.messages] == [
        ("user", "hello from orbitdock"), ("assistant", "direct answer")]
    assert watcher_status(client)["sessions"] == 0


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


def test_a_reverted_thread_continues_in_its_new_file_without_duplicates(start_daemon,
                                                                        codex_home):
    """thread/revert makes codex go on in ``rollout-…-<thread>_<uuid>.jsonl`` (same thread
    id, a new session_meta, the ordinals continuing): the same session, every message
    once, and both files' offsets kept across a daemon restart."""
    tid = "01a212ca-fc7f-71a1-aa6f-e4940a55f50b"  # app_server_turns*.jsonl, codex 0.169

    def as_terminal_client(name: str) -> bytes:  # recorded by orbitdock's own client
        return (FIXTURES / name).read_bytes().replace(b'"originator":"orbitdock"',
                                                      b'"originator":"codex_vscode"')

    original = rollout_path(codex_home, tid)
    reverted = original.with_name(f"{original.stem}_{uuid.uuid4()}.jsonl")
    before = ["First prompt please", "Run a command", "Ask me a question", "slow one",
              "this one fails"]

    def prompts(st) -> list[str]:
        return [x.content for x in st.messages if x.type == "user"]

    d = start_daemon()
    client = d.client()
    append(original, as_terminal_client("app_server_turns.jsonl"))
    wait_session(client, tid, lambda s: prompts(s) == before)
    append(reverted, as_terminal_client("app_server_turns_revert.jsonl"))
    st = wait_session(client, tid, lambda s: "post revert" in [x.content for x in s.messages])
    assert prompts(st) == before + ["after revert"] and st.prompt_count == 6
    assert [s.id for s in client.request(m.SubscribeList()).sessions] == [tid]
    assert wait_until(lambda: all(file_status(client, p)["lag"] == 0
                                  for p in (original, reverted)), SHOW_S)
    shown = snapshot_bytes(session(client, tid))

    d.close_clients()
    d.stop()
    client = start_daemon().client()
    assert wait_until(lambda: all((file_status(client, p) or {}).get("lag") == 0
                                  for p in (original, reverted)), SHOW_S)
    assert snapshot_bytes(session(client, tid)) == shown  # nothing read twice
