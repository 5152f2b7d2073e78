"""Claude Code transcript lines -> backend events (pure; provider-neutral).

A transcript (``<config>/projects/<slug>/<session id>.jsonl``, see
``/work/shared/reference/claude-code.md`` §10) is append-only. Only conversation rows
matter here: ``user`` (a prompt as a string, or content blocks: ``tool_result`` and
text) and ``assistant`` (one content block a line: ``text``, ``thinking`` or
``tool_use``; the lines of one API message share ``message.id`` and its ``usage``).
Everything else (attachments, api-request shapes and blobs, queue operations, cost
state, …) is skipped, most of it without decoding: a line that names neither row
type in its bytes is not parsed.

Identity is stable, so reading the same bytes twice names everything the same way:
text and thinking rows use the line's ``uuid``, tools their ``tool_use_id``.
Sidechain rows (sub-agents) and meta rows (slash-command expansions) are left out. A
slash command the person typed is a ``user`` row of tags (``<command-name>/compact
</command-name>…<command-args>keep it short</command-args>``): its prompt is the command
line; the row of its local output (``<local-command-stdout>``) is claude's, not a prompt,
and is left out.
A ``system`` ``compact_boundary`` line (written once a compaction is done) is a finished
``ContextCompaction``, named by its ``uuid`` (the hooks' mapping ties it to the
compaction PreCompact started).

Token usage follows upstream OrbitDock: input = the last message's
``input_tokens``, output = the sum of ``output_tokens`` over distinct messages,
cached = the last ``cache_read_input_tokens + cache_creation_input_tokens``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson

from orbitdock.connectors import events as be
from orbitdock.rollout.lines import parse_time

logger = logging.getLogger(__name__)

_ROW_MARKERS = (b'"user"', b'"assistant"', b'"compact_boundary"')  # a cheap pre-filter
TOOL_OUTPUT_MAX_CHARS = 65_536  # a tool_result kept per row (the core keeps its own tail)
USAGE_IDS_KEPT = 4096  # message ids remembered for the output-token sum (bounded memory)
_COMMAND_NAME = re.compile(r"<command-name>(.*?)</command-name>", re.S)
_COMMAND_ARGS = re.compile(r"<command-args>(.*?)</command-args>", re.S)
LOCAL_OUTPUT = "<local-command-stdout>"


def slash_command_line(content: str) -> str | None:
    """``/compact keep it short`` for a slash command's transcript row, else None."""
    if not content.startswith("<command-name>"):
        return None
    name = _COMMAND_NAME.search(content)
    args = _COMMAND_ARGS.search(content)
    return " ".join(part.group(1).strip() for part in (name, args)
                    if part and part.group(1).strip()) or None


