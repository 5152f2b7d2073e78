"""Rollout lines -> BackendEvents, for codex 0.169 and the older vocabulary.

One ``RolloutParser`` per file; it is pure (no I/O) and keeps only what the
mapping needs: the bound thread, the open turn, open tool calls and pending
questions. Choices that make re-reading and mixed vocabularies safe:

* **One source per fact.** Chat messages come only from ``event_msg``
  (``item_completed`` UserMessage/AgentMessage in 0.169, ``user_message`` /
  ``agent_message`` before); ``response_item`` messages repeat them and also
  carry harness context, so they are skipped. Token usage comes only from
  ``token_count`` (``token_usage_record`` repeats it). Tools are keyed by
  ``call_id``, so the ``function_call`` + ``exec_command_begin`` pair older
  versions write, or 0.169's ``item_completed`` + ``function_call_output``
  pair, yields one start and one completion.
* **Stable identity.** Item ids when codex writes them, else
  ``rollout-<thread>-<ordinal>`` or ``rollout-<thread><file tag>-<end offset>``,
  so parsing the same bytes twice names everything the same way.
* **The "saw agent message" gate** (upstream): after an agent message or the
  end of a turn, trailing tool events must not flip a finished session back to
  working. A new model-issued call inside an open turn reopens it (models
  speak, then call tools), and completions of calls already open always pass.
* **Nothing stops the file.** Unknown types are counted; malformed lines are
  logged with file and offset and skipped.
"""

from __future__ import annotations

import logging
import shlex
from collections import Counter
from datetime import datetime
from typing import Any, Callable

import orjson

from orbitdock.connectors import events as be
from orbitdock.rollout.naming import is_injected_context, name_from_first_prompt

logger = logging.getLogger(__name__)

# Known line types that never produce an event; recognised from the first bytes and
# skipped without decoding (world_state and compacted lines can be very large).
_SNIFF_SKIP = frozenset((b"world_state", b"token_usage_record", b"compacted"))
_SNIFF_WINDOW = 160  # top-level "type" sits before "payload" in every codex line
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _sniff_type(line: bytes) -> bytes | None:
    i = line.find(b'"type":"', 0, _SNIFF_WINDOW)
    if i == -1 or line.find(b'"payload"', 0, i) != -1:
        return None
    j = line.find(b'"', i + 8, i + 48)
    return line[i + 8:j] if j != -1 else None


