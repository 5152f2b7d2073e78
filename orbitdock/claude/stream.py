"""Claude Code's stream-json protocol, both ways (pure; no I/O).

A direct Claude session is one ``claude -p --input-format stream-json
--output-format stream-json --verbose --include-partial-messages
--permission-prompt-tool stdio`` process
(``/work/shared/reference/claude-code.md`` §7-§8). This module has:

* ``StreamMapper``: the child's output lines -> the backend events every provider
  emits (``orbitdock.connectors.events``), so a direct Claude session shows the same
  state as a Codex one: ``stream_event`` text / thinking deltas stream the message
  (item ``<api message id>-<block index>``), the ``assistant`` line of that block
  finishes it (or starts a tool), ``user`` tool results complete tools, ``result``
  ends the turn with its outcome and token usage.
* the lines orbitdock writes: a user turn, control requests (``initialize``,
  ``interrupt``, ``set_model``, ``set_permission_mode``) and control responses;
* ``can_use_tool_answer``: a client's decision on a ``can_use_tool`` request, shaped
  with the hooks' approval mapping (``orbitdock.claude.hooks.permission_output``).
The autonomy values (Claude's permission modes, Codex policies mapped onto them) are
in ``orbitdock.claude.modes``.

Turn ids are orbitdock's (``<thread>-t<n>``): Claude has none of its own in -p mode.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from orbitdock.claude.hooks import approval_for_tool, permission_output
from orbitdock.claude.transcript import tool_result_text
from orbitdock.connectors import events as be

logger = logging.getLogger(__name__)

TOOL_OUTPUT_MAX_CHARS = 65_536  # a tool result kept per row (the core keeps its own tail)

# ------------------------------------------------------------ lines orbitdock writes
def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def user_turn(text: str) -> bytes:
    return encode({"type": "user", "message": {"role": "user", "content": text},
                   "parent_tool_use_id": None, "session_id": ""})


def control_request(request_id: str, subtype: str, **fields: Any) -> bytes:
    return encode({"type": "control_request", "request_id": request_id,
                   "request": {"subtype": subtype, **fields}})


def control_response(request_id: str, response: dict[str, Any]) -> bytes:
    return encode({"type": "control_response", "response": {
        "subtype": "success", "request_id": request_id, "response": response}})


def control_error(request_id: str, error: str) -> bytes:
    return encode({"type": "control_response", "response": {
        "subtype": "error", "request_id": request_id, "error": error}})


def session_scoped(suggestions: list[Any] | None) -> list[dict[str, Any]]:
    """Claude's permission suggestions, each applied to this session only: "allow for
    the session" must not write the project's or the user's settings."""
    return [{**s, "destination": "session"} for s in suggestions or [] if isinstance(s, dict)]