def tool_result_text(content: Any) -> str:
    """A tool_result's ``content``: a string, or blocks whose text parts are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, dict) and block.get("type") == "image":
                parts.append("[image]")
        return "\n".join(parts)
    return "" if content is None else str(content)


class TranscriptParser:
    """Feed one transcript's lines in order; each ``feed`` returns ``(event, time)`` pairs."""

    def __init__(self, session_id: str = "") -> None:
        self.session_id = session_id
        self.lines = 0
        self.bad_lines = 0
        self._usage_ids: dict[str, int] = {}  # message id -> its output tokens (insertion order)
        self._output_total = 0
        self._last_usage: be.TokenUsageUpdated | None = None

    def feed(self, line: bytes) -> list[tuple[Any, float | None]]:
        self.lines += 1
        if not any(marker in line for marker in _ROW_MARKERS):
            return []
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.bad_lines += 1
            logger.warning("transcript %s: line %d is not JSON; skipped", self.session_id,
                           self.lines)
            return []
        if not isinstance(obj, dict) or obj.get("isSidechain") or obj.get("isMeta"):
            return []
        kind = obj.get("type")
        message = obj.get("message")
        at = parse_time(obj.get("timestamp"))
        if kind == "system" and obj.get("subtype") == "compact_boundary":
            uuid = str(obj.get("uuid") or f"line{self.lines}")
            return [(be.ContextCompaction(item_id=f"compact-{uuid}", completed=True), at)]
        if kind not in ("user", "assistant") or not isinstance(message, dict):
            return []
        try:
            events = self._user(obj, message) if kind == "user" else self._assistant(obj, message)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.bad_lines += 1
            logger.warning("transcript %s: line %d has an unexpected shape (%r); skipped",
                           self.session_id, self.lines, exc)
            return []
        return [(event, at) for event in events]

    # ------------------------------------------------------------ rows
    def _user(self, obj: dict[str, Any], message: dict[str, Any]) -> list[Any]:
        content = message.get("content")
        uuid = str(obj.get("uuid") or f"line{self.lines}")
        if isinstance(content, str):
            if obj.get("isCompactSummary") or content.startswith(LOCAL_OUTPUT):
                return []
            text = slash_command_line(content) or content
            return [be.UserMessage(text=text, item_id=f"user-{uuid}")]
        events: list[Any] = []
        texts = []
        for block in content or []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_result":
                is_error = bool(block.get("is_error"))
                output = tool_result_text(block.get("content"))[-TOOL_OUTPUT_MAX_CHARS:]
                events.append(be.ToolCompleted(
                    item_id=str(block["tool_use_id"]), output=output, is_error=is_error,
                    status="failed" if is_error else "completed"))
            elif block.get("type") == "text":
                texts.append(str(block.get("text", "")))
        if texts and not obj.get("isCompactSummary"):
            events.insert(0, be.UserMessage(text="\n\n".join(texts), item_id=f"user-{uuid}"))
        return events

    def _assistant(self, obj: dict[str, Any], message: dict[str, Any]) -> list[Any]:
        events: list[Any] = []
        uuid = str(obj.get("uuid") or f"line{self.lines}")
        for index, block in enumerate(message.get("content") or []):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            item_id = f"{kind}-{uuid}-{index}"
            if kind == "text":
                text = str(block.get("text", ""))
                if obj.get("isApiErrorMessage"):
                    events.append(be.BackendError(text))
                elif text:
                    events.append(be.AgentMessage(item_id=item_id, text=text))
            elif kind == "thinking":
                thinking = str(block.get("thinking", ""))
                if thinking:
                    events.append(be.Reasoning(item_id=item_id, text=thinking))
            elif kind == "tool_use":
                events.append(be.ToolStarted(
                    item_id=str(block["id"]), tool_name=str(block.get("name") or "tool"),
                    tool_input=orjson.dumps(block.get("input", {})).decode()))
        usage = self._usage(message)
        if usage is not None:
            events.append(usage)
        return events

    def _usage(self, message: dict[str, Any]) -> be.TokenUsageUpdated | None:
        usage = message.get("usage")
        message_id = message.get("id")
        if not isinstance(usage, dict) or not message_id:
            return None
        output = int(usage.get("output_tokens") or 0)
        previous = self._usage_ids.get(message_id)
        if previous is not None:
            self._output_total += output - previous  # the same message seen again: its last count
        else:
            self._output_total += output
            if len(self._usage_ids) >= USAGE_IDS_KEPT:
                self._usage_ids.pop(next(iter(self._usage_ids)))
        self._usage_ids[message_id] = output
        input_tokens = int(usage.get("input_tokens") or 0)
        cached = int(usage.get("cache_read_input_tokens") or 0) + int(
            usage.get("cache_creation_input_tokens") or 0)
        event = be.TokenUsageUpdated(input_tokens=input_tokens, output_tokens=self._output_total,
                                     cached_tokens=cached,
                                     total_tokens=input_tokens + cached + self._output_total)
        if event == self._last_usage:
            return None
        self._last_usage = event
        return event