def parse_time(value: Any) -> float | None:
    """ISO-8601 (``2026-11-25T12:58:46.000Z``) or epoch seconds -> epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class RolloutParser:
    """Feeds lines of one rollout file; ``feed`` returns the events each line yields."""

    def __init__(self, path: str = "", file_tag: str = "") -> None:
        self.path = path
        self.file_tag = file_tag  # "_<uuid>" for thread/revert files: offsets restart there
        self.thread_id: str | None = None
        self.originator: str | None = None
        self.source: Any = None  # "cli" | "exec" | "vscode" | {"subagent": ...}
        self.cli_version: str | None = None
        self.meta: be.ThreadStarted | None = None
        self.codex_name: str | None = None
        self.first_prompt_name: str | None = None  # naming.name_from_first_prompt of the first prompt
        self.lines = 0
        self.malformed = 0
        self.skipped = 0  # known lines with nothing to report (duplicates, context, settings)
        self.gated = 0
        self.unknown: Counter[str] = Counter()
        self._turn_id: str | None = None
        self._turn_open = True  # unknown when resuming mid-file: assume open, drop nothing
        self._gate_closed = False
        self._open_tools: dict[str, str] = {}  # call_id -> label
        self._done_tools: set[str] = set()  # completed in the current turn (dedup pairs)
        self._silent_calls: set[str] = set()  # update_plan etc.: no tool row, skip the output
        self._questions: dict[str, Any] = {}  # call_id -> ApprovalRequest key
        self._cwd: str | None = None
        self._model: str | None = None
        self._config: tuple[Any, Any, Any] = (None, None, None)
        self._out: list[Any] = []
        self._end = 0
        self._ordinal: Any = None
        self._lines = {"session_meta": self._session_meta, "turn_context": self._turn_context,
                       "event_msg": self._event_msg, "response_item": self._response_item,
                       "retained_context": self._retained_context, "world_state": None,
                       "token_usage_record": None, "compacted": None}
        self._events: dict[str, Callable[[dict[str, Any]], None] | None] = {
            "task_started": self._task_started, "turn_started": self._task_started,
            "task_complete": self._task_complete, "turn_complete": self._task_complete,
            "turn_aborted": self._turn_aborted, "item_completed": self._item_completed,
            "token_count": self._token_count, "thread_settings_applied": self._settings,
            "thread_name_updated": self._name_updated, "user_message": self._old_user_message,
            "agent_message": self._old_agent_message, "agent_reasoning": self._old_reasoning,
            "error": self._old_error, "plan_update": self._old_plan, "turn_diff": self._old_diff,
            "agent_reasoning_raw_content": None, "agent_reasoning_section_break": None,
            "context_compacted": None, "entered_review_mode": None, "exited_review_mode": None,
            "warning": None, "item_started": None,
        }
        self._events.update({name: getattr(self, "_" + name) for name in OLD_TOOL_EVENTS})

    # ------------------------------------------------------------ feeding
    def feed(self, line: bytes, end_offset: int) -> list[Any]:
        """Events for one line; ``end_offset`` (just past its newline) names and locates it."""
        self.lines += 1
        if _sniff_type(line) in _SNIFF_SKIP:
            self.skipped += 1
            return []
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return self._bad(end_offset, f"bad JSON ({exc})")
        payload = obj.get("payload") if isinstance(obj, dict) else None
        ltype = obj.get("type") if isinstance(obj, dict) else None
        if not isinstance(ltype, str) or not isinstance(payload, dict):
            return self._bad(end_offset, "not a {type, payload} object")
        if ltype not in self._lines:
            self.unknown[ltype] += 1
            return []
        handler = self._lines[ltype]
        if handler is None:
            self.skipped += 1
            return []
        self._out, self._end, self._ordinal = [], end_offset, obj.get("ordinal")
        try:
            handler(payload)
        except _SHAPE_ERRORS as exc:
            return self._bad(end_offset, f"unexpected {ltype} shape ({exc!r})")
        return self._out

    def prime(self, line: bytes) -> be.ThreadStarted | None:
        """Bind the thread from a file's first line when resuming past it (no events)."""
        self.feed(line, 0)
        self._out = []
        return self.meta

    def _bad(self, end_offset: int, why: str) -> list[Any]:
        self.malformed += 1
        logger.warning("rollout %s: skipping malformed line ending at byte %d: %s",
                       self.path, end_offset, why)
        return []

    def _emit(self, event: Any) -> None:
        self._out.append(event)

    def _fallback_id(self, kind: str = "") -> str:
        thread = self.thread_id or "unbound"
        if isinstance(self._ordinal, int):
            return f"rollout-{thread}-{kind}{self._ordinal}"
        return f"rollout-{thread}{self.file_tag}-{kind}b{self._end}"

    # ------------------------------------------------------------ line types
    def _session_meta(self, p: dict[str, Any]) -> None:
        thread_id = _str(p.get("id"))
        if thread_id is None:
            raise ValueError("session_meta without id")
        if self.thread_id is not None:
            self.skipped += 1  # repeated meta, or a parent's meta copied into a fork
            return
        self.thread_id = thread_id
        self.originator = _str(p.get("originator")) or "codex"  # upstream's default
        self.source = p.get("source")
        self.cli_version = _str(p.get("cli_version"))
        self._cwd = _str(p.get("cwd"))
        self._model = _str(_dict(_dict(p.get("base_instructions")).get("provenance")).get("model"))
        self.meta = be.ThreadStarted(
            thread_id=thread_id, model=self._model, cwd=self._cwd, transcript_path=self.path or None,
            git_branch=_str(_dict(p.get("git")).get("branch")), name=self.codex_name,
            started_at=parse_time(p.get("timestamp")))
        self._emit(self.meta)

    def _turn_context(self, p: dict[str, Any]) -> None:
        self._turn_id = _str(p.get("turn_id")) or self._turn_id
        cwd, model = _str(p.get("cwd")) or self._cwd, _str(p.get("model")) or self._model
        if (cwd, model) != (self._cwd, self._model):
            self._cwd, self._model = cwd, model
            self._emit(be.ProjectInfo(cwd=cwd, model=model))
        sandbox = _dict(p.get("sandbox_policy"))
        self._apply_config(_str(p.get("approval_policy")),
                           _str(sandbox.get("type")) or _str(sandbox.get("mode")), model)

    def _apply_config(self, approval: str | None, sandbox: str | None, model: str | None) -> None:
        old = self._config
        new = (approval or old[0], sandbox or old[1], model or old[2])
        if new != old:
            self._config = new
            self._emit(be.ConfigApplied(approval_policy=approval, sandbox_mode=sandbox, model=model))

    def _event_msg(self, p: dict[str, Any]) -> None:
        etype = p.get("type")
        if not isinstance(etype, str) or etype not in self._events:
            self.unknown[f"event_msg:{etype}"] += 1
            return
        handler = self._events[etype]
        if handler is None:
            self.skipped += 1
        else:
            handler(p)

    def _response_item(self, p: dict[str, Any]) -> None:
        rtype = p.get("type")
        if rtype in ("message", "reasoning"):
            self.skipped += 1  # repeats of event_msg messages/reasoning, or harness context
        elif rtype in ("function_call", "custom_tool_call", "local_shell_call", "tool_search_call"):
            self._model_call(p)
        elif rtype in ("function_call_output", "custom_tool_call_output", "tool_search_output"):
            self._call_output(p)
        elif rtype == "web_search_call":
            query = _str(_dict(p.get("action")).get("query"))
            self._complete_tool(_str(p.get("id")) or self._fallback_id("ws"), "WebSearch", query,
                                output=None)
        else:
            self.unknown[f"response_item:{rtype}"] += 1

    def _retained_context(self, p: dict[str, Any]) -> None:
        call_id = _str(p.get("call_id"))
        if p.get("type") == "verified_answer" and call_id in self._questions:
            self._emit(be.ApprovalCleared(self._questions.pop(call_id)))
        else:
            self.skipped += 1

    # ------------------------------------------------------------ turns
    def _task_started(self, p: dict[str, Any]) -> None:
        self._turn_id = _str(p.get("turn_id")) or self._fallback_id("turn-")
        self._turn_open, self._gate_closed = True, False
        self._done_clear()
        self._emit(be.TurnStarted(turn_id=self._turn_id))

    def _end_turn(self, p: dict[str, Any], status: str, error: str | None) -> None:
        turn_id = _str(p.get("turn_id")) or self._turn_id
        self._turn_open, self._gate_closed = False, True
        self._open_clear()
        self._questions.clear()  # the session withdraws pending approvals at turn end
        self._emit(be.TurnCompleted(turn_id=turn_id, status=status, error=error))

    def _task_complete(self, p: dict[str, Any]) -> None:
        error = p.get("error")
        if isinstance(error, dict):
            error = _str(error.get("message")) or orjson.dumps(error).decode()
        error = _str(error)
        self._end_turn(p, "failed" if error else "completed", error)

    def _turn_aborted(self, p: dict[str, Any]) -> None:
        self._end_turn(p, "interrupted", None)

    # ------------------------------------------------------------ messages
    def _user_text(self, text: str, item_id: str | None, turn_id: str | None) -> None:
        if not text.strip() or is_injected_context(text):
            self.skipped += 1
            return
        self._gate_closed = False
        if self.first_prompt_name is None:
            self.first_prompt_name = name_from_first_prompt(text)
        self._emit(be.UserMessage(text=text, item_id=item_id or self._fallback_id(),
                                  turn_id=turn_id or self._turn_id))

    def _agent_text(self, text: str, item_id: str | None, turn_id: str | None) -> None:
        self._gate_closed = True
        self._emit(be.AgentMessage(item_id=item_id or self._fallback_id(), text=text,
                                   turn_id=turn_id or self._turn_id))

    def _item_completed(self, p: dict[str, Any]) -> None:
        item = p["item"]
        if not isinstance(item, dict):
            raise TypeError("item_completed.item is not an object")
        itype, item_id, turn_id = item.get("type"), _str(item.get("id")), _str(p.get("turn_id"))
        if itype == "UserMessage":
            self._user_text(join_text(item.get("content")), item_id, turn_id)
        elif itype == "AgentMessage":
            self._agent_text(join_text(item.get("content")), item_id, turn_id)
        elif itype == "ExitedReviewMode" and _str(item.get("review")):
            self._agent_text(item["review"], item_id, turn_id)
        elif itype == "Reasoning":
            text = join_text(item.get("summary_text") or item.get("summary"))
            if text:
                self._emit(be.Reasoning(item_id=item_id or self._fallback_id(), text=text,
                                        turn_id=turn_id or self._turn_id))
        elif itype in ITEM_TOOLS:
            label, tool_input, fields = item_completion(item)
            self._complete_tool(item_id or self._fallback_id(), label, tool_input, **fields)
        elif itype in ("ContextCompaction", "EnteredReviewMode", "ExitedReviewMode", "Plan",
                       "TodoList"):
            self.skipped += 1
        else:
            self.unknown[f"item:{itype}"] += 1

    def _old_user_message(self, p: dict[str, Any]) -> None:
        self._user_text(_str(p.get("message")) or "", None, None)

    def _old_agent_message(self, p: dict[str, Any]) -> None:
        self._agent_text(_str(p.get("message")) or "", None, None)

    def _old_reasoning(self, p: dict[str, Any]) -> None:
        text = _str(p.get("text"))
        if text:
            self._emit(be.Reasoning(item_id=self._fallback_id(), text=text, turn_id=self._turn_id))

    def _old_error(self, p: dict[str, Any]) -> None:
        self._emit(be.BackendError(message=_str(p.get("message")) or "error"))

    def _old_plan(self, p: dict[str, Any]) -> None:
        plan = p.get("plan")
        self._emit(be.PlanUpdated(plan=plan if isinstance(plan, list) else [],
                                  explanation=_str(p.get("explanation")), turn_id=self._turn_id))

    def _old_diff(self, p: dict[str, Any]) -> None:
        self._emit(be.DiffUpdated(diff=_str(p.get("unified_diff")) or "", turn_id=self._turn_id))

    # ------------------------------------------------------------ usage, settings, names
    def _token_count(self, p: dict[str, Any]) -> None:
        info = p.get("info")
        if isinstance(info, dict):
            total = info["total_token_usage"]
            if not isinstance(total, dict):
                raise TypeError("total_token_usage is not an object")
            self._emit(be.TokenUsageUpdated(
                input_tokens=int(total.get("input_tokens") or 0),
                output_tokens=int(total.get("output_tokens") or 0),
                cached_tokens=int(total.get("cached_input_tokens") or 0),
                reasoning_tokens=int(total.get("reasoning_output_tokens") or 0),
                total_tokens=int(total.get("total_tokens") or 0),
                context_window=int(info.get("model_context_window") or 0)))
        limits = p.get("rate_limits")
        if isinstance(limits, dict) and (limits.get("primary") or limits.get("secondary")):
            self._emit(be.RateLimitsUpdated(payload=limits))

    def _settings(self, p: dict[str, Any]) -> None:
        s = _dict(p.get("thread_settings"))
        self._apply_config(_str(s.get("approval_policy")),
                           _str(_dict(s.get("sandbox_policy")).get("type")), _str(s.get("model")))

    def _name_updated(self, p: dict[str, Any]) -> None:
        self.codex_name = _str(p.get("thread_name"))
        self._emit(be.NameUpdated(name=self.codex_name))

    # ------------------------------------------------------------ tools
    def _start_tool(self, call_id: str, label: str, tool_input: str | None,
                    *, model_call: bool) -> None:
        if call_id in self._open_tools or call_id in self._done_tools:
            self.skipped += 1  # the other half of a begin pair
            return
        if self._gate_closed:
            if not (model_call and self._turn_open):
                self.gated += 1
                return
            self._gate_closed = False
        self._open_tools[call_id] = label
        self._emit(be.ToolStarted(item_id=call_id, tool_name=label, tool_input=tool_input,
                                  turn_id=self._turn_id))

    def _complete_tool(self, call_id: str, label: str, tool_input: str | None,
                       **fields: Any) -> None:
        if call_id in self._done_tools:
            self.skipped += 1  # the other half of an end pair
            return
        started = self._open_pop(call_id, None)
        if started is None and self._gate_closed:
            self.gated += 1
            return
        self._done_add(call_id)
        self._emit(be.ToolCompleted(item_id=call_id, tool_name=started or label,
                                    tool_input=None if started else tool_input, **fields))

    def _model_call(self, p: dict[str, Any]) -> None:
        call_id = _str(p.get("call_id")) or _str(p.get("id")) or self._fallback_id("call-")
        name = _str(p.get("name")) or ""
        if p.get("type") == "function_call" and name in ("request_user_input", "update_plan"):
            self._silent_calls.add(call_id)
            args = json_args(p.get("arguments"))
            if name == "update_plan":
                plan = args.get("plan")
                self._emit(be.PlanUpdated(plan=plan if isinstance(plan, list) else [],
                                          explanation=_str(args.get("explanation")),
                                          turn_id=self._turn_id))
            else:
                self._ask(call_id, args.get("questions"), p)
            return
        label, tool_input = call_start(p)
        self._start_tool(call_id, label, tool_input, model_call=True)

    def _call_output(self, p: dict[str, Any]) -> None:
        call_id = _str(p.get("call_id"))
        if call_id is None:
            raise ValueError(f"{p.get('type')} without call_id")
        if call_id in self._silent_calls:
            self._silent_calls.discard(call_id)
            if call_id in self._questions:
                self._emit(be.ApprovalCleared(self._questions.pop(call_id)))
            else:
                self.skipped += 1
            return
        self._complete_tool(call_id, "tool", None, **output_fields(p))

    def _ask(self, call_id: str, questions: Any, payload: dict[str, Any]) -> None:
        if call_id in self._questions:
            self.skipped += 1
            return
        key = ("rollout", call_id)
        self._questions[call_id] = key
        self._emit(be.ApprovalRequest(key=key, type="question", method="rollout",
                                      turn_id=self._turn_id, questions=questions(questions),
                                      payload=payload))

    # ------------------------------------------------------------ older tool events
    def _exec_command_begin(self, p: dict[str, Any]) -> None:
        self._clear_approval(p)
        self._start_tool(p["call_id"], "Shell", command_text(p.get("command")),
                         model_call=False)

    def _exec_command_end(self, p: dict[str, Any]) -> None:
        self._clear_approval(p)
        self._complete_tool(p["call_id"], "Shell", command_text(p.get("command")),
                            **exec_end_fields(p))

    def _patch_apply_begin(self, p: dict[str, Any]) -> None:
        self._clear_approval(p)
        self._start_tool(p["call_id"], "Edit", changed_paths(p.get("changes")),
                         model_call=False)

    def _patch_apply_end(self, p: dict[str, Any]) -> None:
        self._clear_approval(p)
        ok = p.get("success") is not False
        self._complete_tool(p["call_id"], "Edit", None, output=std_output(p),
                            is_error=not ok, status="completed" if ok else "failed")

    def _mcp_tool_call_begin(self, p: dict[str, Any]) -> None:
        label, tool_input = mcp_invocation(p.get("invocation"))
        self._start_tool(p["call_id"], label, tool_input, model_call=False)

    def _mcp_tool_call_end(self, p: dict[str, Any]) -> None:
        label, tool_input = mcp_invocation(p.get("invocation"))
        self._complete_tool(p["call_id"], label, tool_input, **mcp_end_fields(p))

    def _web_search_begin(self, p: dict[str, Any]) -> None:
        self._start_tool(p["call_id"], "WebSearch", None, model_call=False)

    def _web_search_end(self, p: dict[str, Any]) -> None:
        self._complete_tool(p["call_id"], "WebSearch", _str(p.get("query")), output=None)

    def _view_image_tool_call(self, p: dict[str, Any]) -> None:
        self._complete_tool(p["call_id"], "ViewImage", _str(p.get("path")), output=None)

    def _clear_approval(self, p: dict[str, Any]) -> None:
        key = self._questions.pop(_str(p.get("call_id")) or "", None)
        if key is not None:
            self._emit(be.ApprovalCleared(key))

    def _exec_approval_request(self, p: dict[str, Any]) -> None:
        self._approval(p, "exec", command=command_text(p.get("command")),
                       cwd=_str(p.get("cwd")))

    def _apply_patch_approval_request(self, p: dict[str, Any]) -> None:
        self._approval(p, "patch", file_path=changed_paths(p.get("changes")))

    def _request_user_input(self, p: dict[str, Any]) -> None:
        self._ask(_str(p.get("call_id")) or self._fallback_id("q-"), p.get("questions"), p)

    def _elicitation_request(self, p: dict[str, Any]) -> None:
        self._approval(p, "elicitation", reason=_str(p.get("message")) or _str(p.get("server_name")))

    def _approval(self, p: dict[str, Any], kind: str, **fields: Any) -> None:
        call_id = _str(p.get("call_id")) or _str(p.get("id")) or self._fallback_id("a-")
        if call_id in self._questions:
            self.skipped += 1
            return
        key = ("rollout", call_id)
        self._questions[call_id] = key
        fields.setdefault("reason", _str(p.get("reason")))
        self._emit(be.ApprovalRequest(key=key, type=kind, method="rollout",
                                      turn_id=_str(p.get("turn_id")) or self._turn_id,
                                      payload=p, **fields))


