"""Script format of the scripted model server, and the Responses API SSE events it becomes.

A script is a list of replies; each ``POST /v1/responses`` consumes one. A reply is a
dict built from these keys (shapes as codex 0.169 needs them, see
``/work/shared/reference/codex-app-server.md`` §2):

Content (combine freely; items are emitted in this order: reasoning, text, call, custom,
tool_search):
    ``text``        assistant message, streamed as ``output_text.delta`` chunks
    ``chunk``       characters per delta (default: the whole text in one delta)
    ``reasoning``   reasoning summary, streamed as ``reasoning_summary_text.delta``
    ``call``        function call name (``exec_command``, ``update_plan``,
                    ``request_user_input``, an MCP tool with ``namespace``...)
    ``args``        its arguments (a dict, sent as a JSON string)
    ``call_id``     optional; generated when absent
    ``namespace``   optional, for MCP tools (``mcp__<server>``)
    ``custom``      custom/freeform tool name (``apply_patch``) with ``input``
    ``tool_search`` ``{"query": ..., "limit": ...}``: a client-executed tool search
    ``output``      a list of the content dicts above, one or more items each

Behaviour:
    ``match``       substring that must occur in the raw request body for this reply
                    to be used (JSON-escaped text, as codex sends it)
    ``hold``        seconds to park the stream after the first delta (or after
                    ``response.created`` when there is none) until released
    ``delay_ms``    pause between deltas
    ``usage``       overrides parts of the ``response.completed`` usage
    ``fail``        ``{"code", "message"}``: end with ``response.failed`` instead
    ``http_status`` answer with this HTTP status and a JSON error, no stream
    ``raw_events``  send exactly these events (dicts with ``type``; a str is sent verbatim)
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT_EXHAUSTED_TEXT = "(sim: script exhausted)"

# Deterministic so tests can assert on token notifications; "usage" overrides per reply.
DEFAULT_USAGE: dict[str, Any] = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 20},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 150,
}

_CONTENT_KEYS = {"text", "chunk", "reasoning", "call", "args", "call_id", "namespace", "id",
                 "custom", "input", "tool_search"}
_REPLY_KEYS = _CONTENT_KEYS | {"match", "hold", "delay_ms", "usage", "fail", "http_status",
                               "raw_events", "output"}


@dataclass(frozen=True)
class Hold:
    """Marker in an event list: the server parks the stream here until released."""

    seconds: float


@dataclass
class ReplyPlan:
    """What the server sends for one reply: an HTTP status, then SSE events and holds."""

    status: int = 200
    error_body: dict[str, Any] | None = None
    events: list[dict[str, Any] | str | Hold] = field(default_factory=list)
    delay_s: float = 0.0


_counter = itertools.count(1)
_run_tag = uuid.uuid4().hex[:8]


def new_id(prefix: str) -> str:
    """Unique within the process and across runs (ids end up in rollouts that persist)."""
    return f"{prefix}_{_run_tag}{next(_counter):06d}"


def validate_reply(reply: Any) -> None:
    """Reject typos early: a misspelt key would otherwise silently do nothing."""
    if not isinstance(reply, dict):
        raise ValueError(f"a script reply must be an object, got {reply!r}")
    unknown = set(reply) - _REPLY_KEYS
    if unknown:
        raise ValueError(f"unknown script key(s) {sorted(unknown)} in {reply!r}")
    if "output" in reply and set(reply) & _CONTENT_KEYS - {"chunk"}:
        raise ValueError(f"put content either in 'output' or at the top level, not both: {reply!r}")
    for item in reply.get("output", []):
        if not isinstance(item, dict) or set(item) - _CONTENT_KEYS:
            raise ValueError(f"bad 'output' element {item!r}: allowed keys {sorted(_CONTENT_KEYS)}")
    for event in reply.get("raw_events", []):
        if not isinstance(event, str) and not (isinstance(event, dict) and "type" in event):
            raise ValueError(f"a raw event is an object with 'type' or a raw SSE string: {event!r}")
    if "custom" in reply and "input" not in reply:
        raise ValueError(f"'custom' needs 'input': {reply!r}")
    if "http_status" in reply and not isinstance(reply["http_status"], int):
        raise ValueError(f"'http_status' must be an integer: {reply!r}")


def validate_script(replies: Any) -> list[dict[str, Any]]:
    if not isinstance(replies, list):
        raise ValueError("a script must be a JSON list of replies")
    for reply in replies:
        validate_reply(reply)
    return copy.deepcopy(replies)


def load_script(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a script file: a JSON list of replies."""
    return validate_script(json.loads(Path(path).read_text()))


def matches(reply: dict[str, Any], body_text: str) -> bool:
    needle = reply.get("match")
    return needle is None or str(needle) in body_text


