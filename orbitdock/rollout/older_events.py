"""The event_msg vocabulary codex wrote before 0.169, mixed into ``RolloutParser``.

Older rollouts carry chat messages as ``user_message`` / ``agent_message``,
tools as begin/end event pairs (``exec_command_*``, ``patch_apply_*``,
``mcp_tool_call_*``, ``web_search_*``) and approvals as request events; 0.169
writes none of these (reference §5). They map onto the same parser state as
the 0.169 items (the open tools, the gate, the pending questions), so this is
a mixin over that state rather than a parser of its own: it uses the host's
``_emit``, ``_user_text``, ``_agent_text``, ``_start_tool``, ``_complete_tool``
and ``_fallback_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orbitdock.connectors import events as be
from orbitdock.rollout import shapes

_str = shapes.text_or_none


class OlderVocabulary:
    _turn_id: str | None
    _questions: dict[str, Any]

    def _older_events(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        """event_msg subtype -> handler, for the parser's dispatch table."""
        handlers = {"user_message": self._old_user_message,
                    "agent_message": self._old_agent_message,
                    "agent_reasoning": self._old_reasoning, "error": self._old_error,
                    "plan_update": self._old_plan, "turn_diff": self._old_diff}
        handlers.update({name: getattr(self, "_" + name) for name in shapes.OLD_TOOL_EVENTS})
        return handlers

    # ------------------------------------------------------------ messages, plan, diff
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

    # ------------------------------------------------------------ tools and approvals
    def _exec_command_begin(self, p: dict[str, Any]) -> None:
        self._clear_approval(p)
        self._start_tool(p["call_id"], "Shell", shapes.command_text(p.get("command")),
                         model_call=False)

    def _exec_command_end(self, p: dict[str, Any]) -> None:
        self._clear_approval(p)
        self._complete_tool(p["call_id"], "Shell", shapes.command_text(p.get("command")),
                            **shapes.exec_end_fields(p))

    def _patch_apply_begin(self, p: dict[str, Any]) -> None:
        self._clear_approval(p)
        self._start_tool(p["call_id"], "Edit", shapes.changed_paths(p.get("changes")),
                         model_call=False)

    def _patch_apply_end(self, p: dict[str, Any]) -> None:
        self._clear_approval(p)
        ok = p.get("success") is not False
        self._complete_tool(p["call_id"], "Edit", None, output=shapes.std_output(p),
                            is_error=not ok, status="completed" if ok else "failed")

    def _mcp_tool_call_begin(self, p: dict[str, Any]) -> None:
        label, tool_input = shapes.mcp_invocation(p.get("invocation"))
        self._start_tool(p["call_id"], label, tool_input, model_call=False)

    def _mcp_tool_call_end(self, p: dict[str, Any]) -> None:
        label, tool_input = shapes.mcp_invocation(p.get("invocation"))
        self._complete_tool(p["call_id"], label, tool_input, **shapes.mcp_end_fields(p))

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
        self._approval(p, "exec", command=shapes.command_text(p.get("command")),
                       cwd=_str(p.get("cwd")))

    def _apply_patch_approval_request(self, p: dict[str, Any]) -> None:
        self._approval(p, "patch", file_path=shapes.changed_paths(p.get("changes")))

    def _request_user_input(self, p: dict[str, Any]) -> None:
        self._ask(_str(p.get("call_id")) or self._fallback_id("q-"), p.get("questions"), p)

    def _elicitation_request(self, p: dict[str, Any]) -> None:
        self._approval(p, "elicitation",
                       reason=_str(p.get("message")) or _str(p.get("server_name")))

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
