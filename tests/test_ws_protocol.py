"""orbitdock-ws end to end: real WebSocket clients, a real bridge process, a real daemon."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from orbitdock.protocol import messages as m
from orbitdock.ws import outbound
from codex_daemon_env import (  # noqa: F401  (codex_daemon: a fixture, found by name)
    CODEX_MARKS,
    TURN_TIMEOUT_S,
    codex_daemon,
    create,
)
from conftest import wait_until
from ws_env import BridgeProcess, UpstreamClient, free_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def env(daemon_factory, tmp_path):
    daemon = daemon_factory()
    bridge = BridgeProcess(daemon.home).start()
    clients: list[UpstreamClient] = []

    def client(**kwargs) -> UpstreamClient:
        c = UpstreamClient(bridge.ws_url, **kwargs)
        clients.append(c)
        return c

    yield daemon, bridge, client
    for c in clients:
        try:
            c.close()
        except Exception:
            pass
    bridge.stop()


def _create(daemon, **fields) -> str:
    reply = daemon.client().request(m.CreateSession(provider="scripted", cwd="/work/app",
                                                    **fields))
    return reply.session.id


def _daemon_view(daemon, sid: str) -> dict:
    """The daemon's own snapshot, in upstream shape."""
    snap = daemon.client().request(m.SubscribeSession(session_id=sid))
    return outbound.session_state(snap.session)


def _turn_over(client: UpstreamClient, sid: str, turns: int):
    """A frame predicate: the client's copy shows ``turns`` turns, the last one over."""
    def done(frame: dict) -> bool:
        state = client.sessions.get(sid)
        return state is not None and state["turn_count"] >= turns and (
            state["current_turn_id"] is None and state["work_status"] in ("reply", "waiting"))
    return done


def _wait_turn(client: UpstreamClient, sid: str, turns: int, timeout: float = 30.0) -> None:
    """Until the client's copy shows the turn over (it may already: its last frames can
    come before a reply the test waited for)."""
    done = _turn_over(client, sid, turns)
    if not done({}):
        client.recv_until(done, timeout=timeout)