def sse_frame(event: dict[str, Any] | str) -> bytes:
    """``event: <type>\\ndata: <json>\\n\\n``; a str is raw SSE text for malformed-stream tests."""
    if isinstance(event, str):
        return event.encode()
    data = json.dumps(event, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def _chunks(text: str, size: int | None) -> list[str]:
    if not size or size <= 0 or len(text) <= size:
        return [text]
    return [text[i:i + size] for i in range(0, len(text), size)]


def _merge_usage(override: dict[str, Any] | None) -> dict[str, Any]:
    usage = copy.deepcopy(DEFAULT_USAGE)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(usage.get(key), dict):
            usage[key].update(value)
        else:
            usage[key] = value
    if override and "total_tokens" not in override:
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return usage


class _EventBuilder:
    """Accumulates the events and final output items of one response."""

    def __init__(self, chunk: int | None):
        self.default_chunk = chunk
        self.events: list[dict[str, Any] | str | Hold] = []
        self.items: list[dict[str, Any]] = []

    def _added(self, item: dict[str, Any]) -> int:
        index = len(self.items)
        self.events.append({"type": "response.output_item.added", "output_index": index,
                            "item": item})
        return index

    def _done(self, index: int, item: dict[str, Any]) -> None:
        self.items.append(item)
        self.events.append({"type": "response.output_item.done", "output_index": index,
                            "item": item})

    def reasoning(self, text: str, chunk: int | None) -> None:
        item_id = new_id("rs")
        index = self._added({"type": "reasoning", "id": item_id, "summary": []})
        part = {"type": "summary_text", "text": ""}
        self.events.append({"type": "response.reasoning_summary_part.added", "item_id": item_id,
                            "output_index": index, "summary_index": 0, "part": part})
        for piece in _chunks(text, chunk):
            self.events.append({"type": "response.reasoning_summary_text.delta",
                                "item_id": item_id, "output_index": index,
                                "summary_index": 0, "delta": piece})
        self._done(index, {"type": "reasoning", "id": item_id,
                           "summary": [{"type": "summary_text", "text": text}]})

    def message(self, text: str, chunk: int | None, item_id: str | None) -> None:
        # output_item.added must precede the deltas or codex drops them (reference §2.3).
        item_id = item_id or new_id("msg")
        index = self._added({"type": "message", "id": item_id, "role": "assistant",
                             "status": "in_progress", "content": []})
        self.events.append({"type": "response.content_part.added", "item_id": item_id,
                            "output_index": index, "content_index": 0,
                            "part": {"type": "output_text", "text": "", "annotations": []}})
        for piece in _chunks(text, chunk):
            self.events.append({"type": "response.output_text.delta", "item_id": item_id,
                                "output_index": index, "content_index": 0, "delta": piece})
        self._done(index, {"type": "message", "id": item_id, "role": "assistant",
                           "status": "completed",
                           "content": [{"type": "output_text", "text": text,
                                        "annotations": []}]})

    def function_call(self, spec: dict[str, Any]) -> None:
        item = {"type": "function_call", "id": spec.get("id") or new_id("fc"),
                "call_id": spec.get("call_id") or new_id("call"), "name": spec["call"],
                "arguments": json.dumps(spec.get("args", {})), "status": "completed"}
        if spec.get("namespace"):
            item["namespace"] = spec["namespace"]
        self._done(len(self.items), item)

    def custom_call(self, spec: dict[str, Any]) -> None:
        self._done(len(self.items), {
            "type": "custom_tool_call", "id": spec.get("id") or new_id("ctc"),
            "call_id": spec.get("call_id") or new_id("call"), "name": spec["custom"],
            "input": spec["input"], "status": "completed"})

    def tool_search(self, spec: dict[str, Any]) -> None:
        search = dict(spec["tool_search"])
        search.setdefault("limit", 4)
        self._done(len(self.items), {
            "type": "tool_search_call", "call_id": spec.get("call_id") or new_id("call"),
            "execution": "client", "arguments": search})

    def content(self, spec: dict[str, Any]) -> None:
        chunk = spec.get("chunk", self.default_chunk)
        if "reasoning" in spec:
            self.reasoning(str(spec["reasoning"]), chunk)
        if "text" in spec:
            # An id given with a call belongs to the call; only a plain message uses it.
            plain = not ({"call", "custom"} & set(spec))
            self.message(str(spec["text"]), chunk, spec.get("id") if plain else None)
        if "call" in spec:
            self.function_call(spec)
        if "custom" in spec:
            self.custom_call(spec)
        if "tool_search" in spec:
            self.tool_search(spec)


def _insert_hold(events: list[dict[str, Any] | str | Hold], seconds: float) -> None:
    """Park after the first delta so the turn is visibly streaming, else after created."""
    for position, event in enumerate(events):
        if isinstance(event, dict) and event["type"].endswith(".delta"):
            events.insert(position + 1, Hold(seconds))
            return
    events.insert(1 if events else 0, Hold(seconds))


def build_plan(reply: dict[str, Any]) -> ReplyPlan:
    """Turn one script reply into what the server sends."""
    delay_s = max(0.0, float(reply.get("delay_ms", 0)) / 1000.0)
    status = reply.get("http_status", 200)
    if status != 200:
        message = f"sim: scripted HTTP {status}"
        return ReplyPlan(status=status, delay_s=delay_s, error_body={
            "error": {"message": message, "type": "server_error", "code": None}})
    if "raw_events" in reply:
        events = list(reply["raw_events"])
        if "hold" in reply:
            _insert_hold(events, float(reply["hold"]))
        return ReplyPlan(events=events, delay_s=delay_s)

    response_id = new_id("resp")
    builder = _EventBuilder(reply.get("chunk"))
    for spec in reply.get("output") or [reply]:
        builder.content(spec)
    if not builder.items and "fail" not in reply:
        builder.message("", None, None)

    events = builder.events
    events.insert(0, {"type": "response.created", "response": {
        "id": response_id, "object": "response", "status": "in_progress", "output": []}})
    if "fail" in reply:
        failure = {"code": "server_error", "message": "sim: scripted failure"}
        failure.update(reply["fail"] or {})
        events.append({"type": "response.failed", "response": {
            "id": response_id, "object": "response", "status": "failed", "error": failure}})
    else:
        events.append({"type": "response.completed", "response": {
            "id": response_id, "object": "response", "status": "completed",
            "output": builder.items, "usage": _merge_usage(reply.get("usage"))}})
    if "hold" in reply:
        _insert_hold(events, float(reply["hold"]))
    return ReplyPlan(events=events, delay_s=delay_s)
