"""The scripted Responses API on its own, spoken to with the stdlib HTTP client."""

from __future__ import annotations

import json
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import orbitdock
from orbitdock.sim import SCRIPT_EXHAUSTED_TEXT, SimServer
from orbitdock.sim.server import HOLD_POLL_S, LISTEN_BACKLOG, _HTTPServer

HTTP_TIMEOUT_S = 5.0


@pytest.fixture
def sim():
    with SimServer() as server:
        yield server


def post(url: str, payload: Any) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
        return json.loads(response.read())


def control(sim: SimServer, path: str) -> str:
    return sim.url.removesuffix("/v1") + path


def parse_sse(raw: bytes) -> list[dict]:
    """Split on blank lines; check each frame's ``event:`` names its data's ``type``."""
    events = []
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[len("data: "):])
        assert data["type"] == event_line[len("event: "):]
        events.append(data)
    return events


def respond(sim: SimServer, body: Any = None) -> list[dict]:
    status, content_type, raw = post(sim.url + "/responses", body or {"input": [], "stream": True})
    assert status == 200 and content_type == "text/event-stream"
    return parse_sse(raw)


def test_text_reply_is_streamed_in_chunks_with_usage(sim: SimServer):
    sim.set_script([{"text": "Hello world", "chunk": 4}])
    events = respond(sim)
    types = [e["type"] for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    # codex drops deltas that arrive before output_item.added (reference §2.3)
    assert types.index("response.output_item.added") < types.index("response.output_text.delta")
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["Hell", "o wo", "rld"]
    usage = events[-1]["response"]["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] >= 0
    assert usage["output_tokens_details"]["reasoning_tokens"] >= 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    message = events[-1]["response"]["output"][0]
    assert message["content"][0]["text"] == "Hello world"


def test_calls_get_unique_ids_and_json_arguments(sim: SimServer):
    sim.set_script([{"output": [
        {"call": "exec_command", "args": {"cmd": "ls"}},
        {"call": "echo", "namespace": "mcp__echo", "args": {"text": "ping"}, "call_id": "c9"},
        {"custom": "apply_patch", "input": "*** Begin Patch\n*** End Patch\n"},
        {"reasoning": "hmm", "text": "also text"}]}])
    items = [e["item"] for e in respond(sim) if e["type"] == "response.output_item.done"]
    assert [i["type"] for i in items] == ["function_call", "function_call", "custom_tool_call",
                                         "reasoning", "message"]
    assert json.loads(items[0]["arguments"]) == {"cmd": "ls"}
    assert items[1]["namespace"] == "mcp__echo" and items[1]["call_id"] == "c9"
    assert items[2]["name"] == "apply_patch"
    assert items[3]["summary"] == [{"type": "summary_text", "text": "hmm"}]
    ids = [i["id"] for i in items] + [items[0]["call_id"], items[2]["call_id"]]
    assert len(set(ids)) == len(ids)


def test_match_picks_the_first_fitting_reply_and_exhaustion_is_counted(sim: SimServer):
    sim.set_script([{"match": "STEER", "text": "steered"}, {"text": "plain"}])
    first = respond(sim, {"input": "nothing special"})
    assert first[-1]["response"]["output"][0]["content"][0]["text"] == "plain"
    second = respond(sim, {"input": "a STEER marker"})
    assert second[-1]["response"]["output"][0]["content"][0]["text"] == "steered"
    third = respond(sim)
    assert third[-1]["response"]["output"][0]["content"][0]["text"] == SCRIPT_EXHAUSTED_TEXT
    state = get_json(control(sim, "/_mock/state"))
    assert state == {"remaining": 0, "requests": 3, "served": 2, "exhausted": 1, "held": 0}


def test_hold_parks_after_the_first_delta_until_release(sim: SimServer):
    sim.set_script([{"text": "abcdef", "chunk": 2, "hold": 30}])
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(events=respond(sim)))
    started = time.monotonic()
    worker.start()
    deadline = started + HTTP_TIMEOUT_S
    while sim.state()["held"] != 1 and time.monotonic() < deadline:
        time.sleep(HOLD_POLL_S)
    assert sim.state()["held"] == 1 and worker.is_alive()
    status, _, _ = post(control(sim, "/_mock/release"), {})
    assert status == 200
    worker.join(HTTP_TIMEOUT_S)
    assert not worker.is_alive() and time.monotonic() - started < 10
    assert [e["delta"] for e in result["events"] if "delta" in e] == ["ab", "cd", "ef"]


def test_hold_ends_by_itself_after_its_time(sim: SimServer):
    sim.set_script([{"text": "x", "hold": 0.2}])
    started = time.monotonic()
    events = respond(sim)
    assert 0.2 <= time.monotonic() - started < 3
    assert events[-1]["type"] == "response.completed"


def test_fail_ends_the_stream_with_response_failed(sim: SimServer):
    sim.set_script([{"fail": {"code": "rate_limit_exceeded", "message": "slow down"}}])
    events = respond(sim)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "rate_limit_exceeded",
                                               "message": "slow down"}


