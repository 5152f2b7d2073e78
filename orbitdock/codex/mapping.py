"""app-server notifications and server requests -> orbitdock BackendEvents (pure, no I/O).

Shapes follow codex 0.169.0 (``codex app-server generate-json-schema``): every
per-thread notification carries ``threadId``; items are tagged by ``type``.
``ThreadMapper`` keeps the little per-thread state the translation needs (the
active turn, file changes awaiting a patch approval); it is owned by whichever
thread runs the session's sink, like the rest of that sink's state.

Also here, because they are equally pure: the shaping of replies to server
requests and of per-turn overrides, and model/list -> ModelOption.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from orbitdock.connectors import events as ev
from orbitdock.protocol.models import ModelOption

logger = logging.getLogger(__name__)

# orbitdock decision names -> codex v2 decision names; anything else passes through
# (a backend-specific value the request offered, e.g. acceptWithExecpolicyAmendment).
DECISIONS = {
    "accept": "accept", "approved": "accept", "approve": "accept",
    "accept_for_session": "acceptForSession", "approved_for_session": "acceptForSession",
    "decline": "decline", "denied": "decline", "deny": "decline", "reject": "decline",
    "cancel": "cancel", "abort": "cancel",
}
# the pre-v2 approval requests still in the schema answer with ReviewDecision names
LEGACY_DECISIONS = {"accept": "approved", "acceptForSession": "approved_for_session",
                    "decline": "denied", "cancel": "abort"}

# orbitdock/config sandbox mode -> the per-turn SandboxPolicy object turn/start wants
# codex's AskForApproval values (turn/start and thread/start accept each of them).
APPROVAL_POLICIES = ("untrusted", "on-failure", "on-request", "never")
SANDBOX_POLICIES = {
    "read-only": {"type": "readOnly"},
    "workspace-write": {"type": "workspaceWrite"},
    "danger-full-access": {"type": "dangerFullAccess"},
}
SANDBOX_MODES = {"readOnly": "read-only", "workspaceWrite": "workspace-write",
                 "dangerFullAccess": "danger-full-access", "externalSandbox": "external-sandbox"}

REQUEST_TYPES = {
    "item/commandExecution/requestApproval": "exec",
    "execCommandApproval": "exec",
    "item/fileChange/requestApproval": "patch",
    "applyPatchApproval": "patch",
    "item/tool/requestUserInput": "question",
    "item/permissions/requestApproval": "permissions",
    "mcpServer/elicitation/request": "elicitation",
}

TOOL_ITEMS = ("commandExecution", "fileChange", "mcpToolCall", "webSearch", "dynamicToolCall")


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def sandbox_policy(mode: str | None) -> dict[str, Any] | None:
    return dict(SANDBOX_POLICIES[mode]) if mode in SANDBOX_POLICIES else None


def sandbox_mode(policy: Any) -> str | None:
    """The thread/start result's SandboxPolicy object back to the mode string."""
    if isinstance(policy, str):
        return policy
    if isinstance(policy, dict):
        return SANDBOX_MODES.get(policy.get("type", ""), policy.get("type"))
    return None


APPROVAL_POLICIES = ("untrusted", "on-failure", "on-request", "never")


def override_problem(sandbox_mode: str | None, approval_policy: str | None) -> str | None:
    """Why codex would refuse these per-turn overrides, or None."""
    if sandbox_mode is not None and sandbox_mode not in SANDBOX_POLICIES:
        return f"sandbox: unknown {sandbox_mode!r}; expected one of {', '.join(SANDBOX_POLICIES)}"
    if approval_policy is not None and approval_policy not in APPROVAL_POLICIES:
        return (f"approval policy: unknown {approval_policy!r}; expected one of "
                f"{', '.join(APPROVAL_POLICIES)}")
    return None


def efforts_by_model(result: dict[str, Any]) -> dict[str, list[str]]:
    """model/list's result -> model slug -> the reasoning efforts it supports."""
    return {option.model: option.supported_reasoning_efforts
            for option in model_options(result.get("data") or [])}