def can_use_tool_answer(request: dict[str, Any], decision: str,
                        answers: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The ``can_use_tool`` control response for a client's decision.

    accept: allow, the input unchanged; accept_for_session: also ``updatedPermissions``
    = Claude's suggestions, scoped to the session; decline: deny; cancel: deny and
    interrupt the turn; answered (AskUserQuestion): allow with the answers in the input
    (``updatedInput.answers``: question text -> chosen labels joined by ", "), which
    claude 2.1.332 turns into the tool's result ("Your questions have been answered:
    ..."), so the model reads the answer as the tool's output and not as a denial."""
    tool_input = request.get("input") if isinstance(request.get("input"), dict) else {}
    suggestions = session_scoped(request.get("permission_suggestions"))
    verdict = dict(permission_output(decision, tool_name=str(request.get("tool_name")),
                                     tool_input=tool_input, suggestions=suggestions,
                                     answers=answers)["hookSpecificOutput"]["decision"])
    if verdict["behavior"] == "allow":
        verdict.setdefault("updatedInput", tool_input)
    tool_use_id = request.get("tool_use_id")
    if tool_use_id:
        verdict["toolUseID"] = tool_use_id
    return verdict


def approval_of(request_id: str, request: dict[str, Any], cwd: str | None) -> be.ApprovalRequest:
    """A ``can_use_tool`` request as an approval, keyed by its control request id."""
    tool_input = request.get("input") if isinstance(request.get("input"), dict) else {}
    approval = approval_for_tool(request_id, str(request.get("tool_name")), tool_input, cwd=cwd,
                                 suggestions=request.get("permission_suggestions"),
                                 method="can_use_tool")
    approval.payload["tool_use_id"] = request.get("tool_use_id")
    return approval


# ------------------------------------------------------------ lines claude writes
class BadLine(ValueError):
    """A line of the child's output that is not a JSON object."""


def parse_line(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise BadLine(f"not JSON ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise BadLine("not a JSON object with a type")
    return obj


@dataclass
class TurnOutcome:
    """What a ``result`` line says about the turn it ends."""

    status: str  # completed | interrupted | failed
    error: str | None
    usage: be.TokenUsageUpdated | None  # with the session's cost so far


def outcome_of(obj: dict[str, Any]) -> TurnOutcome:
    reason = str(obj.get("terminal_reason") or "")
    if reason.startswith("aborted"):
        status, error = "interrupted", None
    elif obj.get("is_error") or obj.get("subtype") != "success":
        status = "failed"
        errors = obj.get("errors") if isinstance(obj.get("errors"), list) else []
        error = str(obj.get("result") or "; ".join(str(e) for e in errors)
                    or f"claude ended the turn with {obj.get('subtype')}")
        if obj.get("api_error_status"):
            error = f"API error {obj['api_error_status']}: {error}"
    else:
        status, error = "completed", None
    return TurnOutcome(status, error, usage_of(obj))


def usage_of(result: dict[str, Any]) -> be.TokenUsageUpdated | None:
    """The turn's token usage (``result.usage``, summed over its API calls), the model's
    context window (``modelUsage``) and the session's cost so far (``total_cost_usd``,
    which claude carries on across ``--resume``)."""
    usage = result.get("usage")
    if not isinstance(usage, dict):
        return None
    window = 0
    for model_usage in (result.get("modelUsage") or {}).values():
        if isinstance(model_usage, dict):
            window = max(window, int(model_usage.get("contextWindow") or 0))
    input_tokens = int(usage.get("input_tokens") or 0)
    output = int(usage.get("output_tokens") or 0)
    cached = int(usage.get("cache_read_input_tokens") or 0) + int(
        usage.get("cache_creation_input_tokens") or 0)
    details = usage.get("output_tokens_details") if isinstance(
        usage.get("output_tokens_details"), dict) else {}
    cost = result.get("total_cost_usd")
    return be.TokenUsageUpdated(input_tokens=input_tokens, output_tokens=output,
                                cached_tokens=cached,
                                reasoning_tokens=int(details.get("thinking_tokens") or 0),
                                total_tokens=input_tokens + cached + output,
                                context_window=window,
                                cost_usd=float(cost) if isinstance(cost, (int, float)) else 0.0)


@dataclass
class StreamMapper:
    """One process's output lines -> backend events (see the module docstring).

    ``turn_id`` is set by whoever sends the turn (``begin_turn``) and cleared by the
    ``result`` line. Sub-agent lines (``parent_tool_use_id`` set) are left out: the
    Agent tool's own row shows the sub-agent."""

    turn_id: str | None = None
    model: str | None = None
    permission_mode: str | None = None
    _blocks: dict[str, int] = field(default_factory=dict)  # api message id -> blocks seen
    _message_id: str | None = None  # the api message being streamed

    def begin_turn(self, turn_id: str) -> None:
        self.turn_id = turn_id
        self._blocks.clear()

    def feed(self, obj: dict[str, Any]) -> list[Any]:
        """The events of one parsed output line (control lines are the connector's)."""
        kind = obj.get("type")
        if obj.get("parent_tool_use_id"):
            return []
        handler = getattr(self, "_on_" + str(kind), None)
        return handler(obj) if handler is not None else []

    # ------------------------------------------------------------ line kinds
    def _on_system(self, obj: dict[str, Any]) -> list[Any]:
        if obj.get("subtype") != "init":
            if obj.get("subtype") == "api_retry":
                logger.info("claude retries an API request: %s", obj.get("error"))
            return []
        events: list[Any] = []
        model = obj.get("model")
        if isinstance(model, str) and model != self.model:
            self.model = model
            events.append(be.ConfigApplied(model=model))
        mode = obj.get("permissionMode")
        if isinstance(mode, str) and mode != self.permission_mode:
            self.permission_mode = mode
            events.append(be.ConfigApplied(approval_policy=mode))
        return events

    def _on_stream_event(self, obj: dict[str, Any]) -> list[Any]:
        event = obj.get("event")
        if not isinstance(event, dict):
            return []
        etype = event.get("type")
        if etype == "message_start":
            message = event.get("message") if isinstance(event.get("message"), dict) else {}
            self._message_id = str(message.get("id") or obj.get("api_message_id") or "")
        elif etype == "content_block_delta":
            delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
            item_id = f"{obj.get('api_message_id') or self._message_id}-{event.get('index')}"
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [be.AgentMessageDelta(item_id, str(delta["text"]), self.turn_id)]
            if delta.get("type") == "thinking_delta" and delta.get("thinking"):
                return [be.ReasoningDelta(item_id, str(delta["thinking"]), self.turn_id)]
        return []

    def _on_assistant(self, obj: dict[str, Any]) -> list[Any]:
        message = obj.get("message")
        if not isinstance(message, dict):
            return []
        message_id = str(message.get("id") or obj.get("uuid") or "")
        events: list[Any] = []
        for block in message.get("content") or []:
            index = self._blocks.get(message_id, 0)
            self._blocks[message_id] = index + 1
            if not isinstance(block, dict):
                continue
            kind, item_id = block.get("type"), f"{message_id}-{index}"
            if kind == "text":
                text = str(block.get("text", ""))
                if obj.get("error") or message.get("model") == "<synthetic>":
                    events.append(be.BackendError(text))  # an API error, said as a message
                else:
                    events.append(be.AgentMessage(item_id, text, self.turn_id))
            elif kind == "thinking" and block.get("thinking"):
                events.append(be.Reasoning(item_id, str(block["thinking"]), self.turn_id))
            elif kind == "tool_use":
                events.append(be.ToolStarted(
                    item_id=str(block.get("id") or item_id), tool_name=str(block.get("name")),
                    tool_input=json.dumps(block.get("input", {}), ensure_ascii=False,
                                          sort_keys=True), turn_id=self.turn_id))
        return events

    def _on_user(self, obj: dict[str, Any]) -> list[Any]:
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        events: list[Any] = []
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                is_error = bool(block.get("is_error"))
                meta = _decision_of(obj, str(block.get("tool_use_id")))
                status = "declined" if meta == "reject" else "failed" if is_error else "completed"
                events.append(be.ToolCompleted(
                    item_id=str(block.get("tool_use_id")), is_error=is_error, status=status,
                    output=tool_result_text(block.get("content"))[-TOOL_OUTPUT_MAX_CHARS:]))
        return events

    def _on_result(self, obj: dict[str, Any]) -> list[Any]:
        outcome = outcome_of(obj)
        events: list[Any] = [outcome.usage] if outcome.usage is not None else []
        if self.turn_id is not None:
            events.append(be.TurnCompleted(self.turn_id, outcome.status, outcome.error))
            self.turn_id = None
        return events


def _decision_of(obj: dict[str, Any], tool_use_id: str) -> str | None:
    """The permission decision Claude noted for a tool result (``reject`` when denied)."""
    for meta in obj.get("tool_result_meta") or []:
        if isinstance(meta, dict) and meta.get("id") == tool_use_id:
            decision = meta.get("permission_decision")
            return decision.get("decision") if isinstance(decision, dict) else None
    return None