def _settled_equal(client: UpstreamClient, daemon, sid: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        client.drain(0.3)
        want = _daemon_view(daemon, sid)
        if client.sessions[sid] == want or time.monotonic() > deadline:
            break
    have = client.sessions[sid]
    diff = {k: (have.get(k), want.get(k)) for k in set(have) | set(want)
            if have.get(k) != want.get(k)}
    assert not diff, f"client copy differs from the daemon's snapshot: {diff}"


def test_server_info_list_and_session_subscription(env):
    daemon, bridge, client = env
    first = _create(daemon, name="first")
    c = client()
    assert c.info["is_primary"] is True and c.info["epoch"]
    c.send(type="subscribe_list")
    listed = c.recv_until(lambda f: f["type"] == "sessions_list")
    assert [s["id"] for s in listed["sessions"]] == [first]
    assert listed["sessions"][0]["custom_name"] == "first"
    second = _create(daemon)
    c.recv_until(lambda f: f["type"] == "session_created" and f["session"]["id"] == second)
    c.send(type="subscribe_session", session_id=second)
    snap = c.recv_until(lambda f: f["type"] == "session_snapshot")
    assert snap["session"]["id"] == second and snap["session"]["status"] == "active"
    c.send(type="subscribe_session", session_id="no-such-session")
    err = c.recv_until(lambda f: f["type"] == "error")
    assert err["code"] == "not_found" and err["session_id"] == "no-such-session"


def test_delta_stream_applied_client_side_equals_the_daemons_snapshot(env):
    daemon, bridge, client = env
    sid = _create(daemon)
    early = client()
    early.send(type="subscribe_session", session_id=sid)
    early.recv_until(lambda f: f["type"] == "session_snapshot")
    early.send(type="send_message", session_id=sid, content="/burst 200 12")
    late = client()  # joins mid-stream
    late.send(type="subscribe_session", session_id=sid)
    _wait_turn(early, sid, 1, timeout=60)
    early.send(type="send_message", session_id=sid, content="hello there, general")
    _wait_turn(early, sid, 2, timeout=60)
    for c in (early, late):
        _settled_equal(c, daemon, sid)
    types = {f["type"] for f in early.frames}
    assert {"message_appended", "message_updated", "session_delta"} <= types
    texts = [x["content"] for x in early.sessions[sid]["messages"]]
    assert "You said: hello there, general" in texts


def test_reconnect_with_since_revision_after_the_bridge_restarts(env):
    daemon, bridge, client = env
    sid = _create(daemon)
    c = client()
    c.send(type="subscribe_session", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_snapshot")
    c.send(type="send_message", session_id=sid, content="one")
    _wait_turn(c, sid, 1)
    c.drain(0.3)
    kept_copy = c.sessions[sid]
    epoch = c.info["epoch"]

    # 1. the bridge restarts while the session goes on: one snapshot, no gap, no duplicate
    bridge.stop()
    daemon.client().request(m.SendMessage(session_id=sid, content="two while away"))
    assert wait_until(lambda: (lambda v: v["turn_count"] == 2 and v["current_turn_id"] is None)(
        _daemon_view(daemon, sid)), 10)
    bridge.start()
    again = client()
    again.sessions[sid] = kept_copy  # what the app kept
    again.send(type="subscribe_session", session_id=sid, since_revision=kept_copy["revision"],
               since_epoch=epoch)
    snap = again.recv_until(lambda f: f["type"] == "session_snapshot")
    assert snap["session"]["revision"] > kept_copy["revision"]
    again.send(type="send_message", session_id=sid, content="three")
    _wait_turn(again, sid, 3)
    _settled_equal(again, daemon, sid)
    revisions = [f["revision"] for f in again.frames
                 if f.get("session_id") == sid and "revision" in f]
    assert revisions == sorted(revisions) and revisions[0] == snap["session"]["revision"] + 1
    ids = [x["id"] for x in again.sessions[sid]["messages"]]
    assert len(ids) == len(set(ids))
    assert [x["content"] for x in again.sessions[sid]["messages"] if x["message_type"] == "user"] \
        == ["one", "two while away", "three"]

    # 2. nothing happened while away: no snapshot at all, the stream just goes on
    kept = again.sessions[sid]
    kept_revision = kept["revision"]
    again.close()
    quiet = client()
    quiet.sessions[sid] = kept
    quiet.send(type="subscribe_session", session_id=sid, since_revision=kept_revision,
               since_epoch=epoch)
    quiet.drain(2.0)  # the bridge's new mirror syncs at that revision: nothing to send
    quiet.send(type="send_message", session_id=sid, content="four")
    _wait_turn(quiet, sid, 4)
    assert not [f for f in quiet.frames if f["type"] == "session_snapshot"]
    first = next(f for f in quiet.frames if f.get("session_id") == sid and "revision" in f)
    assert first["revision"] == kept_revision + 1
    _settled_equal(quiet, daemon, sid)


def test_approvals_and_questions_decided_over_websocket(env):
    daemon, bridge, client = env
    sid = _create(daemon)
    c = client()
    c.send(type="subscribe_session", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_snapshot")
    c.send(type="send_message", session_id=sid, content="/approve rm -rf build")
    asked = c.recv_until(lambda f: f["type"] == "approval_requested")
    request = asked["request"]
    assert request["type"] == "exec" and request["command"] == "rm -rf build"
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("pending_approval_id") == request["id"])
    c.send(type="approve_tool", session_id=sid, request_id=request["id"], decision="approved")
    result = c.recv_until(lambda f: f["type"] == "approval_decision_result")
    assert result["outcome"] == "applied" and result["request_id"] == request["id"]
    _wait_turn(c, sid, 1)
    c.send(type="approve_tool", session_id=sid, request_id=request["id"], decision="denied")
    stale = c.recv_until(lambda f: f["type"] == "approval_decision_result")
    assert stale["outcome"] == "stale"

    c.send(type="send_message", session_id=sid, content="/ask Deploy now?")
    question = c.recv_until(lambda f: f["type"] == "approval_requested")["request"]
    assert question["type"] == "question" and question["question"] == "Deploy now?"
    c.send(type="answer_question", session_id=sid, request_id=question["id"], answer="yes")
    assert c.recv_until(lambda f: f["type"] == "approval_decision_result")["outcome"] \
        == "applied"
    _wait_turn(c, sid, 2)
    _settled_equal(c, daemon, sid)
    assert c.sessions[sid]["pending_approval"] is None


def test_session_commands_over_websocket(env):
    daemon, bridge, client = env
    c = client()
    c.send(type="subscribe_list")
    c.recv_until(lambda f: f["type"] == "sessions_list")
    c.send(type="create_session", provider="scripted", cwd="/work/ws")
    snap = c.recv_until(lambda f: f["type"] == "session_snapshot")
    sid = snap["session"]["id"]
    c.send(type="rename_session", session_id=sid, name="renamed over ws")
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("custom_name") == "renamed over ws")
    c.send(type="update_session_config", session_id=sid, approval_policy="never")
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("approval_policy") == "never")
    c.send(type="send_message", session_id=sid, content="/hold")
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("work_status") == "working")
    c.send(type="steer_turn", session_id=sid, content="and also this")
    c.send(type="interrupt_session", session_id=sid)
    _wait_turn(c, sid, 1)
    c.send(type="send_message", session_id=sid, content="hi", model="scripted-2")
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("model") == "scripted-2")
    _wait_turn(c, sid, 2)
    c.send(type="end_session", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_ended" and f["session_id"] == sid)
    c.send(type="resume_session", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("status") == "active")
    c.send(type="interrupt_session", session_id=sid)  # nothing runs
    err = c.recv_until(lambda f: f["type"] == "error")
    assert err["code"] == "interrupt_failed" and err["session_id"] == sid
    c.send(type="send_message", session_id="no-such", content="hello")
    assert c.recv_until(lambda f: f["type"] == "error")["code"] == "not_found"
    c.send(type="list_models")
    assert c.recv_until(lambda f: f["type"] in ("models_list", "error"))["type"] in (
        "models_list", "error")  # no codex on this daemon: an error, never silence
    _settled_equal(c, daemon, sid)


def test_bad_input_is_refused_with_the_right_error(env):
    daemon, bridge, client = env
    c = client()
    for text, code in (("{oops", "parse_error"), ('{"type":"make_coffee"}', "parse_error"),
                       ('{"type":"send_message"}', "parse_error"),
                       ('{"type":"takeover_session","session_id":"x"}', "unsupported"),
                       ('{"type":"fork_session","source_session_id":"x"}', "not_found"),
                       ('{"type":"create_session","provider":"codex","cwd":"/w",'
                        '"effort":"high"}', "unsupported")):
        c.ws.send(text)
        err = c.recv_until(lambda f: f["type"] == "error")
        assert err["code"] == code, (text, err)
        assert "message" in err and "session_id" in err
    c.ws.send(json.dumps({"type": "send_message", "session_id": "x",
                          "content": "y" * (1 << 20)}))
    assert c.recv_until(lambda f: f["type"] == "error")["code"] == "too_large"
    c.send(type="subscribe_list")  # the connection is still usable
    c.recv_until(lambda f: f["type"] == "sessions_list")
    c.ws.send("z" * (5 << 20))  # beyond ws.hard_frame_bytes: the connection is closed
    with pytest.raises(ConnectionClosed) as info:
        c.recv(5)
    assert info.value.rcvd.code == 1009


def test_foreign_origin_is_refused(env):
    daemon, bridge, client = env
    with pytest.raises(InvalidStatus) as info:
        connect(bridge.ws_url, origin="http://evil.example", open_timeout=5)
    assert info.value.response.status_code == 403
    ok = client(origin=f"http://127.0.0.1:{bridge.port}")
    assert ok.info["type"] == "server_info"
    assert client(origin="null").info["type"] == "server_info"


def test_off_loopback_needs_the_token(daemon_factory):
    daemon = daemon_factory()
    bridge = BridgeProcess(daemon.home, address="0.0.0.0").start()
    try:
        token_file = daemon.home / "ws-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        with pytest.raises(InvalidStatus) as info:
            connect(bridge.ws_url, open_timeout=5)
        assert info.value.response.status_code == 401
        with pytest.raises(InvalidStatus):
            connect(bridge.ws_url + "?token=wrong", open_timeout=5)
        by_header = UpstreamClient(bridge.ws_url,
                                   additional_headers={"Authorization": f"Bearer {token}"})
        by_query = UpstreamClient(f"{bridge.ws_url}?token={token}")
        assert by_header.info["type"] == by_query.info["type"] == "server_info"
        by_header.close()
        by_query.close()
    finally:
        bridge.stop()


def test_a_client_that_stops_reading_is_dropped_and_the_others_go_on(daemon_factory):
    daemon = daemon_factory()
    bridge = BridgeProcess(daemon.home, ORBITDOCK_WS__SEND_BUFFER_BYTES="1048576").start()
    try:
        heavy, light = _create(daemon), _create(daemon)
        stuck = socket.create_connection(("127.0.0.1", bridge.port), timeout=5)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{bridge.port}\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        payload = json.dumps({"type": "subscribe_session", "session_id": heavy}).encode()
        mask = b"\x01\x02\x03\x04"
        stuck.sendall(bytes([0x81, 0x80 | len(payload)]) + mask
                      + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        healthy = UpstreamClient(bridge.ws_url)
        healthy.send(type="subscribe_session", session_id=light)
        healthy.recv_until(lambda f: f["type"] == "session_snapshot")
        # paced deltas: one frame each, every one carrying the whole (growing) text
        daemon.client().request(m.SendMessage(session_id=heavy, content="/stream 2000 500 16"))
        healthy.send(type="send_message", session_id=light, content="still here?")
        _wait_turn(healthy, light, 1, timeout=60)
        assert wait_until(lambda: any("dropping a client" in line
                                      for line in bridge.log_lines()), 60)
        healthy.send(type="send_message", session_id=light, content="and after the drop?")
        _wait_turn(healthy, light, 2, timeout=60)
        _settled_equal(healthy, daemon, light)
        healthy.close()
        stuck.close()
    finally:
        bridge.stop()


def test_a_busy_stream_goes_out_in_batches_and_the_copy_stays_exact(daemon_factory):
    """ws.batch_ms: a busy stream is taken at most once per window; the streaming
    updates of one message in a window go out as one message_updated carrying the
    whole text (unbatched, every one of the 60 deltas is a frame of its own)."""
    daemon = daemon_factory()
    bridge = BridgeProcess(daemon.home, ORBITDOCK_WS__BATCH_MS="250").start()
    try:
        sid = _create(daemon)
        c = UpstreamClient(bridge.ws_url)
        c.send(type="subscribe_session", session_id=sid)
        c.recv_until(lambda f: f["type"] == "session_snapshot")
        c.send(type="send_message", session_id=sid, content="/stream 60 300 8")
        _wait_turn(c, sid, 1, timeout=60)
        _settled_equal(c, daemon, sid)
        streamed = [x for x in c.sessions[sid]["messages"] if x["content"] == "x" * 480]
        assert len(streamed) == 1, "the streamed text arrived whole"
        updates = [f for f in c.frames if f["type"] == "message_updated"
                   and f["message_id"] == streamed[0]["id"]]
        assert 1 <= len(updates) < 20, f"{len(updates)} frames for 60 deltas in ~0.2 s"
        c.close()
    finally:
        bridge.stop()


def test_health_follows_the_daemon(env):
    daemon, bridge, client = env
    status, body = bridge.get("/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["pid"] == daemon.proc.pid
    daemon.stop()
    status, body = bridge.get("/health")
    assert status == 503 and json.loads(body)["status"] != "ok"


def test_orbitdockd_ws_runs_and_restarts_the_bridge(daemon_factory, tmp_path):
    port = free_port()
    daemon = daemon_factory("--ws", ORBITDOCK_WS__PORT=str(port))
    probe = BridgeProcess(daemon.home, port=port)  # only for its HTTP helper
    assert wait_until(lambda: probe.get("/health")[0] == 200, 30)
    first = json.loads(probe.get("/health")[1])["bridge_pid"]
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: probe.get("/health")[0] == 200
                      and json.loads(probe.get("/health")[1])["bridge_pid"] != first, 30)
    second = json.loads(probe.get("/health")[1])["bridge_pid"]
    assert daemon.stop() == 0
    assert wait_until(lambda: not os.path.exists(f"/proc/{second}"), 10)
    assert probe.get("/health")[0] == 0  # nothing listens any more


def test_older_messages_come_in_pages_from_the_daemons_store(env):
    daemon, bridge, client = env
    sid = _create(daemon)
    c = client()
    c.send(type="subscribe_session", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_snapshot")
    for turn, text in enumerate(("first", "second", "third"), start=1):
        c.send(type="send_message", session_id=sid, content=text)
        _wait_turn(c, sid, turn)
    status, body = bridge.get(f"/api/sessions/{sid}/messages?limit=2")
    newest = json.loads(body)
    assert status == 200 and newest["has_more_before"] is True
    assert [x["content"] for x in newest["messages"]] == ["third", "You said: third"]
    status, body = bridge.get(f"/api/sessions/{sid}/messages?limit=50&before_sequence="
                              f"{newest['oldest_sequence']}")
    older = json.loads(body)
    assert older["has_more_before"] is False
    assert [x["content"] for x in older["messages"] if x["message_type"] == "user"] \
        == ["first", "second"]
    assert bridge.get("/api/sessions/no-such/messages")[0] == 404
    assert bridge.get(f"/api/sessions/{sid}/messages?limit=many")[0] == 400


# ------------------------------------------------------------ Claude over the bridge
CLAUDE_SID = "5f0c2a9e-7b1d-4c3e-9a8f-2d6b1e0c4f3a"


def _hook(c: UpstreamClient, kind: str, **fields) -> None:
    c.send(type=kind, session_id=CLAUDE_SID, cwd="/work/app", **fields)


def test_upstream_claude_hook_messages_make_a_passive_session_whose_status_follows(env):
    """An upstream hook sender (Claude's hook JSON with ``type`` injected, over the
    WebSocket) drives a passive Claude session in the daemon unchanged."""
    daemon, bridge, client = env
    app = client()
    app.send(type="subscribe_list")
    app.recv_until(lambda f: f["type"] == "sessions_list")
    hooks = client()
    _hook(hooks, "claude_session_start", model="claude-sonnet-4-5", source="startup",
          permission_mode="default", terminal_app="iTerm.app")
    _hook(hooks, "claude_status_event", hook_event_name="UserPromptSubmit",
          prompt="fix the tests")
    row = app.recv_until(lambda f: f["type"] == "session_created"
                         and f["session"]["id"] == CLAUDE_SID)["session"]
    assert row["provider"] == "claude" and row["claude_integration_mode"] == "passive"
    assert row["permission_mode"] is None  # the terminal's mode is not orbitdock's to tell
    app.send(type="subscribe_session", session_id=CLAUDE_SID)
    app.recv_until(lambda f: f["type"] == "session_snapshot")
    assert wait_until(lambda: (app.drain(0.1), app.sessions[CLAUDE_SID]["work_status"])[1]
                      == "working", 15)

    tool = {"command": "pytest -x", "description": "run the tests"}
    _hook(hooks, "claude_tool_event", hook_event_name="PreToolUse", tool_name="Bash",
          tool_input=tool, tool_use_id="toolu_01A")
    # Claude asks: upstream's async hook cannot wait for the answer, but the app sees it
    _hook(hooks, "claude_tool_event", hook_event_name="PermissionRequest", tool_name="Bash",
          tool_input=tool, permission_suggestions=[])
    asked = app.recv_until(lambda f: f["type"] == "approval_requested")["request"]
    assert asked["type"] == "exec" and asked["command"] == "pytest -x"
    # answered in the terminal: the tool ran, the approval goes
    _hook(hooks, "claude_tool_event", hook_event_name="PostToolUse", tool_name="Bash",
          tool_input=tool, tool_use_id="toolu_01A",
          tool_response={"stdout": "3 passed", "stderr": ""})
    assert wait_until(lambda: (app.drain(0.1), app.sessions[CLAUDE_SID])[1][
        "pending_approval"] is None, 15)
    _hook(hooks, "claude_subagent_event", hook_event_name="SubagentStart", agent_id="a1",
          agent_type="Explore")
    _hook(hooks, "claude_subagent_event", hook_event_name="SubagentStop", agent_id="a1",
          agent_type="Explore", last_assistant_message="Found it.")
    _hook(hooks, "claude_status_event", hook_event_name="Stop",
          last_assistant_message="All 3 tests pass now.")
    assert wait_until(lambda: (app.drain(0.1), app.sessions[CLAUDE_SID]["work_status"])[1]
                      == "reply", 15)
    tools = {x["tool_name"]: x for x in app.sessions[CLAUDE_SID]["messages"]
             if x["message_type"] == "tool"}
    assert tools["Bash"]["tool_output"] == "3 passed" and "Agent:Explore" in tools
    _hook(hooks, "claude_session_end", reason="prompt_input_exit")
    app.recv_until(lambda f: f["type"] == "session_ended" and f["session_id"] == CLAUDE_SID)
    _settled_equal(app, daemon, CLAUDE_SID)
    assert app.sessions[CLAUDE_SID]["model"] == "claude-sonnet-4-5"  # SessionStart's

    # bad ones get upstream's codes; the hook sender is told nothing else
    for frame, code in (
            ({"type": "claude_status_event", "session_id": "not an id!",
              "hook_event_name": "Stop"}, "invalid_argument"),  # the daemon's check
            ({"type": "claude_status_event", "session_id": CLAUDE_SID,
              "hook_event_name": "PreToolUse"}, "invalid_argument"),
            ({"type": "claude_tool_event", "session_id": CLAUDE_SID, "cwd": "/w",
              "hook_event_name": "PreToolUse"}, "parse_error")):  # no tool_name
        hooks.ws.send(json.dumps(frame))
        err = hooks.recv_until(lambda f: f["type"] == "error")
        assert err["code"] == code, (frame, err)
    hooks.drain(0.5)
    assert [f["code"] for f in hooks.frames if f["type"] == "error"] == [
        "invalid_argument", "invalid_argument", "parse_error"]
    assert {f["type"] for f in hooks.frames} == {"server_info", "error"}


def test_a_permission_request_hook_waits_quietly(daemon_factory):
    """Upstream's PermissionRequest is answered when someone decides (or after
    claude.permission_wait_s): its sender, which never waits, gets no timeout error when
    the bridge's request time runs out; the approval stays for the app to show."""
    daemon = daemon_factory()
    bridge = BridgeProcess(daemon.home, ORBITDOCK_CLIENT__REQUEST_TIMEOUT_S="1").start()
    try:
        app, hooks = UpstreamClient(bridge.ws_url), UpstreamClient(bridge.ws_url)
        _hook(hooks, "claude_status_event", hook_event_name="UserPromptSubmit", prompt="go")
        app.send(type="subscribe_list")
        assert wait_until(lambda: (app.drain(0.1), CLAUDE_SID in app.list)[1], 15)
        app.send(type="subscribe_session", session_id=CLAUDE_SID)
        app.recv_until(lambda f: f["type"] == "session_snapshot")
        _hook(hooks, "claude_tool_event", hook_event_name="PermissionRequest",
              tool_name="Write", tool_input={"file_path": "/work/app/a.txt", "content": "hi\n"})
        asked = app.recv_until(lambda f: f["type"] == "approval_requested")["request"]
        assert asked["type"] == "patch" and asked["file_path"] == "/work/app/a.txt"
        hooks.drain(3.0)  # three times the bridge's request timeout
        assert [f["type"] for f in hooks.frames] == ["server_info"], hooks.frames
        app.send(type="approve_tool", session_id=CLAUDE_SID, request_id=asked["id"],
                 decision="approved")
        assert app.recv_until(lambda f: f["type"] == "approval_decision_result")[
            "outcome"] == "applied"
        hooks.drain(0.5)
        assert [f["type"] for f in hooks.frames] == ["server_info"], hooks.frames
        app.close()
        hooks.close()
    finally:
        bridge.stop()


def test_permission_mode_is_refused_for_a_codex_style_session(env):
    daemon, bridge, client = env
    sid = _create(daemon)
    c = client()
    c.send(type="subscribe_session", session_id=sid)
    snap = c.recv_until(lambda f: f["type"] == "session_snapshot")["session"]
    assert "permission_mode" not in snap and snap["codex_integration_mode"] == "direct"
    for frame in ({"type": "update_session_config", "session_id": sid,
                   "permission_mode": "plan"},
                  {"type": "fork_session", "source_session_id": sid,
                   "permission_mode": "plan"},
                  {"type": "create_session", "provider": "codex", "cwd": "/w",
                   "permission_mode": "plan"}):
        c.ws.send(json.dumps(frame))
        err = c.recv_until(lambda f: f["type"] == "error")
        assert err["code"] == "unsupported" and "permission_mode" in err["message"], err


@pytest.fixture
def claude_bridge(daemon_factory, sim, tmp_path):
    """A daemon that runs the real claude offline against ``sim``, and its bridge."""
    from claude_env import CLAUDE, daemon_env, make_box

    if not CLAUDE.exists():
        pytest.skip(f"claude not installed at {CLAUDE} (run bin/setup)")
    box = make_box(tmp_path / "claude")
    box.settings.write_text("{}")  # no hooks: a direct session
    env = daemon_env(box, sim)
    daemon = daemon_factory(**env)
    bridge = BridgeProcess(daemon.home).start()
    c = UpstreamClient(bridge.ws_url)
    yield daemon, c, box
    c.close()
    bridge.stop()


@pytest.mark.claude
def test_a_direct_claude_session_takes_permission_mode_over_websocket(claude_bridge, sim):
    daemon, c, box = claude_bridge
    c.send(type="subscribe_list")
    c.recv_until(lambda f: f["type"] == "sessions_list")
    c.send(type="create_session", provider="claude", cwd=str(box.project),
           permission_mode="plan")
    snap = c.recv_until(lambda f: f["type"] == "session_snapshot", timeout=90)["session"]
    sid = snap["id"]
    assert snap["provider"] == "claude" and snap["claude_integration_mode"] == "direct"
    assert snap["permission_mode"] == "plan" and snap["approval_policy"] == "plan"
    assert wait_until(lambda: (c.drain(0.1), sid in c.list)[1], 15)
    row = c.list[sid]  # the list's row (session_created)
    assert row["permission_mode"] == "plan" and row["claude_integration_mode"] == "direct"

    c.send(type="update_session_config", session_id=sid, permission_mode="acceptEdits")
    c.recv_until(lambda f: f["type"] == "session_delta" and f["session_id"] == sid
                 and f["changes"].get("permission_mode") == "acceptEdits")
    c.send(type="update_session_config", session_id=sid, permission_mode="sometimes")
    err = c.recv_until(lambda f: f["type"] == "error")
    assert err["code"] == "invalid_argument" and err["session_id"] == sid

    sim.set_script([{"text": "Hello from claude."}])
    c.send(type="send_message", session_id=sid, content="hi")
    assert wait_until(lambda: (c.drain(0.2), c.sessions[sid])[1]["turn_count"] >= 1
                      and c.sessions[sid]["current_turn_id"] is None, 90), c.sessions[sid]
    assert c.sessions[sid]["work_status"] == "reply", c.sessions[sid]
    c.send(type="fork_session", source_session_id=sid, permission_mode="default")
    forked = c.recv_until(lambda f: f["type"] in ("session_forked", "error"), timeout=90)
    assert forked["type"] == "session_forked", forked
    assert forked["source_session_id"] == sid and forked["new_session_id"] != sid
    fork = c.recv_until(lambda f: f["type"] == "session_snapshot"
                        and f["session"]["id"] == forked["new_session_id"])["session"]
    assert fork["provider"] == "claude" and fork["permission_mode"] == "default"
    assert "Hello from claude." in [x["content"] for x in fork["messages"]]
    _settled_equal(c, daemon, sid)
    # the thread operations a direct Claude session does not take: the daemon's unsupported
    for frame in ({"type": "compact_context"}, {"type": "undo_last_turn"},
                  {"type": "archive_session"}, {"type": "review_session"}):
        c.send(**frame, session_id=sid)
        err = c.recv_until(lambda f: f["type"] == "error", timeout=30)
        assert err["code"] == "unsupported" and err["session_id"] == sid, (frame, err)


# ------------------------------------------------ thread operations on the real codex
def _codex(test):
    """The codex tests' marks (a skip when bin/setup did not install codex)."""
    for mark in CODEX_MARKS if isinstance(CODEX_MARKS, list) else [CODEX_MARKS]:
        test = mark(test)
    return test


@pytest.fixture
def codex_bridge(codex_daemon, sim):
    daemon = codex_daemon()
    bridge = BridgeProcess(daemon.home).start()
    c = UpstreamClient(bridge.ws_url)
    sid = create(daemon.client(timeout=10), codex_daemon.workspace, policy="never")
    c.send(type="subscribe_session", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_snapshot")
    yield daemon, c, sid
    c.close()
    bridge.stop()


def _turn(c: UpstreamClient, sim, sid: str, prompt: str, answer: str) -> None:
    turns = c.sessions[sid]["turn_count"]
    sim.set_script([{"text": answer}])
    c.send(type="send_message", session_id=sid, content=prompt)
    _wait_turn(c, sid, turns + 1, timeout=TURN_TIMEOUT_S)


def _contents(c: UpstreamClient, sid: str) -> list[str]:
    return [x["content"] or "" for x in c.sessions[sid]["messages"]]


@_codex
def test_rollback_and_undo_over_websocket_on_the_real_codex(codex_bridge, sim):
    daemon, c, sid = codex_bridge
    for word in ("ALPHA", "BETA", "GAMMA"):
        _turn(c, sim, sid, f"remember {word}", f"ok {word}")

    # bad num_turns: refused by the bridge (0) or by the daemon (more turns than there are)
    c.send(type="rollback_turns", session_id=sid, num_turns=0)
    err = c.recv_until(lambda f: f["type"] == "error")
    assert err["code"] == "invalid_argument" and err["session_id"] == sid
    assert "orbitdock_code" not in err  # nothing was sent
    c.send(type="rollback_turns", session_id=sid, num_turns=4)
    err = c.recv_until(lambda f: f["type"] == "error", timeout=TURN_TIMEOUT_S)
    assert err["code"] == "invalid_argument" and err["orbitdock_code"] == "invalid_argument"
    assert c.sessions[sid]["turn_count"] == 3

    c.send(type="undo_last_turn", session_id=sid)
    done = c.recv_until(lambda f: f["type"] in ("thread_rolled_back", "error"),
                        timeout=TURN_TIMEOUT_S)
    assert done == {"type": "thread_rolled_back", "session_id": sid, "num_turns": 1,
                    "messages_dropped": 2, "files_reverted": False}, done
    _settled_equal(c, daemon, sid)
    assert not any("GAMMA" in x for x in _contents(c, sid)) and "ok BETA" in _contents(c, sid)

    c.send(type="rollback_turns", session_id=sid, num_turns=1)
    done = c.recv_until(lambda f: f["type"] in ("thread_rolled_back", "error"),
                        timeout=TURN_TIMEOUT_S)
    assert done["type"] == "thread_rolled_back" and done["num_turns"] == 1, done
    _settled_equal(c, daemon, sid)  # the client's copy took the fresh snapshot: no drift
    assert c.sessions[sid]["turn_count"] == 1
    assert "ok ALPHA" in _contents(c, sid)
    assert not any("BETA" in x or "GAMMA" in x for x in _contents(c, sid))

    # the model no longer sees the dropped turns
    _turn(c, sim, sid, "what do you remember?", "only ALPHA")
    sent = str(sim.requests()[-1]["input"])
    assert "ALPHA" in sent and "BETA" not in sent and "GAMMA" not in sent


@_codex
def test_compact_and_archive_over_websocket_on_the_real_codex(codex_bridge, sim):
    daemon, c, sid = codex_bridge
    _turn(c, sim, sid, "remember FIG", "noted FIG")

    # while a turn runs, compaction is refused (the backend's state: codex_error)
    sim.set_script([{"text": "busy", "hold": 60}])
    c.send(type="send_message", session_id=sid, content="long one")
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)
    c.send(type="compact_context", session_id=sid)
    err = c.recv_until(lambda f: f["type"] == "error", timeout=TURN_TIMEOUT_S)
    assert err["code"] == "codex_error" and err["orbitdock_code"] == "invalid_state"
    sim.release()
    _wait_turn(c, sid, 2, timeout=TURN_TIMEOUT_S)

    sim.set_script([{"text": "SUMMARY: the user likes FIG", "hold": 60}])
    c.send(type="compact_context", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_delta" and f["session_id"] == sid
                 and f["changes"].get("is_compacting") is True, timeout=TURN_TIMEOUT_S)
    assert wait_until(lambda: sim.state()["held"] >= 1 and "CONTEXT CHECKPOINT COMPACTION"
                      in str(sim.requests()[-1]["input"]), TURN_TIMEOUT_S)
    sim.release()
    _wait_turn(c, sid, 3, timeout=TURN_TIMEOUT_S)
    if c.sessions[sid]["is_compacting"]:
        c.recv_until(lambda f: not c.sessions[sid]["is_compacting"], timeout=TURN_TIMEOUT_S)
    _settled_equal(c, daemon, sid)
    last = c.sessions[sid]["messages"][-1]  # our compaction row (an assistant one upstream)
    assert "is_in_progress" not in last and "SUMMARY" not in (last["content"] or "")

    # ours: archive and unarchive, shown by is_archived
    c.send(type="archive_session", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("is_archived") is True, timeout=TURN_TIMEOUT_S)
    c.send(type="archive_session", session_id=sid)
    err = c.recv_until(lambda f: f["type"] == "error", timeout=TURN_TIMEOUT_S)
    assert err["orbitdock_code"] == "invalid_state" and err["session_id"] == sid
    c.send(type="unarchive_session", session_id=sid)
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("is_archived") is False, timeout=TURN_TIMEOUT_S)
    _settled_equal(c, daemon, sid)


@_codex
def test_review_over_websocket_on_the_real_codex(codex_bridge, sim):
    daemon, c, sid = codex_bridge
    ws = Path(c.sessions[sid]["project_path"])
    subprocess.run(["git", "init", "-q", str(ws)], check=True, timeout=30)
    (ws / "hello.py").write_text("print('hi')\nx = 1\n")

    c.send(type="review_session", session_id=sid, target="everything")
    err = c.recv_until(lambda f: f["type"] == "error")
    assert err["code"] == "invalid_argument" and "orbitdock_code" not in err
    c.send(type="review_session", session_id=sid, target="commit")  # the sha is missing
    err = c.recv_until(lambda f: f["type"] == "error", timeout=TURN_TIMEOUT_S)
    assert err["code"] == "invalid_argument" and err["orbitdock_code"] == "invalid_argument"

    review = {"findings": [{"title": "Magic number", "body": "x = 1 is unexplained.",
                            "confidence_score": 0.8, "priority": 2, "code_location": {
                                "absolute_file_path": str(ws / "hello.py"),
                                "line_range": {"start": 2, "end": 3}}}],
              "overall_correctness": "patch is correct", "overall_explanation": "Fine.",
              "overall_confidence_score": 0.7}
    sim.set_script([{"text": json.dumps(review), "hold": 60}])
    c.send(type="review_session", session_id=sid)  # target: the uncommitted changes
    c.recv_until(lambda f: f["type"] == "session_delta"
                 and f["changes"].get("work_status") == "reviewing", timeout=TURN_TIMEOUT_S)
    c.send(type="steer_turn", session_id=sid, content="faster please")
    err = c.recv_until(lambda f: f["type"] == "error", timeout=TURN_TIMEOUT_S)
    assert err["orbitdock_code"] == "invalid_state"
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)
    sim.release()
    _wait_turn(c, sid, 1, timeout=TURN_TIMEOUT_S)
    _settled_equal(c, daemon, sid)
    assert any("Magic number" in x for x in _contents(c, sid))