def mcp_servers(result: dict[str, Any], states: dict[str, str]) -> list[dict[str, Any]]:
    """mcpServerStatus/list -> McpServersUpdated entries; ``states``: the last start-up
    state codex announced per server (the list itself carries none)."""
    out = []
    for server in result.get("data") or []:
        name = server.get("name", "?")
        error = server.get("toolsError")
        state = states.get(name) or ("failed" if error else "ready")
        out.append({"name": name, "state": state, "error": error,
                    "tools": list(server.get("tools") or {})})
    return out


def approval_policy_name(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _json(value)  # a granular policy object: keep it visible, not lost


def tool_name(item: dict[str, Any]) -> str:
    kind = item.get("type")
    if kind == "commandExecution":
        return "Shell"
    if kind == "fileChange":
        return "Edit"
    if kind == "mcpToolCall":
        return f"MCP:{item.get('server', '?')}/{item.get('tool', '?')}"
    if kind == "webSearch":
        return "WebSearch"
    return str(item.get("tool") or kind)


def patch_diff(changes: list[dict[str, Any]]) -> str:
    """One unified diff text for a fileChange item (codex gives a diff per file).

    For adds codex's ``diff`` is the new file's content, for updates a unified
    diff body; both get ---/+++ headers so a client renders one format.
    """
    parts = []
    for change in changes or []:
        path = change.get("path", "")
        kind = (change.get("kind") or {}).get("type")
        body = change.get("diff") or ""
        if body.startswith(("diff --git", "--- ")):
            parts.append(body)
            continue
        if kind == "add":
            lines = "".join(f"+{line}\n" for line in body.splitlines())
            parts.append(f"--- /dev/null\n+++ {path}\n{lines}")
        elif kind == "delete":
            lines = "".join(f"-{line}\n" for line in body.splitlines())
            parts.append(f"--- {path}\n+++ /dev/null\n{lines}")
        else:
            dest = (change.get("kind") or {}).get("move_path") or path
            parts.append(f"--- {path}\n+++ {dest}\n{body}")
    return "\n".join(p.rstrip("\n") + "\n" for p in parts if p)


def _flatten_decisions(raw: Any) -> list[str]:
    out = []
    for decision in raw or []:
        if isinstance(decision, str):
            out.append(decision)
        elif isinstance(decision, dict) and decision:
            out.append(next(iter(decision)))
    return out


def _user_text(content: list[dict[str, Any]] | None) -> str:
    return "\n".join(part.get("text", "") for part in content or [] if part.get("type") == "text")


class ThreadMapper:
    """Translates one thread's notifications; remembers only what later ones need."""

    def __init__(self) -> None:
        self.turn_id: str | None = None  # the active turn (for interrupt/steer)
        self._root_turn_id: str | None = None  # a review turn completes under its root id
        self._review_text: str | None = None  # the last review, until its turn completes
        self._changes: dict[str, list[dict[str, Any]]] = {}  # fileChange item -> changes

    def reset(self) -> None:
        """The process hosting the thread died: nothing in flight survives."""
        self.turn_id = None
        self._changes.clear()

    # ------------------------------------------------------------ notifications
    def notification(self, method: str, p: dict[str, Any]) -> list[ev.BackendEvent]:
        handler = _NOTIFICATIONS.get(method)
        if handler is None:
            logger.debug("ignoring app-server notification %s", method)
            return []
        return handler(self, p)

    def _turn_started(self, p: dict[str, Any]) -> list[ev.BackendEvent]:
        turn = p.get("turn") or {}
        self.turn_id = turn.get("id")
        self._root_turn_id = turn.get("rootTurnId")
        return [ev.TurnStarted(turn_id=turn.get("id", ""))]

    def _turn_completed(self, p: dict[str, Any]) -> list[ev.BackendEvent]:
        turn = p.get("turn") or {}
        turn_id = turn.get("id")
        if self.turn_id and turn_id == self._root_turn_id:
            turn_id = self.turn_id  # review turns start under one id and complete under the root
        if turn_id == self.turn_id:
            self.turn_id = None
        self._changes.clear()
        self._review_text = None
        error = turn.get("error") or None
        message = error.get("message") if isinstance(error, dict) else None
        return [ev.TurnCompleted(turn_id=turn_id, status=turn.get("status", "completed"),
                                 error=message)]

    def _item_started(self, p: dict[str, Any]) -> list[ev.BackendEvent]:
        item = p.get("item") or {}
        kind = item.get("type")
        if kind not in TOOL_ITEMS and kind not in ("contextCompaction", "enteredReviewMode"):
            return []
        item_id = item.get("id", "")
        if kind == "contextCompaction":
            return [ev.ContextCompaction(item_id=item_id, completed=False)]
        if kind == "enteredReviewMode":
            self._review_text = None
            return [ev.ReviewStarted(item_id=item_id, description=item.get("review") or "")]
        if kind == "commandExecution":
            tool_input = item.get("command")
        elif kind == "fileChange":
            changes = item.get("changes") or []
            self._changes[item_id] = changes
            paths = [c.get("path") for c in changes]
            tool_input = _json({"file_path": paths[0] if paths else None, "paths": paths,
                                "unified_diff": patch_diff(changes)})
        elif kind == "webSearch":
            tool_input = item.get("query")
        else:
            tool_input = _json(item.get("arguments"))
        return [ev.ToolStarted(item_id=item_id, tool_name=tool_name(item), tool_input=tool_input,
                               turn_id=p.get("turnId"))]

    def _item_completed(self, p: dict[str, Any]) -> list[ev.BackendEvent]:
        item = p.get("item") or {}
        kind, item_id, turn_id = item.get("type"), item.get("id", ""), p.get("turnId")
        if kind == "exitedReviewMode":
            self._review_text = item.get("review") or ""
            return [ev.ReviewFinished(item_id=item_id, text=self._review_text)]
        if kind == "agentMessage":
            if self._review_text is not None and item.get("text") == self._review_text:
                return []  # codex repeats the review as a message: shown once, as the review
            return [ev.AgentMessage(item_id=item_id, text=item.get("text", ""), turn_id=turn_id)]
        if kind == "userMessage":
            return [ev.UserMessage(text=_user_text(item.get("content")), item_id=item_id,
                                   turn_id=turn_id)]
        if kind == "reasoning":
            text = "\n\n".join(item.get("summary") or []) or "\n\n".join(item.get("content") or [])
            return [ev.Reasoning(item_id=item_id, text=text, turn_id=turn_id)] if text else []
        if kind == "contextCompaction":  # codex 0.169 sends no thread/compacted: this is the end
            return [ev.ContextCompaction(item_id=item_id, completed=True)]
        if kind not in TOOL_ITEMS:
            return []
        status = item.get("status") or "completed"
        status = status if status in ("completed", "failed", "declined") else "completed"
        output: str | None
        is_error = status == "failed"
        if kind == "commandExecution":
            output = item.get("aggregatedOutput")
            is_error = is_error or item.get("exitCode") not in (0, None)
        elif kind == "fileChange":
            self._changes.pop(item_id, None)
            output = {"completed": "Applied successfully", "declined": "Declined"}.get(
                status, "Failed")
        elif kind == "mcpToolCall":
            err = item.get("error")
            output = err.get("message") if isinstance(err, dict) else (
                _json(item.get("result")) if item.get("result") is not None else None)
            is_error = is_error or bool(err)
        elif kind == "webSearch":
            output = _json(item.get("action")) if item.get("action") is not None else None
        else:
            output = _json(item.get("contentItems"))
            is_error = is_error or item.get("success") is False
        return [ev.ToolCompleted(item_id=item_id, output=output, is_error=is_error,
                                 duration_ms=item.get("durationMs"), status=status,
                                 tool_name=tool_name(item))]

    def _summary_part(self, p: dict[str, Any]) -> list[ev.BackendEvent]:
        # Deltas concatenated must equal the completed text ("\n\n".join(summary)).
        if int(p.get("summaryIndex") or 0) > 0:
            return [ev.ReasoningDelta(item_id=p.get("itemId", ""), delta="\n\n",
                                      turn_id=p.get("turnId"))]
        return []

    def _token_usage(self, p: dict[str, Any]) -> list[ev.BackendEvent]:
        usage = p.get("tokenUsage") or {}
        total = usage.get("total") or {}
        return [ev.TokenUsageUpdated(
            input_tokens=total.get("inputTokens", 0) or 0,
            output_tokens=total.get("outputTokens", 0) or 0,
            cached_tokens=total.get("cachedInputTokens", 0) or 0,
            reasoning_tokens=total.get("reasoningOutputTokens", 0) or 0,
            total_tokens=total.get("totalTokens", 0) or 0,
            context_window=usage.get("modelContextWindow") or 0)]

    def _error(self, p: dict[str, Any]) -> list[ev.BackendEvent]:
        err = p.get("error") or {}
        message = err.get("message") if isinstance(err, dict) else str(err)
        if p.get("willRetry"):
            message = f"{message} (retrying)"
        return [ev.BackendError(message=message or "codex reported an error")]

    # ------------------------------------------------------------ server requests
    def server_request(self, key: Any, method: str, p: dict[str, Any]) -> ev.ApprovalRequest:
        kind = REQUEST_TYPES.get(method, "generic")
        base = dict(key=key, type=kind, method=method, turn_id=p.get("turnId"))
        if kind == "exec":
            command = p.get("command")
            if isinstance(command, list):  # legacy execCommandApproval: argv
                command = " ".join(command)
            return ev.ApprovalRequest(
                **base, command=command, cwd=p.get("cwd"), reason=p.get("reason"),
                available_decisions=_flatten_decisions(p.get("availableDecisions")),
                payload={k: p[k] for k in ("itemId", "approvalId", "proposedExecpolicyAmendment")
                         if p.get(k) is not None})
        if kind == "patch":
            changes = self._changes.get(p.get("itemId", ""), [])
            return ev.ApprovalRequest(
                **base, file_path=changes[0].get("path") if changes else p.get("grantRoot"),
                diff=patch_diff(changes) or None, reason=p.get("reason"),
                payload={k: p[k] for k in ("itemId", "grantRoot") if p.get(k) is not None})
        if kind == "question":
            return ev.ApprovalRequest(**base, questions=list(p.get("questions") or []),
                                      payload={"itemId": p.get("itemId")})
        if kind == "permissions":
            return ev.ApprovalRequest(**base, cwd=p.get("cwd"), reason=p.get("reason"),
                                      payload=dict(p))
        if kind == "elicitation":
            return ev.ApprovalRequest(**base, reason=p.get("message") or p.get("description"),
                                      payload=dict(p))
        return ev.ApprovalRequest(**base, payload=dict(p))


_NOTIFICATIONS = {
    "turn/started": ThreadMapper._turn_started,
    "turn/completed": ThreadMapper._turn_completed,
    "item/started": ThreadMapper._item_started,
    "item/completed": ThreadMapper._item_completed,
    "item/agentMessage/delta": lambda self, p: [ev.AgentMessageDelta(
        item_id=p.get("itemId", ""), delta=p.get("delta", ""), turn_id=p.get("turnId"))],
    "item/reasoning/summaryTextDelta": lambda self, p: [ev.ReasoningDelta(
        item_id=p.get("itemId", ""), delta=p.get("delta", ""), turn_id=p.get("turnId"))],
    "item/reasoning/summaryPartAdded": ThreadMapper._summary_part,
    "item/commandExecution/outputDelta": lambda self, p: [ev.ToolOutputDelta(
        item_id=p.get("itemId", ""), delta=p.get("delta", ""))],
    "item/fileChange/outputDelta": lambda self, p: [ev.ToolOutputDelta(
        item_id=p.get("itemId", ""), delta=p.get("delta", ""))],
    "turn/plan/updated": lambda self, p: [ev.PlanUpdated(
        plan=list(p.get("plan") or []), explanation=p.get("explanation"), turn_id=p.get("turnId"))],
    "turn/diff/updated": lambda self, p: [ev.DiffUpdated(diff=p.get("diff", ""),
                                                         turn_id=p.get("turnId"))],
    "thread/tokenUsage/updated": ThreadMapper._token_usage,
    "account/rateLimits/updated": lambda self, p: [ev.RateLimitsUpdated(
        payload=dict(p.get("rateLimits") or {}))],
    "thread/name/updated": lambda self, p: [ev.NameUpdated(name=p.get("threadName"))],
    "mcpServer/startupStatus/updated": lambda self, p: [ev.McpServersUpdated(servers=[{
        "name": p.get("name", "?"), "state": p.get("status"), "error": p.get("error")}])],
    "error": ThreadMapper._error,
    "serverRequest/resolved": lambda self, p: [ev.ApprovalCleared(key=p.get("requestId"))],
}


# ---------------------------------------------------------------- replies / params
def build_reply(method: str, params: dict[str, Any], decision: str | None,
                answers: dict[str, list[str]] | None) -> dict[str, Any]:
    """The JSON-RPC ``result`` that answers server request ``method``."""
    codex = DECISIONS.get(decision or "", decision) if decision else None
    refused = codex in ("decline", "cancel")  # any other decision ("answered"...) gives answers
    if method == "item/tool/requestUserInput":
        chosen = {} if refused else answers or {}
        return {"answers": {qid: {"answers": list(vals)} for qid, vals in chosen.items()}}
    if method == "item/permissions/requestApproval":
        if codex in ("accept", "acceptForSession"):
            return {"permissions": params.get("permissions") or {},
                    "scope": "session" if codex == "acceptForSession" else "turn"}
        return {"permissions": {}}
    if method == "mcpServer/elicitation/request":
        action = codex if refused else "accept"
        content = None
        if action == "accept":
            content = {k: (v[0] if len(v) == 1 else list(v)) for k, v in (answers or {}).items()}
        return {"action": action, "content": content}
    if method in ("applyPatchApproval", "execCommandApproval"):
        return {"decision": LEGACY_DECISIONS.get(codex or "decline", codex)}
    if method == "item/tool/call":  # dynamic tools: orbitdock registers none
        return {"contentItems": [], "success": False}
    codex = codex or "decline"
    # A decision the request offered as an object (e.g. acceptWithExecpolicyAmendment)
    # must be sent back as that object, not as its bare name.
    for offered in params.get("availableDecisions") or []:
        if isinstance(offered, dict) and codex in offered:
            return {"decision": offered}
    return {"decision": codex}


def thread_started(result: dict[str, Any], *, fallback_cwd: str | None) -> ev.ThreadStarted:
    thread = result.get("thread") or {}
    git = thread.get("gitInfo") or {}
    return ev.ThreadStarted(
        thread_id=thread.get("id", ""), model=result.get("model") or thread.get("model"),
        cwd=result.get("cwd") or thread.get("cwd") or fallback_cwd,
        transcript_path=thread.get("path"),
        approval_policy=approval_policy_name(result.get("approvalPolicy")),
        sandbox_mode=sandbox_mode(result.get("sandbox")),
        effort=result.get("reasoningEffort") or thread.get("reasoningEffort"),
        git_branch=git.get("branch") if isinstance(git, dict) else None,
        name=thread.get("name"), started_at=thread.get("createdAt"))


def model_options(data: list[dict[str, Any]]) -> list[ModelOption]:
    out = []
    for m in data or []:
        if m.get("hidden"):
            continue
        efforts = [e.get("reasoningEffort") if isinstance(e, dict) else str(e)
                   for e in m.get("supportedReasoningEfforts") or []]
        out.append(ModelOption(id=m.get("id", ""), model=m.get("model") or m.get("id", ""),
                               display_name=m.get("displayName") or "",
                               description=m.get("description") or "",
                               is_default=bool(m.get("isDefault")),
                               supported_reasoning_efforts=[e for e in efforts if e]))
    return out
