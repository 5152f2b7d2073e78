"""The scripted Anthropic Messages API on its own (the shapes claude 2.1.332 reads)."""

from __future__ import annotations

import json

import pytest

from orbitdock.sim import SimServer
from test_sim_server import parse_sse, post


@pytest.fixture
def sim():
    with SimServer() as server:
        yield server


def messages(sim: SimServer, body: dict | None = None) -> tuple[int, str, bytes]:
    return post(sim.anthropic_url + "/v1/messages",
                body or {"model": "claude-opus-5-5", "messages": [], "stream": True})


def test_text_thinking_and_tool_use_stream_as_content_blocks(sim):
    sim.set_script([{"reasoning": "think", "text": "Hello world", "chunk": 4,
                     "call": "Bash", "args": {"command": "ls"}, "call_id": "toolu_x"}])
    status, content_type, raw = messages(sim)
    assert status == 200 and content_type == "text/event-stream"
    events = parse_sse(raw)
    types = [e["type"] for e in events]
    assert types[:2] == ["message_start", "ping"] and types[-2:] == ["message_delta",
                                                                      "message_stop"]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "tool_use"]
    assert starts[2]["id"] == "toolu_x" and starts[2]["name"] == "Bash"
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert [d["text"] for d in deltas if d["type"] == "text_delta"] == ["Hell", "o wo", "rld"]
    assert any(d["type"] == "signature_delta" for d in deltas)
    args = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert json.loads(args) == {"command": "ls"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[0]["message"]["model"] == "claude-opus-5-5"


def test_non_streaming_errors_and_count_tokens(sim):
    sim.set_script([{"text": "probe"}, {"http_status": 400}, {"custom": "apply_patch",
                                                              "input": "x"}])
    status, _, raw = messages(sim, {"model": "m", "messages": [], "stream": False,
                                    "max_tokens": 1})
    body = json.loads(raw)
    assert status == 200 and body["content"] == [{"type": "text", "text": "probe"}]
    assert body["stop_reason"] == "end_turn"
    status, _, raw = messages(sim)
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    status, _, raw = messages(sim)  # a Responses-only reply cannot answer a Messages request
    assert status == 400 and "Responses API only" in json.loads(raw)["error"]["message"]
    assert sim.incidents() == {"script_error": 1}
    status, _, raw = post(sim.anthropic_url + "/v1/messages/count_tokens",
                          {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 200 and json.loads(raw)["input_tokens"] >= 1