# ---------------------------------------------------------------- payload shapes
# Tool labels follow upstream (Shell, Edit, MCP:<server>/<tool>, WebSearch, ...).
_LABELS = {"exec_command": "Shell", "shell": "Shell", "shell_command": "Shell",
           "local_shell_call": "Shell", "write_stdin": "Shell", "apply_patch": "Edit",
           "patch_apply": "Edit", "web_search": "WebSearch", "view_image": "ViewImage",
           "mcp_tool_call": "MCP", "tool_search_call": "ToolSearch"}
OLD_TOOL_EVENTS = ("exec_command_begin", "exec_command_end", "patch_apply_begin",
                   "patch_apply_end", "mcp_tool_call_begin", "mcp_tool_call_end",
                   "web_search_begin", "web_search_end", "view_image_tool_call",
                   "exec_approval_request", "apply_patch_approval_request",
                   "request_user_input", "elicitation_request")
ITEM_TOOLS = ("CommandExecution", "FileChange", "McpToolCall", "WebSearch")
_MAX_INPUT_CHARS = 4000  # tool inputs are for display; whole patches live in the file


def join_text(content: Any) -> str:
    """Text of a content array ({type: text|input_text|output_text|Text, text}) or a string."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [c if isinstance(c, str) else c.get("text") for c in content
             if isinstance(c, str) or isinstance(c, dict)]
    return "\n".join(t for t in parts if isinstance(t, str) and t)


def json_args(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str):
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= _MAX_INPUT_CHARS else text[:_MAX_INPUT_CHARS] + "…"


def command_text(command: Any) -> str | None:
    """["bash", "-lc", "ls"] -> "ls"; other argv lists joined; strings as they are."""
    if isinstance(command, str):
        return command
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        if len(command) == 3 and command[1] in ("-c", "-lc"):
            return command[2]
        return shlex.join(command)
    return None


def changed_paths(changes: Any) -> str | None:
    return "\n".join(changes) if isinstance(changes, dict) and changes else None


def call_start(p: dict[str, Any]) -> tuple[str, str | None]:
    """(label, input) for a model-issued call item."""
    rtype, name = p.get("type"), _str(p.get("name")) or ""
    namespace = _str(p.get("namespace"))
    if namespace and namespace.startswith("mcp__"):
        return f"MCP:{namespace[5:]}/{name}", _str(p.get("arguments"))
    if name.startswith("mcp__") and name.count("__") >= 2:
        _, server, tool = name.split("__", 2)
        return f"MCP:{server}/{tool}", _str(p.get("arguments"))
    if rtype == "custom_tool_call":
        return _LABELS.get(name, name or "tool"), _clip(_str(p.get("input")))
    if rtype == "local_shell_call":
        return "Shell", command_text(_dict(p.get("action")).get("command"))
    if rtype == "tool_search_call":
        return "ToolSearch", orjson.dumps(p.get("arguments")).decode()
    args = json_args(p.get("arguments"))
    if name in ("exec_command", "shell", "shell_command"):
        return "Shell", command_text(args.get("cmd") or args.get("command"))
    return _LABELS.get(name, name or "tool"), _clip(_str(p.get("arguments")))


def _duration_ms(duration: Any) -> int | None:
    if isinstance(duration, dict):
        return int(duration.get("secs", 0)) * 1000 + int(duration.get("nanos", 0)) // 1_000_000
    return None


def _status(status: Any, is_error: bool) -> str:
    if status == "declined":
        return "declined"
    return "failed" if is_error else "completed"


def std_output(p: dict[str, Any]) -> str | None:
    return "".join(s for s in (p.get("stdout"), p.get("stderr")) if isinstance(s, str)) or None


def exec_end_fields(p: dict[str, Any]) -> dict[str, Any]:
    code = p.get("exit_code")
    error = code not in (0, None)
    output = _str(p.get("aggregated_output")) or std_output(p)
    return {"output": output, "is_error": error, "duration_ms": _duration_ms(p.get("duration")),
            "status": _status(None, error)}


def mcp_invocation(invocation: Any) -> tuple[str, str | None]:
    inv = _dict(invocation)
    server, tool = _str(inv.get("server")), _str(inv.get("tool"))
    label = f"MCP:{server}/{tool}" if server and tool else "MCP"
    args = inv.get("arguments")
    return label, orjson.dumps(args).decode() if args is not None else None


def _mcp_result(result: Any) -> tuple[str | None, bool]:
    if isinstance(result, dict) and ("Ok" in result or "Err" in result):  # older Result shape
        if "Err" in result:
            return str(result["Err"]), True
        result = result["Ok"]
    if isinstance(result, dict):
        return join_text(result.get("content")) or None, bool(result.get("isError"))
    return None, False


def mcp_end_fields(p: dict[str, Any]) -> dict[str, Any]:
    output, error = _mcp_result(p.get("result"))
    return {"output": output, "is_error": error, "duration_ms": _duration_ms(p.get("duration")),
            "status": _status(None, error)}


def item_completion(item: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """(label, input, ToolCompleted fields) for a 0.169 item_completed tool item."""
    itype, status = item.get("type"), item.get("status")
    if itype == "CommandExecution":
        error = status in ("failed", "declined") or item.get("exit_code") not in (0, None)
        return "Shell", command_text(item.get("command")), {
            "output": _str(item.get("aggregated_output")), "is_error": error,
            "duration_ms": _duration_ms(item.get("duration")), "status": _status(status, error)}
    if itype == "FileChange":
        error = status not in ("completed", None)
        return "Edit", changed_paths(item.get("changes")), {
            "output": std_output(item), "is_error": error, "status": _status(status, error)}
    if itype == "McpToolCall":
        output, error = _mcp_result(item.get("result"))
        error = error or status == "failed" or bool(item.get("error"))
        label, tool_input = mcp_invocation(item)
        return label, tool_input, {
            "output": output or _str(_dict(item.get("error")).get("message")), "is_error": error,
            "duration_ms": _duration_ms(item.get("duration")), "status": _status(status, error)}
    return "WebSearch", _str(item.get("query")), {"output": None}


def _output_exit_code(text: str) -> int | None:
    for marker in ("Process exited with code ", "Exit code: "):
        i = text.find(marker, 0, 400)
        if i != -1:
            digits = text[i + len(marker):i + len(marker) + 6].split("\n", 1)[0].strip()
            return int(digits) if digits.lstrip("-").isdigit() else None
    return None


def output_fields(p: dict[str, Any]) -> dict[str, Any]:
    """ToolCompleted fields from a *_call_output item (plain, JSON-wrapped or part list)."""
    raw = p.get("output")
    if p.get("type") == "tool_search_output":
        names = [_str(t.get("name")) for t in p.get("tools") or [] if isinstance(t, dict)]
        return {"output": ", ".join(n for n in names if n) or None}
    text = join_text(raw)
    code = None
    if text.startswith("{"):
        wrapped = json_args(text)  # older versions: {"output": ..., "metadata": {"exit_code"}}
        if "output" in wrapped:
            text = _str(wrapped.get("output")) or ""
            code = _dict(wrapped.get("metadata")).get("exit_code")
    if code is None:
        code = _output_exit_code(text)
    error = code not in (0, None)
    return {"output": text or None, "is_error": error, "status": _status(None, error)}


def questions(raw: Any) -> list[dict[str, Any]]:
    """request_user_input questions in the protocol's Question shape."""
    out = []
    for i, q in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(q, dict):
            options = [o for o in q.get("options") or [] if isinstance(o, dict)]
            out.append({"id": _str(q.get("id")) or f"q{i}",
                        "question": _str(q.get("question")) or _str(q.get("header")) or "",
                        "header": _str(q.get("header")), "options": options})
    return out
