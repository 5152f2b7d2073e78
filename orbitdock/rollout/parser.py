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
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from orbitdock.connectors import events as be
from orbitdock.rollout import shapes
from orbitdock.rollout.lines import parse_time, sniff_skip
from orbitdock.rollout.naming import is_injected_context, name_from_first_prompt
from orbitdock.rollout.older_events import OlderVocabulary

logger = logging.getLogger(__name__)

__all__ = ["RolloutParser", "parse_time"]

_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)
_str, _dict = shapes.text_or_none, shapes.as_dict


class RolloutParser(OlderVocabulary):
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
        self.first_prompt_name: str | None = None  # name_from_first_prompt(first real prompt)
        self.line_time: float | None = None  # when codex wrote the line fed last
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
        self.cwd: str | None = None  # the latest cwd (session_meta, then turn_context)
        self._model: str | None = None
        self._config: tuple[Any, Any, Any] = (None, None, None)
        self._usage: be.TokenUsageUpdated | None = None
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
            "thread_name_updated": self._name_updated, "agent_reasoning_raw_content": None,
            "agent_reasoning_section_break": None,
            "context_compacted": None, "entered_review_mode": None, "exited_review_mode": None,
            "warning": None, "item_started": None,
        }
        self._events.update(self._older_events())

    # ------------------------------------------------------------ feeding
    def feed(self, line: bytes, end_offset: int) -> list[Any]:
        """Events for one line; ``end_offset`` (just past its newline) names and locates it."""
        self.lines += 1
        if sniff_skip(line):
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
        self.line_time = parse_time(obj.get("timestamp"))
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
        self.lines -= 1  # counted when it was first read
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
        self.cwd = _str(p.get("cwd"))
        self._model = _str(_dict(_dict(p.get("base_instructions")).get("provenance")).get("model"))
        self.meta = be.ThreadStarted(
            thread_id=thread_id, model=self._model, cwd=self.cwd,
            transcript_path=self.path or None,
            git_branch=_str(_dict(p.get("git")).get("branch")), name=self.codex_name,
            started_at=parse_time(p.get("timestamp")))
        self._emit(self.meta)

    def _turn_context(self, p: dict[str, Any]) -> None:
        self._turn_id = _str(p.get("turn_id")) or self._turn_id
        cwd, model = _str(p.get("cwd")) or self.cwd, _str(p.get("model")) or self._model
        if (cwd, model) != (self.cwd, self._model):
            self.cwd, self._model = cwd, model
            self._emit(be.ProjectInfo(cwd=cwd, model=model))
        sandbox = _dict(p.get("sandbox_policy"))
        self._apply_config(_str(p.get("approval_policy")),
                           _str(sandbox.get("type")) or _str(sandbox.get("mode")), model)

    def _apply_config(self, approval: str | None, sandbox: str | None, model: str | None) -> None:
        old = self._config
        new = (approval or old[0], sandbox or old[1], model or old[2])
        if new != old:
            self._config = new
            self._emit(be.ConfigApplied(approval_policy=approval, sandbox_mode=sandbox,
                                        model=model))

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
        self._done_tools.clear()
        self._emit(be.TurnStarted(turn_id=self._turn_id))

    def _end_turn(self, p: dict[str, Any], status: str, error: str | None) -> None:
        turn_id = _str(p.get("turn_id")) or self._turn_id
        self._turn_open, self._gate_closed = False, True
        self._open_tools.clear()
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
            self._user_text(shapes.join_text(item.get("content")), item_id, turn_id)
        elif itype == "AgentMessage":
            self._agent_text(shapes.join_text(item.get("content")), item_id, turn_id)
        elif itype == "ExitedReviewMode" and _str(item.get("review")):
            self._agent_text(item["review"], item_id, turn_id)
        elif itype == "Reasoning":
            text = shapes.join_text(item.get("summary_text") or item.get("summary"))
            if text:
                self._emit(be.Reasoning(item_id=item_id or self._fallback_id(), text=text,
                                        turn_id=turn_id or self._turn_id))
        elif itype in shapes.ITEM_TOOLS:
            label, tool_input, fields = shapes.item_completion(item)
            self._complete_tool(item_id or self._fallback_id(), label, tool_input, **fields)
        elif itype in ("ContextCompaction", "EnteredReviewMode", "ExitedReviewMode", "Plan",
                       "TodoList"):
            self.skipped += 1
        else:
            self.unknown[f"item:{itype}"] += 1

    # ------------------------------------------------------------ usage, settings, names
    def _token_count(self, p: dict[str, Any]) -> None:
        info = p.get("info")
        if isinstance(info, dict):
            total = info["total_token_usage"]
            if not isinstance(total, dict):
                raise TypeError("total_token_usage is not an object")
            usage = be.TokenUsageUpdated(
                input_tokens=int(total.get("input_tokens") or 0),
                output_tokens=int(total.get("output_tokens") or 0),
                cached_tokens=int(total.get("cached_input_tokens") or 0),
                reasoning_tokens=int(total.get("reasoning_output_tokens") or 0),
                total_tokens=int(total.get("total_tokens") or 0),
                context_window=int(info.get("model_context_window") or 0))
            if usage != self._usage:  # codex repeats the totals after aborts and resumes
                self._usage = usage
                self._emit(usage)
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
                       *, echo: bool = False, **fields: Any) -> None:
        if call_id in self._done_tools:
            self.skipped += 1  # the other half of an end pair
            return
        started = self._open_tools.pop(call_id, None)
        if started is None and echo:
            # A *_call_output of a call this parser never saw start: resumed between the
            # two halves of a pair whose first half was already delivered before the cut.
            self.skipped += 1
            return
        if started is None and self._gate_closed:
            self.gated += 1
            return
        self._done_tools.add(call_id)
        self._emit(be.ToolCompleted(item_id=call_id, tool_name=started or label,
                                    tool_input=None if started else tool_input, **fields))

    def _model_call(self, p: dict[str, Any]) -> None:
        call_id = _str(p.get("call_id")) or _str(p.get("id")) or self._fallback_id("call-")
        name = _str(p.get("name")) or ""
        if p.get("type") == "function_call" and name in ("request_user_input", "update_plan"):
            self._silent_calls.add(call_id)
            args = shapes.json_args(p.get("arguments"))
            if name == "update_plan":
                plan = args.get("plan")
                self._emit(be.PlanUpdated(plan=plan if isinstance(plan, list) else [],
                                          explanation=_str(args.get("explanation")),
                                          turn_id=self._turn_id))
            else:
                self._ask(call_id, args.get("questions"), p)
            return
        label, tool_input = shapes.call_start(p)
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
        self._complete_tool(call_id, "tool", None, echo=True, **shapes.output_fields(p))

    def _ask(self, call_id: str, questions: Any, payload: dict[str, Any]) -> None:
        if call_id in self._questions:
            self.skipped += 1
            return
        key = ("rollout", call_id)
        self._questions[call_id] = key
        self._emit(be.ApprovalRequest(key=key, type="question", method="rollout",
                                      turn_id=self._turn_id, questions=shapes.questions(questions),
                                      payload=payload))
