"""Claude Code hook payloads -> backend events, and approval decisions -> hook output.

Pure (no I/O). ``parse_hook`` checks one payload; a ``HookSession`` per Claude
session turns each hook into the backend events ``SessionCore`` understands
(``orbitdock.connectors.events``), following upstream OrbitDock's table
(``/work/shared/reference/upstream-orbitdock.md`` §4.3):

* SessionStart only says what the session is (``ThreadStarted``): the session is
  created by its first real activity, so ``claude -c`` bootstrap processes that only
  start and end leave no ghost.
* UserPromptSubmit opens a turn (working); Stop ends it: ``question`` when the agent
  ends by asking the person something (its last text ends with a question, or an
  AskUserQuestion of the turn is still unanswered; upstream's rule is the latter),
  else ``reply`` (``TurnCompleted.asks``); StopFailure fails it;
  Notification ``idle_prompt`` ends an open turn like Stop; SessionEnd ends the session.
* PreToolUse / PostToolUse / PostToolUseFailure / PermissionDenied track tool rows; a
  finished tool also clears its pending approval (the person answered in the terminal).
* PermissionRequest opens an approval (``approval_for_tool``): exec for Bash, patch
  for Edit / Write / NotebookEdit with a diff preview, question for AskUserQuestion.
  Its payload has no ``tool_use_id``: it belongs to the last PreToolUse of the same
  tool and input.
* SubagentStart / SubagentStop are tool rows named ``Agent:<type>`` (the compaction's
  own SubagentStop, ``agent_type`` "", is not a sub-agent).
* PreCompact starts a compaction (``ContextCompaction``: the row and ``is_compacting``
  Codex compactions show); the transcript's ``compact_boundary`` line ends it, or, if
  the transcript does not show one first, the next hook of the session's own work.

Tool rows come from two sources (hooks are live; the transcript has the results the
model saw): ``HookSession.dedupe`` lets the first start and the first completion of
a tool id through and drops the copy from the other source.

``approval_for_tool`` and ``permission_output`` are provider-neutral: a direct Claude
connector (``can_use_tool``) can shape its approvals and answers with them.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from orbitdock.claude.modes import PERMISSION_MODES
from orbitdock.claude.order import SUBAGENT_PREFIX
from orbitdock.connectors import events as be
from orbitdock.protocol.errors import ErrorCode, ProtocolError

SESSION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
# The events ``orbitdockctl hooks install`` registers; PermissionRequest blocks.
HANDLED_EVENTS = (
    "SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse",
    "PostToolUseFailure", "PermissionDenied", "Notification", "Stop", "StopFailure",
    "SubagentStart", "SubagentStop", "PreCompact", "SessionEnd",
)
BLOCKING_EVENTS = ("PermissionRequest",)
# Hooks that fire while a compaction runs (its summary agent's SubagentStop, the
# SessionStart "compact" that follows it) or say nothing about the session's work: they
# do not end a compaction.
COMPACTION_QUIET_EVENTS = ("PreCompact", "SubagentStart", "SubagentStop", "Notification",
                           "SessionStart")
EDIT_TOOLS = ("Edit", "Write", "NotebookEdit", "MultiEdit")
QUESTION_TOOL = "AskUserQuestion"
DIFF_MAX_CHARS = 65_536  # a patch approval's preview is cut beyond this
IDS_KEPT = 4096  # tool ids remembered per session for de-duplication (bounded memory)
# A question mark closing the text, maybe followed by closing quotes, brackets or markdown.
_ENDS_WITH_QUESTION = re.compile(r"[?\uff1f][\s*_`'\")\]\u00bb\u201d\u2019]*$")


def asks_the_person(text: str | None) -> bool:
    """Whether an assistant message ends by asking something (its last sentence is a
    question): the turn then waits for an answer, not merely for the next prompt."""
    return bool(text) and _ENDS_WITH_QUESTION.search(text) is not None


@dataclass(slots=True)
class Hook:
    """One checked hook payload."""

    event: str
    session_id: str
    payload: dict[str, Any]

    @property
    def transcript_path(self) -> str | None:
        path = self.payload.get("transcript_path")
        return path if isinstance(path, str) and path.startswith("/") else None

    @property
    def cwd(self) -> str | None:
        cwd = self.payload.get("cwd")
        return cwd if isinstance(cwd, str) and cwd else None


def parse_hook(event: str, raw: str | bytes) -> Hook:
    """Check one payload: a JSON object with a valid ``session_id`` and a known event
    (the forwarder's argument, which must agree with ``hook_event_name`` when present).
    Raises ``ProtocolError`` (``invalid_argument``) naming what is wrong."""
    if event not in HANDLED_EVENTS:
        raise ProtocolError(ErrorCode.INVALID_ARGUMENT,
                            f"event: unknown hook event {event!r}; expected one of "
                            f"{', '.join(HANDLED_EVENTS)}")
    if not raw or not raw.strip():
        raise ProtocolError(ErrorCode.INVALID_ARGUMENT, f"payload: empty {event} payload")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(ErrorCode.INVALID_ARGUMENT,
                            f"payload: {event} payload is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ProtocolError(ErrorCode.INVALID_ARGUMENT,
                            f"payload: {event} payload is not a JSON object")
    named = payload.get("hook_event_name")
    if named is not None and named != event:
        raise ProtocolError(ErrorCode.INVALID_ARGUMENT,
                            f"payload: hook_event_name {named!r} does not match {event!r}")
    session_id = payload.get("session_id")
    if not isinstance(session_id, str) or not SESSION_ID.match(session_id):
        raise ProtocolError(ErrorCode.INVALID_ARGUMENT,
                            f"payload: session_id {session_id!r} is missing or not an id")
    return Hook(event, session_id, payload)


def thread_started(hook: Hook) -> be.ThreadStarted:
    """What a hook says about its session (SessionStart carries the model)."""
    model = hook.payload.get("model")
    return be.ThreadStarted(thread_id=hook.session_id, model=model if isinstance(model, str)
                            else None, cwd=hook.cwd, transcript_path=hook.transcript_path)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _tool_output(response: Any) -> str:
    """A PostToolUse ``tool_response`` as text: Bash's stdout/stderr, else its JSON."""
    if isinstance(response, str):
        return response
    if isinstance(response, dict) and ("stdout" in response or "stderr" in response):
        out = str(response.get("stdout") or "")
        err = str(response.get("stderr") or "")
        return out + (("\n" if out else "") + err if err else "")
    return _json(response) if response is not None else ""


# ------------------------------------------------------------ approvals (provider-neutral)
def diff_preview(tool_name: str, tool_input: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(file_path, unified diff)`` of an edit tool's input, cut to DIFF_MAX_CHARS."""
    path = tool_input.get("file_path") or tool_input.get("notebook_path")
    path = str(path) if path else None
    if tool_name == "Write":
        old, new = "", str(tool_input.get("content", ""))
    elif tool_name == "NotebookEdit":
        old, new = "", str(tool_input.get("new_source", ""))
    elif tool_name == "MultiEdit":
        edits = tool_input.get("edits") or []
        old = "\n".join(str(e.get("old_string", "")) for e in edits if isinstance(e, dict))
        new = "\n".join(str(e.get("new_string", "")) for e in edits if isinstance(e, dict))
    else:
        old, new = str(tool_input.get("old_string", "")), str(tool_input.get("new_string", ""))
    name = path or "file"
    diff = "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))
    return path, diff[:DIFF_MAX_CHARS]


def questions_of(tool_input: dict[str, Any]) -> list[dict[str, Any]]:
    """AskUserQuestion's questions as orbitdock questions (ids ``q0``, ``q1``, …)."""
    out = []
    for index, q in enumerate(tool_input.get("questions") or []):
        if not isinstance(q, dict):
            continue
        options = [{"label": str(o.get("label", "")), "description": o.get("description")}
                   for o in q.get("options") or [] if isinstance(o, dict)]
        out.append({"id": f"q{index}", "question": str(q.get("question", "")),
                    "header": q.get("header"), "options": options, "is_other": True})
    return out


def approval_for_tool(key: Any, tool_name: str, tool_input: dict[str, Any], *,
                      cwd: str | None, suggestions: list[Any] | None,
                      method: str = "PermissionRequest") -> be.ApprovalRequest:
    """The approval a Claude permission prompt becomes."""
    payload = {"tool_name": tool_name, "tool_input": tool_input,
               "permission_suggestions": list(suggestions or [])}
    if tool_name == QUESTION_TOOL:
        return be.ApprovalRequest(key=key, type="question", method=method, cwd=cwd,
                                  questions=questions_of(tool_input), payload=payload)
    decisions = ["accept", "accept_for_session", "decline", "cancel"]
    if tool_name in EDIT_TOOLS:
        path, diff = diff_preview(tool_name, tool_input)
        return be.ApprovalRequest(key=key, type="patch", method=method, cwd=cwd, file_path=path,
                                  diff=diff, available_decisions=decisions, payload=payload,
                                  reason=f"{tool_name} {path or ''}".strip())
    command = tool_input.get("command")
    return be.ApprovalRequest(
        key=key, type="exec", method=method, cwd=cwd,
        command=str(command) if command is not None else f"{tool_name} {_json(tool_input)}",
        reason=str(tool_input.get("description") or tool_name),
        available_decisions=decisions, payload=payload)


def permission_output(decision: str, *, tool_name: str, tool_input: dict[str, Any],
                      suggestions: list[Any] | None = None,
                      answers: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """A PermissionRequest hook's stdout JSON for a client's decision.

    accept: allow; accept_for_session: allow and apply Claude's own session-scoped
    suggestions (``updatedPermissions``); decline: deny; cancel: deny and interrupt;
    answered (AskUserQuestion): allow with the answers filled into its input."""
    if decision == "answered":
        # What claude 2.1.332 takes (tests/test_claude_tui.py): allow, with the tool's
        # input plus ``answers`` = {question text: label} (a list of labels for a
        # multiSelect question); the model gets the tool result 'Your questions have been
        # answered: "Which color?"="Blue". …' (free text not among the labels: 'The user
        # answered: …'). claude -p offers no AskUserQuestion ("disabled for this session").
        chosen: dict[str, Any] = {}
        for index, q in enumerate(tool_input.get("questions") or []):
            labels = (answers or {}).get(f"q{index}")
            if labels and isinstance(q, dict):
                chosen[str(q.get("question", ""))] = (list(labels) if q.get("multiSelect")
                                                      else ", ".join(labels))
        verdict: dict[str, Any] = {"behavior": "allow",
                                   "updatedInput": {**tool_input, "answers": chosen}}
    elif decision in ("accept", "accept_for_session"):
        verdict = {"behavior": "allow"}
        session_scoped = [s for s in suggestions or []
                          if isinstance(s, dict) and s.get("destination") == "session"]
        if decision == "accept_for_session" and session_scoped:
            verdict["updatedPermissions"] = session_scoped
    else:
        verdict = {"behavior": "deny", "message": "Denied from orbitdock",
                   "interrupt": decision == "cancel"}
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": verdict}}


# ------------------------------------------------------------ one session's hooks
class HookSession:
    """Maps one Claude session's hooks to backend events; remembers the open turn, the
    tools started or completed (for de-duplication) and which tool a prompt is for."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.turn_id: str | None = None
        self._turns = 0
        self._started: OrderedDict[str, None] = OrderedDict()
        self._completed: OrderedDict[str, None] = OrderedDict()
        self._pre_tool: dict[str, str] = {}  # tool name + input -> tool_use_id (last PreToolUse)
        self._approvals: set[str] = set()  # keys of open approvals
        self._permissions = 0
        self._asking: str | None = None  # an AskUserQuestion of this turn not answered yet
        self._compacting: str | None = None  # the item id of a compaction under way
        self._closed_early: str | None = None  # ended by a hook before its boundary line
        self._compactions = 0
        self._last_text: str | None = None  # the turn's last assistant text (Stop's fallback)
        self._mode: str | None = None  # the permission mode claude last reported

    # -------------------------------------------------------- de-duplication
    @staticmethod
    def _remember(seen: OrderedDict[str, None], key: str) -> bool:
        if key in seen:
            return False
        seen[key] = None
        if len(seen) > IDS_KEPT:
            seen.popitem(last=False)
        return True

    def started(self, tool_id: str) -> bool:
        """Whether a start of this tool went out already (from either source)."""
        return tool_id in self._started

    def dedupe(self, events: list[Any]) -> list[Any]:
        """Drop a second start or completion of the same tool; a completion also clears
        the tool's open approval (answered in the terminal, or denied by Claude)."""
        out = []
        for event in events:
            if isinstance(event, be.ToolStarted):
                if not self._remember(self._started, event.item_id):
                    continue
                # the model's last move: a question to the person, or any other tool
                self._asking = event.item_id if event.tool_name == QUESTION_TOOL else None
            elif isinstance(event, be.ToolCompleted):
                if not self._remember(self._completed, event.item_id):
                    continue
                if event.item_id == self._asking and not event.is_error:
                    self._asking = None  # answered
                self._started.setdefault(event.item_id, None)
                if event.item_id in self._approvals:
                    self._approvals.discard(event.item_id)
                    out.append(be.ApprovalCleared(event.item_id))
            elif isinstance(event, be.AgentMessage):
                self._last_text = event.text
            elif isinstance(event, be.ContextCompaction) and event.completed:
                event = self._compaction_done(event)
                if event is None:
                    continue
            elif isinstance(event, be.UserMessage) and self.turn_id is None:
                out.append(self._open_turn(None))  # a prompt we saw no hook for
            out.append(event)
        return out

    def _open_turn(self, prompt_id: Any) -> be.TurnStarted:
        self._turns += 1
        self.turn_id = str(prompt_id) if prompt_id else f"{self.session_id}-t{self._turns}"
        self._asking = self._last_text = None
        return be.TurnStarted(self.turn_id)

    def _ensure_turn(self, hook: Hook) -> list[Any]:
        return [] if self.turn_id is not None else [self._open_turn(hook.payload.get("prompt_id"))]

    def _close_turn(self, status: str, error: str | None = None, *,
                    asks: bool = False) -> list[Any]:
        if self.turn_id is None:
            return []
        turn, self.turn_id = self.turn_id, None
        self._approvals.clear()  # TurnCompleted withdraws them in the core
        return [be.TurnCompleted(turn, status, error, asks=asks)]

    # -------------------------------------------------------- compaction
    def _compaction_done(self, done: be.ContextCompaction) -> be.ContextCompaction | None:
        """A transcript's boundary line: it ends the compaction under way (under that
        compaction's id); one a hook already ended is dropped; with none known (its
        PreCompact was lost) it is a finished compaction of its own."""
        if done.item_id == self._closed_early:
            return done  # the hooks' own end of it (``_end_compaction``)
        if self._compacting is not None:
            done = be.ContextCompaction(item_id=self._compacting, completed=True)
            self._compacting = None
            return done
        if self._closed_early is not None:
            self._closed_early = None
            return None
        return done

    def _end_compaction(self, hook: Hook) -> list[Any]:
        """Work after a compaction whose boundary line was not read yet: it is over."""
        if self._compacting is None or hook.event in COMPACTION_QUIET_EVENTS:
            return []
        self._closed_early, self._compacting = self._compacting, None
        return [be.ContextCompaction(item_id=self._closed_early, completed=True)]

    def _on_PreCompact(self, hook: Hook, answerable: bool) -> list[Any]:
        if self._compacting is not None:
            return []
        self._compactions += 1
        self._compacting = f"compact-{hook.payload.get('prompt_id') or 'none'}-{self._compactions}"
        self._closed_early = None
        return [be.ContextCompaction(item_id=self._compacting, completed=False)]

    # -------------------------------------------------------- hooks
    def events_for(self, hook: Hook, *, answerable: bool = True) -> list[Any]:
        """The backend events of one hook, in order. ``answerable``: a PermissionRequest
        whose forwarder is waiting (a replayed one opens no approval)."""
        handler = getattr(self, "_on_" + hook.event, None)
        events = handler(hook, answerable) if handler is not None else []
        return self._mode_change(hook) + self._end_compaction(hook) + events

    def _mode_change(self, hook: Hook) -> list[Any]:
        """The permission mode the terminal's claude runs in (every hook carries it; the
        person may switch it with shift-tab): the session's approval policy, as a direct
        Claude session's is."""
        mode = hook.payload.get("permission_mode")
        if mode not in PERMISSION_MODES or mode == self._mode:
            return []
        self._mode = mode
        return [be.ConfigApplied(approval_policy=mode)]

    def _on_UserPromptSubmit(self, hook: Hook, answerable: bool) -> list[Any]:
        events = self._close_turn("interrupted")  # a new prompt before the last one stopped
        return events + [self._open_turn(hook.payload.get("prompt_id"))]

    def _tool_key(self, hook: Hook) -> str:
        return f"{hook.payload.get('tool_name')}\n{_json(hook.payload.get('tool_input'))}"

    def _on_PreToolUse(self, hook: Hook, answerable: bool) -> list[Any]:
        p = hook.payload
        tool_id = str(p.get("tool_use_id") or "")
        events = self._ensure_turn(hook)
        if tool_id:
            self._pre_tool[self._tool_key(hook)] = tool_id
            if len(self._pre_tool) > IDS_KEPT:
                self._pre_tool.pop(next(iter(self._pre_tool)))
            events.append(be.ToolStarted(item_id=tool_id, tool_name=str(p.get("tool_name")),
                                         tool_input=_json(p.get("tool_input"))))
        return events

    def permission_key(self, hook: Hook) -> str:
        """The key of a PermissionRequest: its tool's id (the last PreToolUse with the same
        tool and input), else a number of its own."""
        key = self._pre_tool.get(self._tool_key(hook))
        if key is None:
            self._permissions += 1
            key = f"permission-{self._permissions}"
        return key

    def _on_PermissionRequest(self, hook: Hook, answerable: bool) -> list[Any]:
        p = hook.payload
        events = self._ensure_turn(hook)
        if not answerable:
            return events
        key = self.permission_key(hook)
        tool_input = p.get("tool_input") if isinstance(p.get("tool_input"), dict) else {}
        self._approvals.add(key)
        events.append(approval_for_tool(key, str(p.get("tool_name")), tool_input, cwd=hook.cwd,
                                        suggestions=p.get("permission_suggestions")))
        return events

    def clear_approval(self, key: str) -> list[Any]:
        """The forwarder stopped waiting with no decision: Claude asks in its terminal."""
        return []  # the approval stays pending until the tool finishes (see module doc)

    def _completed_tool(self, hook: Hook, output: str, *, status: str) -> list[Any]:
        p = hook.payload
        tool_id = str(p.get("tool_use_id") or "")
        if not tool_id:
            return []
        duration = p.get("duration_ms")
        return [be.ToolCompleted(item_id=tool_id, output=output, is_error=status != "completed",
                                 duration_ms=int(duration) if isinstance(duration, (int, float))
                                 else None, status=status, tool_name=str(p.get("tool_name")),
                                 tool_input=_json(p.get("tool_input")))]

    def _on_PostToolUse(self, hook: Hook, answerable: bool) -> list[Any]:
        return self._completed_tool(hook, _tool_output(hook.payload.get("tool_response")),
                                    status="completed")

    def _on_PostToolUseFailure(self, hook: Hook, answerable: bool) -> list[Any]:
        interrupted = bool(hook.payload.get("is_interrupt"))
        return self._completed_tool(hook, str(hook.payload.get("error") or ""),
                                    status="declined" if interrupted else "failed")

    def _on_PermissionDenied(self, hook: Hook, answerable: bool) -> list[Any]:
        return self._completed_tool(hook, str(hook.payload.get("reason") or "denied"),
                                    status="declined")

    def _on_Stop(self, hook: Hook, answerable: bool) -> list[Any]:
        text = hook.payload.get("last_assistant_message")
        # the payload's text (dropped from an oversized payload), else the transcript's
        asks = self._asking is not None or asks_the_person(
            text if isinstance(text, str) else self._last_text)
        events = self._close_turn("completed", asks=asks)
        if not events and isinstance(text, str):
            # a Stop with no turn open (hooks lost before a restart): still a reply
            events = [self._open_turn(hook.payload.get("prompt_id"))] + self._close_turn(
                "completed", asks=asks)
        return events

    def _on_StopFailure(self, hook: Hook, answerable: bool) -> list[Any]:
        error = hook.payload.get("last_assistant_message") or hook.payload.get("error")
        return self._close_turn("failed", str(error or "Claude stopped with an API error"))

    def _on_Notification(self, hook: Hook, answerable: bool) -> list[Any]:
        if hook.payload.get("notification_type") == "idle_prompt":  # a Stop we did not get
            return self._close_turn("completed", asks=self._asking is not None
                                    or asks_the_person(self._last_text))
        return []

    def _on_SubagentStart(self, hook: Hook, answerable: bool) -> list[Any]:
        agent = hook.payload.get("agent_id")
        if not agent:
            return []
        kind = hook.payload.get("agent_type") or "unknown"
        return self._ensure_turn(hook) + [be.ToolStarted(
            item_id=f"{SUBAGENT_PREFIX}{agent}", tool_name=f"Agent:{kind}", tool_input=_json(
                {"agent_id": agent, "agent_type": kind}))]

    def _on_SubagentStop(self, hook: Hook, answerable: bool) -> list[Any]:
        agent = hook.payload.get("agent_id")
        if not agent or hook.payload.get("agent_type") == "":
            return []  # no agent id, or the compaction's summary agent
        kind = hook.payload.get("agent_type") or "unknown"
        output = hook.payload.get("last_assistant_message")
        return [be.ToolCompleted(item_id=f"{SUBAGENT_PREFIX}{agent}", output=str(output or ""),
                                 tool_name=f"Agent:{kind}")]

    def _on_SessionEnd(self, hook: Hook, answerable: bool) -> list[Any]:
        events = self._close_turn("interrupted") if self.turn_id is not None else []
        return events + [be.BackendEnded(str(hook.payload.get("reason") or "session_end"))]
