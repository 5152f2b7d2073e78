"""The Anthropic Messages API (``POST /v1/messages``) from the same script format.

``orbitdock.sim.server`` serves it beside the Responses API, so a real ``claude``
runs offline with ``ANTHROPIC_BASE_URL`` set to ``SimServer.anthropic_url``. Each
request consumes one reply of the shared script (``orbitdock.sim.script``); the
keys mean here (see ``/work/shared/reference/claude-code.md`` §3 for the shapes):

    ``text``        a ``text`` content block, streamed as ``text_delta`` chunks
    ``reasoning``   a ``thinking`` block (``thinking_delta`` + ``signature_delta``)
    ``call``        a ``tool_use`` block: ``name`` = call, ``input`` = ``args``,
                    ``id`` = ``call_id`` (generated when absent)
    ``output``      several of the above, in order (parallel tool calls)
    ``chunk``, ``match``, ``hold``, ``delay_ms``, ``usage``: as for the Responses API
                    (``usage`` keys: input_tokens, output_tokens,
                    cache_read_input_tokens, cache_creation_input_tokens)
    ``fail``        ``{"type", "message"}``: the stream ends with an ``error`` event
    ``http_status`` a JSON ``error`` body with this status, no stream (the CLI retries a
                    400 five more times: script it with repeats)

Keys only the Responses API knows (``custom``, ``tool_search``, ``raw_events``,
``namespace``) are refused in a reply a Messages request takes. A non-streaming
request (no ``"stream": true``, e.g. the ``max_tokens:1`` set_model probe) gets the whole
Message as JSON.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from orbitdock.sim.script import Hold, ReplyPlan, new_id

DEFAULT_MODEL = "claude-sim"
# Deterministic so tests can assert on token usage; "usage" overrides per reply.
DEFAULT_USAGE: dict[str, int] = {
    "input_tokens": 100,
    "output_tokens": 25,
    "cache_read_input_tokens": 10,
    "cache_creation_input_tokens": 5,
}
_RESPONSES_ONLY = {"custom", "tool_search", "raw_events", "namespace", "input"}


def _chunks(text: str, size: int | None) -> list[str]:
    if not size or size <= 0 or len(text) <= size:
        return [text]
    return [text[i:i + size] for i in range(0, len(text), size)]


def _blocks(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """The finished content blocks of one reply, in the order they are streamed."""
    blocks: list[dict[str, Any]] = []
    for spec in reply.get("output") or [reply]:
        if "reasoning" in spec:
            blocks.append({"type": "thinking", "thinking": str(spec["reasoning"]),
                           "signature": "sim-signature"})
        if "text" in spec:
            blocks.append({"type": "text", "text": str(spec["text"])})
        if "call" in spec:
            blocks.append({"type": "tool_use", "id": spec.get("call_id") or new_id("toolu"),
                           "name": spec["call"], "input": spec.get("args", {})})
    return blocks


def _usage(override: dict[str, Any] | None) -> dict[str, int]:
    usage = dict(DEFAULT_USAGE)
    usage.update(override or {})
    return usage


def _block_events(index: int, block: dict[str, Any], chunk: int | None) -> list[dict[str, Any]]:
    kind = block["type"]
    if kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in _chunks(block["text"], chunk)]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": piece}
                  for piece in _chunks(block["thinking"], chunk)]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": piece}
                  for piece in _chunks(json.dumps(block["input"]), chunk)]
    return ([{"type": "content_block_start", "index": index, "content_block": start}]
            + [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
            + [{"type": "content_block_stop", "index": index}])


def check_reply(reply: dict[str, Any]) -> None:
    """A reply with Responses-only content cannot answer a Messages request."""
    for spec in reply.get("output") or [reply]:
        unknown = _RESPONSES_ONLY & set(spec)
        if unknown:
            raise ValueError(f"script reply has Responses API only key(s) {sorted(unknown)}; "
                             f"a Messages API request took it: {reply!r}")


def message_of(reply: dict[str, Any], model: str) -> dict[str, Any]:
    """The whole Message (non-streaming answer)."""
    blocks = _blocks(reply)
    return {"id": new_id("msg"), "type": "message", "role": "assistant", "model": model,
            "content": blocks or [{"type": "text", "text": ""}],
            "stop_reason": _stop_reason(blocks), "stop_sequence": None,
            "usage": _usage(reply.get("usage"))}


def _stop_reason(blocks: list[dict[str, Any]]) -> str:
    return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"


def build_messages_plan(reply: dict[str, Any], model: str = DEFAULT_MODEL) -> ReplyPlan:
    """One script reply as the SSE events of a streamed Message."""
    delay_s = max(0.0, float(reply.get("delay_ms", 0)) / 1000.0)
    status = reply.get("http_status", 200)
    if status != 200:
        return ReplyPlan(status=status, delay_s=delay_s, error_body={
            "type": "error", "error": {"type": "invalid_request_error" if status == 400
                                       else "api_error",
                                       "message": f"sim: scripted HTTP {status}"}})
    check_reply(reply)
    blocks = _blocks(reply) or ([] if "fail" in reply else [{"type": "text", "text": ""}])
    usage = _usage(reply.get("usage"))
    start_usage = dict(usage, output_tokens=1)
    events: list[dict[str, Any] | str | Hold] = [
        {"type": "message_start", "message": {
            "id": new_id("msg"), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}},
        {"type": "ping"}]
    for index, block in enumerate(blocks):
        events += _block_events(index, block, reply.get("chunk"))
    if "fail" in reply:
        error = {"type": "overloaded_error", "message": "sim: scripted failure"}
        error.update(reply["fail"] or {})
        events.append({"type": "error", "error": error})
    else:
        events.append({"type": "message_delta",
                       "delta": {"stop_reason": _stop_reason(blocks), "stop_sequence": None},
                       "usage": {"output_tokens": usage["output_tokens"]}})
        events.append({"type": "message_stop"})
    if "hold" in reply:
        _insert_hold(events, float(reply["hold"]))
    return ReplyPlan(events=events, delay_s=delay_s)


def _insert_hold(events: list[dict[str, Any] | str | Hold], seconds: float) -> None:
    """Park after the first delta so the turn is visibly streaming, else after the start."""
    for position, event in enumerate(events):
        if isinstance(event, dict) and event["type"] == "content_block_delta":
            events.insert(position + 1, Hold(seconds))
            return
    events.insert(2 if len(events) > 1 else len(events), Hold(seconds))


def request_model(parsed: dict[str, Any]) -> str:
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) and model else DEFAULT_MODEL


def count_tokens(parsed: Any) -> dict[str, int]:
    """``/v1/messages/count_tokens``: a rough, deterministic count (4 chars a token)."""
    return {"input_tokens": max(1, len(json.dumps(copy.deepcopy(parsed))) // 4)}
