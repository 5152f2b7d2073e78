"""One session's state machine: backend events in, revisioned wire events and writes out.

Pure (no threads, no sockets): the session actor owns one ``SessionCore`` and
does the I/O. Every wire event gets the next revision and is applied to the
state with ``orbitdock.session.reducer.apply_event`` — the same reducer clients run.

Status rules (the wire fields ``status``, ``work_status``, ``attention_reason``; their
types are ``orbitdock.protocol.models.Status``, ``WorkStatus``, ``AttentionReason``):

- ``status``: ``active`` from creation; ``end()`` (a client's end, or the backend's
  ``BackendEnded``) emits ``SessionEnded``, which the reducer turns into ``ended`` with
  ``work_status`` ``ended`` and ``attention_reason`` ``none``. Any later backend event
  other than ``BackendEnded`` makes it ``active`` again (``handle``), with the work status
  below.
- ``work_status`` is set only by ``_set_work``, which also sets ``attention_reason`` from
  it (``attention_for``: waiting/reply -> awaitingReply, permission -> awaitingPermission,
  question -> awaitingQuestion, otherwise none). It follows the head of the FIFO approval
  queue (``_idle_status``): an exec/patch/permission request means ``permission``, a
  question or elicitation means ``question``; with the queue empty a running turn is
  ``working``, a finished one ``reply`` (the agent answered; ``question`` when it ended
  the turn asking the person something, ``TurnCompleted.asks``) and an
  interrupted/failed/new one ``waiting`` (a new session starts ``waiting``/``awaitingReply``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Hashable

import msgspec

from orbitdock.session.approvals import ApprovalBook
from orbitdock.connectors import events as be
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import (
    ApprovalRequest,
    McpServer,
    Message,
    MessageChanges,
    SessionState,
    StateChanges,
    TokenUsage,
    WorkStatus,
    attention_for,
)
from orbitdock.session.display import display_name_of
from orbitdock.session.row import SessionRow
from orbitdock.session.tools import ToolRows
from orbitdock.store import commands as cmd
from orbitdock.session.reducer import apply_event, summary_of

LAST_MESSAGE_CHARS = 200
COMPACTING_TEXT = "Compacting the conversation's context…"
COMPACTED_TEXT = "Context compacted: the model continues from a summary of the conversation so far"
QUESTION_TYPES = ("question", "elicitation")

class SessionCore:
    def __init__(self, state: SessionState, clock: Callable[[], float] = time.time,
                 last_approval: int = 0, tool_output_max_chars: int = 262_144,
                 life: str = ""):
        """``last_approval``: the highest approval number the restored session ever had;
        ``life``: the daemon epoch, part of every approval id (``orbitdock.session.approvals``).

        ``tool_output_max_chars``: a tool row keeps at most about this much of its
        output, the tail (a build's last lines are the ones that matter). Bounded, a
        long-running command costs neither unbounded memory nor, per streamed chunk,
        a copy of everything it printed before."""
        self.state = state
        self.clock = clock
        self._approvals = ApprovalBook(state.id, state.approvals, last_approval, life)
        self._items: dict[str, str] = {}  # backend item id -> message id
        self.events: list[m.SessionEvent] = []
        self.commands: list[Any] = []
        self._ts = 0.0
        self._row = SessionRow()
        self._tools = ToolRows(state, self._items, append=self._append, update=self._update,
                               delta=self._delta, message=self._message,
                               output_max=tool_output_max_chars)

    # ------------------------------------------------------------ plumbing
    def drain(self) -> tuple[list[m.SessionEvent], list[Any]]:
        """Take the wire events and write commands produced since the last drain.

        The session row is written here, once per drain, with what changed since
        the last write: a burst of events drained together costs one row update,
        placed first (a new session's row must exist before its turns and messages)."""
        fields = self._row.changes(self.state)
        if fields:
            self.commands.insert(0, cmd.SaveSession(self.state.id, fields))
        events, commands = self.events, self.commands
        self.events, self.commands = [], []
        return events, commands

    def _emit(self, event: m.SessionEvent) -> None:
        event.rev = self.state.revision + 1
        event.ts = self._ts
        apply_event(self.state, event)
        self.events.append(event)

    def _delta(self, **changes: Any) -> None:
        """Emit a session_delta with only the fields that really change."""
        real = {k: v for k, v in changes.items() if getattr(self.state, k) != v}
        if not real:
            return
        self._emit(m.SessionDelta(session_id=self.state.id, rev=0,
                                  changes=StateChanges(**real)))

    def _persist_message(self, message: Message) -> None:
        self.commands.append(cmd.SaveMessage(self.state.id, msgspec.structs.replace(message)))

    def _message(self, message_id: str) -> Message | None:
        for msg in reversed(self.state.messages):
            if msg.id == message_id:
                return msg
        return None

    def _append(self, mtype: str, content: str, *, item_id: str | None = None,
                **fields: Any) -> Message:
        seq = self.state.total_message_count + 1
        message_id = f"{self.state.id}:m{seq}"
        msg = Message(id=message_id, seq=seq, type=mtype, content=content,
                      timestamp=self._ts, turn_id=self.state.current_turn_id, **fields)
        if item_id is not None:
            self._items[item_id] = message_id
        self._emit(m.MessageAppended(session_id=self.state.id, rev=0, message=msg))
        self._persist_message(self.state.messages[-1])
        return self.state.messages[-1]

    def _update(self, message_id: str, **changes: Any) -> None:
        self._emit(m.MessageUpdated(session_id=self.state.id, rev=0, message_id=message_id,
                                    changes=MessageChanges(**changes)))
        msg = self._message(message_id)
        if msg is not None:
            self._persist_message(msg)

    def _idle_status(self, default: WorkStatus) -> WorkStatus:
        if self.state.approvals:
            head = self.state.approvals[0]
            return "question" if head.type in QUESTION_TYPES else "permission"
        if self.state.current_turn_id is not None:
            return "reviewing" if self.state.is_reviewing else "working"
        return default

    def _set_work(self, work_status: WorkStatus, **more: Any) -> None:
        """The one setter of ``work_status`` (and ``attention_reason``): module docstring."""
        self._delta(work_status=work_status, attention_reason=attention_for(work_status), **more)

    def _rename(self, **names: Any) -> None:
        probe = msgspec.structs.replace(self.state)
        for key, value in names.items():
            setattr(probe, key, value)
        self._delta(**names, display_name=display_name_of(probe))

    # ------------------------------------------------------------ backend events
    def handle(self, event: Any, now: float | None = None) -> None:
        """Apply one BackendEvent; results accumulate until ``drain``."""
        self._ts = self.clock() if now is None else now
        if self.state.status == "ended" and not isinstance(event, (be.BackendEnded,)):
            self._delta(status="active", ended_at=None, end_reason=None)
            self._set_work(self._idle_status("waiting"))
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None:
            handler(event)

    def _on_ThreadStarted(self, ev: be.ThreadStarted) -> None:
        self._delta(thread_id=ev.thread_id, transcript_path=ev.transcript_path or self.state.transcript_path)
        self._on_ProjectInfo(be.ProjectInfo(cwd=ev.cwd, git_branch=ev.git_branch, model=ev.model))
        self._on_ConfigApplied(be.ConfigApplied(ev.approval_policy, ev.sandbox_mode, None,
                                                ev.effort))
        if ev.name:
            self._rename(custom_name=ev.name)

    def _on_ProjectInfo(self, ev: be.ProjectInfo) -> None:
        changes: dict[str, Any] = {}
        if ev.cwd:
            changes["project_path"] = ev.cwd
            changes["project_name"] = ev.project_name or os.path.basename(ev.cwd.rstrip("/")) or ev.cwd
        if ev.git_branch:
            changes["git_branch"] = ev.git_branch
        if ev.model:
            changes["model"] = ev.model
        if changes:
            self._delta(**changes)
            self._rename()

    def _on_ConfigApplied(self, ev: be.ConfigApplied) -> None:
        changes = {k: v for k, v in (("approval_policy", ev.approval_policy),
                                     ("sandbox_mode", ev.sandbox_mode), ("model", ev.model),
                                     ("effort", ev.effort)) if v}
        if changes:
            self._delta(**changes)

    def _on_TurnStarted(self, ev: be.TurnStarted) -> None:
        self._tools.new_turn()
        self._delta(current_turn_id=ev.turn_id, turn_count=self.state.turn_count + 1,
                    last_error=None, current_plan=None, plan_explanation=None, current_diff=None)
        self._set_work(self._idle_status("working"))
        self.commands.append(cmd.SaveTurn(self.state.id, ev.turn_id,
                                          {"status": "in_progress", "started_at": self._ts}))

    def _finish_open_messages(self) -> None:
        for msg in self.state.messages:
            if msg.is_in_progress:
                self._update(msg.id, is_in_progress=False)

    def _on_TurnCompleted(self, ev: be.TurnCompleted) -> None:
        turn_id = ev.turn_id or self.state.current_turn_id
        self._finish_open_messages()
        self._withdraw_approvals("turn_ended")
        self._delta(current_turn_id=None, last_error=ev.error if ev.status == "failed" else None,
                    is_compacting=False, is_reviewing=False)
        if ev.status == "failed" and ev.error:
            self._append("error", ev.error, is_error=True)
        if ev.status == "completed":
            self._set_work("question" if ev.asks else "reply")
        else:
            self._set_work("waiting")
        if turn_id:
            self.commands.append(cmd.SaveTurn(self.state.id, turn_id, {
                "status": ev.status, "ended_at": self._ts, "error": ev.error,
                "plan": self.state.current_plan, "plan_explanation": self.state.plan_explanation,
                "diff": self.state.current_diff}))
        self._items.clear()

    def _on_UserMessage(self, ev: be.UserMessage) -> None:
        self._append("user", ev.text, item_id=ev.item_id)
        first = self.state.first_prompt or ev.text
        self._delta(prompt_count=self.state.prompt_count + 1,
                    last_message=ev.text[:LAST_MESSAGE_CHARS])
        self._rename(first_prompt=first)

    def _stream(self, mtype: str, item_id: str, delta: str) -> None:
        message_id = self._items.get(item_id)
        if message_id is None or self._message(message_id) is None:
            self._append(mtype, delta, item_id=item_id, is_in_progress=True)
        else:
            self._update(message_id, content_append=delta)

    def _complete(self, mtype: str, item_id: str, text: str) -> None:
        message_id = self._items.get(item_id)
        if message_id is None or self._message(message_id) is None:
            self._append(mtype, text, item_id=item_id)
        else:
            self._update(message_id, content=text, is_in_progress=False)

    def _on_ToolStarted(self, ev: be.ToolStarted) -> None:
        self._tools.started(ev)

    def _on_ToolOutputDelta(self, ev: be.ToolOutputDelta) -> None:
        self._tools.output(ev)

    def _on_ToolCompleted(self, ev: be.ToolCompleted) -> None:
        self._tools.completed(ev)

    def _on_AgentMessageDelta(self, ev: be.AgentMessageDelta) -> None:
        self._stream("assistant", ev.item_id, ev.delta)

    def _on_AgentMessage(self, ev: be.AgentMessage) -> None:
        self._complete("assistant", ev.item_id, ev.text)
        self._delta(last_message=ev.text[:LAST_MESSAGE_CHARS])

    def _on_ReasoningDelta(self, ev: be.ReasoningDelta) -> None:
        self._stream("thinking", ev.item_id, ev.delta)

    def _on_Reasoning(self, ev: be.Reasoning) -> None:
        self._complete("thinking", ev.item_id, ev.text)

    def _on_ApprovalRequest(self, ev: be.ApprovalRequest) -> None:
        request = self._approvals.open(ev, self.state.current_turn_id, self._ts)
        self._emit(m.ApprovalRequested(session_id=self.state.id, rev=0, request=request))
        self.commands.append(cmd.SaveApproval(self.state.id, request))
        self._set_work(self._idle_status("waiting"))

    def _resolve(self, approval_id: str, decision: str) -> None:
        self._approvals.close(approval_id)
        self._emit(m.ApprovalResolved(session_id=self.state.id, rev=0, approval_id=approval_id,
                                      decision=decision))
        self.commands.append(cmd.DecideApproval(self.state.id, approval_id, decision, self._ts))
        self._set_work(self._idle_status("waiting"))

    def _on_ApprovalCleared(self, ev: be.ApprovalCleared) -> None:
        approval_id = self._approvals.id_for(ev.key)
        if approval_id is not None and self.approval(approval_id) is not None:
            decision = self._approvals.end(approval_id)
            self._resolve(approval_id, "withdrawn" if decision is None else decision)

    def _withdraw_approvals(self, decision: str) -> None:
        for approval in list(self.state.approvals):
            self._resolve(approval.id, decision)

    def _on_TokenUsageUpdated(self, ev: be.TokenUsageUpdated) -> None:
        usage = TokenUsage(input_tokens=ev.input_tokens, output_tokens=ev.output_tokens,
                           cached_tokens=ev.cached_tokens, reasoning_tokens=ev.reasoning_tokens,
                           total_tokens=ev.total_tokens, context_window=ev.context_window,
                           cost_usd=ev.cost_usd or self.state.token_usage.cost_usd)
        if usage != self.state.token_usage:
            self._delta(token_usage=usage)
            self.commands.append(cmd.SaveTokenUsage(self.state.id, msgspec.structs.asdict(usage),
                                                    self._ts))

    def _on_RateLimitsUpdated(self, ev: be.RateLimitsUpdated) -> None:
        self._delta(rate_limits=dict(ev.payload))

    def _on_PlanUpdated(self, ev: be.PlanUpdated) -> None:
        self._delta(current_plan=list(ev.plan), plan_explanation=ev.explanation)

    def _on_DiffUpdated(self, ev: be.DiffUpdated) -> None:
        self._delta(current_diff=ev.diff)

    def _on_NameUpdated(self, ev: be.NameUpdated) -> None:
        self._rename(custom_name=ev.name)

    def _on_ContextCompaction(self, ev: be.ContextCompaction) -> None:
        if ev.completed:
            self._complete("compaction", ev.item_id, COMPACTED_TEXT)
        else:
            self._stream("compaction", ev.item_id, COMPACTING_TEXT)
        self._delta(is_compacting=not ev.completed)

    def _on_ReviewStarted(self, ev: be.ReviewStarted) -> None:
        self._delta(is_reviewing=True)
        if self.state.current_turn_id is not None:
            self._set_work("reviewing")

    def _on_ReviewFinished(self, ev: be.ReviewFinished) -> None:
        result = ev.result or {"verdict": None, "explanation": ev.text, "findings": []}
        self._append("review", ev.text, item_id=ev.item_id, tool_name="review",
                     tool_output=msgspec.json.encode(result).decode())
        self._delta(is_reviewing=False, last_message=ev.text[:LAST_MESSAGE_CHARS])

    def _on_McpServersUpdated(self, ev: be.McpServersUpdated) -> None:
        known = {server.name: server for server in self.state.mcp_servers}
        for update in ev.servers:
            old = known.get(update["name"]) or McpServer(name=update["name"])
            tools = update.get("tools")
            tools = old.tools if tools is None else sorted(tools)
            known[old.name] = McpServer(
                name=old.name, state=update.get("state") or old.state, tools=tools,
                tool_count=len(tools), error=update.get("error", old.error))
        servers = sorted(known.values(), key=lambda s: s.name)
        self._delta(mcp_servers=servers, mcp_server_count=len(servers),
                    mcp_failed_count=sum(1 for s in servers if s.state == "failed"))

    def _on_ThreadArchived(self, ev: be.ThreadArchived) -> None:
        self._delta(is_archived=ev.archived)

    def _on_BackendError(self, ev: be.BackendError) -> None:
        self._delta(last_error=ev.message)
        self._append("error", ev.message, is_error=True)

    def _on_BackendLost(self, ev: be.BackendLost) -> None:
        # A dead backend cannot finish the turn or hear a decision: say so instead of
        # leaving the session "working" or an approval hanging.
        message = f"backend lost: {ev.reason}" + ("" if ev.fatal else " (resuming)")
        self._withdraw_approvals("backend_lost")
        if self.state.current_turn_id is not None:
            self._on_TurnCompleted(be.TurnCompleted(self.state.current_turn_id, "failed", message))
        self._delta(last_error=message)
        if ev.fatal:
            self._append("error", message, is_error=True)

    def _on_BackendRecovered(self, ev: be.BackendRecovered) -> None:
        self._delta(last_error=None)

    def _on_BackendEnded(self, ev: be.BackendEnded) -> None:
        self.end(ev.reason)

    # ------------------------------------------------------------ client actions
    def end(self, reason: str, now: float | None = None) -> None:
        if now is not None:
            self._ts = now
        if self.state.status == "ended":
            return
        self._finish_open_messages()
        self._withdraw_approvals("session_ended")
        self._delta(current_turn_id=None, ended_at=self._ts)
        self._emit(m.SessionEnded(session_id=self.state.id, rev=0, reason=reason))

    def begin_decision(self, approval_id: str, decision: str) -> Hashable:
        """Note a client's decision on its way to the backend; returns the key to answer.

        The approval stays queued until the backend accepts the answer, so a
        decision the backend rejects leaves it pending instead of lost.
        Raises KeyError when the approval is gone or already being decided.
        """
        if self.approval(approval_id) is None:
            raise KeyError(approval_id)
        return self._approvals.begin(approval_id, decision)

    def finish_decision(self, approval_id: str, accepted: bool, now: float | None = None) -> None:
        self._ts = self.clock() if now is None else now
        decision = self._approvals.end(approval_id)
        if accepted and decision is not None and self.approval(approval_id) is not None:
            self._resolve(approval_id, decision)

    def approval(self, approval_id: str) -> ApprovalRequest | None:
        return next((a for a in self.state.approvals if a.id == approval_id), None)

    def rename(self, name: str | None, now: float | None = None) -> None:
        self._ts = self.clock() if now is None else now
        self._rename(custom_name=name)

    def configure(self, now: float | None = None, **config: Any) -> None:
        self._ts = self.clock() if now is None else now
        self._delta(**{k: v for k, v in config.items() if v is not None})

    def rollback_plan(self, turns: int) -> tuple[str, int]:
        """(the first dropped turn's id, the first dropped message's seq) for dropping the
        last ``turns`` turns; ProtocolError(invalid_argument) when there are not that many
        in the session's memory window."""
        order: list[str] = []
        first_seq: dict[str, int] = {}
        for msg in self.state.messages:
            if msg.turn_id and msg.turn_id not in first_seq:
                order.append(msg.turn_id)
                first_seq[msg.turn_id] = msg.seq
        if turns > len(order):
            raise ProtocolError(ErrorCode.INVALID_ARGUMENT,
                                f"turns: cannot roll back {turns}; the session has "
                                f"{len(order)} turn(s) with messages to roll back")
        turn_id = order[-turns]
        return turn_id, first_seq[turn_id]

    def rollback(self, seq: int, now: float | None = None) -> int:
        """Drop every message from ``seq`` on (the backend already dropped their turns);
        returns how many. Subscribers get ``session_reset`` and take a fresh snapshot."""
        self._ts = self.clock() if now is None else now
        state = self.state
        dropped = [msg for msg in state.messages if msg.seq >= seq]
        turn_ids = list(dict.fromkeys(msg.turn_id for msg in dropped if msg.turn_id))
        state.messages = [msg for msg in state.messages if msg.seq < seq]
        count = state.total_message_count - seq + 1
        state.total_message_count = seq - 1
        state.turn_count = max(0, state.turn_count - len(turn_ids))
        state.prompt_count = max(0, state.prompt_count - sum(
            1 for msg in dropped if msg.type == "user"))
        kept = next((msg.content for msg in reversed(state.messages)
                     if msg.type in ("user", "assistant")), None)
        state.last_message = kept[:LAST_MESSAGE_CHARS] if kept else None
        state.current_diff = state.current_plan = state.plan_explanation = None
        self._items.clear()
        self.commands.append(cmd.Atomic([cmd.DropMessagesFrom(state.id, seq, turn_ids)]))
        self._emit(m.SessionReset(session_id=state.id, rev=0,
                                  reason=f"rolled back {len(turn_ids)} turn(s)"))
        return count

    def reset_after_restart(self, reason: str, now: float | None = None) -> None:
        """After a daemon or actor restart, nothing of a live turn survives: settle the status."""
        self._ts = self.clock() if now is None else now
        if self.state.status == "ended":
            return
        if self.state.current_turn_id is not None or self.state.approvals:
            self._tools.closed_by_restart()
            self._withdraw_approvals("expired")
            if self.state.current_turn_id is not None:
                self._on_TurnCompleted(be.TurnCompleted(self.state.current_turn_id, "interrupted",
                                                        reason))
            self._delta(last_error=reason)

    def summary(self):
        return summary_of(self.state)