def test_http_status_answers_without_a_stream(sim: SimServer):
    sim.set_script([{"http_status": 500}])
    status, content_type, body = post(sim.url + "/responses", {"input": []})
    assert status == 500 and content_type == "application/json"
    assert "error" in json.loads(body)


def test_raw_events_are_sent_verbatim(sim: SimServer):
    raw = [{"type": "response.completed", "response": {"id": "r"}}]
    sim.set_script([{"raw_events": raw}])
    assert respond(sim) == raw


def test_request_log_and_control_endpoints(sim: SimServer):
    status, _, _ = post(control(sim, "/_mock/script"), [{"text": "one"}])
    assert status == 200
    post(control(sim, "/_mock/append"), [{"text": "two"}])
    assert get_json(control(sim, "/_mock/state"))["remaining"] == 2
    respond(sim, {"input": "first"})
    respond(sim, {"input": "second"})
    assert [r["input"] for r in get_json(control(sim, "/_mock/requests"))] == ["first", "second"]
    assert sim.requests() == get_json(control(sim, "/_mock/requests"))
    assert get_json(sim.url + "/models")["data"] == []
    post(control(sim, "/_mock/reset"), {})
    assert get_json(control(sim, "/_mock/state"))["requests"] == 0


def test_a_misspelt_script_key_is_rejected(sim: SimServer):
    with pytest.raises(ValueError, match="unknown script key"):
        sim.set_script([{"txt": "typo"}])
    status, _, body = post(control(sim, "/_mock/script"), [{"hodl": 5}])
    assert status == 400 and b"unknown script key" in body


def test_console_script_prints_url_and_stops_on_sigterm(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "from file"}]))
    proc = subprocess.Popen([sys.executable, "-m", "orbitdock.sim", "--script", str(script),
                             "--backlog", "64"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=Path(orbitdock.__file__).parent.parent)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], HTTP_TIMEOUT_S)
        assert ready, "orbitdock-sim printed no URL"
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        status, _, raw = post(url + "/responses", {"input": []})
        assert b"from file" in raw
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(HTTP_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(HTTP_TIMEOUT_S)


def test_listen_backlog_queues_a_burst_of_connections():
    """200 app-servers connecting at once are queued, not dropped (socketserver's default is 5).

    The server below listens exactly as ``SimServer`` does but never accepts, so every
    connection has to fit in the backlog; with a backlog of 5 the 6th connect hangs.
    """
    assert LISTEN_BACKLOG == 1024 and SimServer().listen_backlog == LISTEN_BACKLOG
    server = _HTTPServer(("127.0.0.1", 0), SimServer().listen_backlog)
    connections: list[socket.socket] = []
    try:
        for _ in range(200):
            connections.append(socket.create_connection(server.server_address,
                                                        timeout=HTTP_TIMEOUT_S))
    finally:
        for conn in connections:
            conn.close()
        server.server_close()
    assert len(connections) == 200


def test_listen_backlog_is_a_constructor_parameter():
    with SimServer([{"text": "small backlog"}], listen_backlog=16) as server:
        assert server._httpd.request_queue_size == 16
        assert b"small backlog" in post(server.url + "/responses", {"input": []})[2]
    with pytest.raises(ValueError, match="at least 1"):
        SimServer(listen_backlog=0)


def test_connections_ended_without_a_reply_are_counted(sim: SimServer):
    """A bad request, and a client hanging up mid-stream, are incidents a load run reports
    (a turn that failed for the model server's sake is not codex's or orbitdock's)."""
    url = urllib.parse.urlsplit(sim.url)
    address = (url.hostname, url.port)
    with socket.create_connection(address, timeout=HTTP_TIMEOUT_S) as conn:
        conn.sendall(b"NOT HTTP\r\n\r\n")
        assert b"400" in conn.recv(4096)  # (an HTTP/0.9-style reply: no status line)
    sim.set_script([{"text": "abcdef", "chunk": 1, "hold": 30}])
    with socket.create_connection(address, timeout=HTTP_TIMEOUT_S) as conn:
        conn.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        deadline = time.monotonic() + HTTP_TIMEOUT_S
        while sim.state()["held"] != 1 and time.monotonic() < deadline:
            time.sleep(HOLD_POLL_S)
        # close with a reset (linger on, 0 s): the server sees the client gone mid-hold
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + HTTP_TIMEOUT_S
    while "stream_cut" not in sim.incidents() and time.monotonic() < deadline:
        time.sleep(HOLD_POLL_S)
    assert sim.incidents() == {"request_error": 1, "stream_cut": 1}
    sim.reset()
    assert sim.incidents() == {}
