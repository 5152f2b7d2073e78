"""What the MCP tools do, as plain functions over the daemon's protocol (no MCP here).

``Supervision`` turns each tool call into protocol requests through a ``Client`` of the
daemon and shapes the replies into JSON-able dicts an agent can read. A refusal
(unknown session, a passive session's action, a stale approval, the daemon down)
raises ``ToolRefused`` with a message that says what to do instead; the MCP layer
turns it into a tool error, never a crash of the server.

Gating: orbitdock only watches passive sessions (started in a terminal), so every
action on them is refused, except deciding their approvals (a Claude session's
permission prompts routed through orbitdock's hooks). With ``read_only`` only the
read tools exist.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import msgspec

from orbitdock.client import Client, ClientError, DaemonNotRunning, Endpoints, RemoteError, \
    RequestTimeout
from orbitdock.config import McpConfig
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import SessionState, SessionSummary

DECISIONS = ("approved", "approved_for_session", "denied", "abort")
QUESTION_TYPES = ("question", "elicitation")


class ToolRefused(Exception):
    """A tool call the daemon (or the gate) refused; the message is for the agent."""


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


class Supervision:
    """The tools' logic. Thread-safe: each calling thread gets its own ``Client``."""

    def __init__(self, endpoints: Callable[[], Endpoints], config: McpConfig, *,
                 client_name: str = "orbitdock-mcp", read_only: bool = False):
        self._endpoints = endpoints  # looked up per client: the daemon may restart
        self._cfg = config
        self._timeout_s = config.request_timeout_s
        self.client_name = client_name
        self.read_only = read_only
        self._local = threading.local()

    # ------------------------------------------------------------ plumbing
    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(self._endpoints(), timeout=self._timeout_s)
            self._local.client = client
        return client

    def request(self, msg: m.Request) -> m.Reply:
        """One request; every failure becomes a ``ToolRefused`` the agent can act on."""
        if msg.__struct_config__.tag not in READ_REQUESTS:
            if self.read_only:
                raise ToolRefused("this orbitdock MCP server is read-only (--read-only)")
            msg.client = self.client_name  # the daemon logs the action with who took it
        try:
            return self._client().request(msg)
        except DaemonNotRunning as exc:
            self._drop_client()
            raise ToolRefused(f"the orbitdock daemon is not running: {exc}") from None
        except RequestTimeout:
            self._drop_client()  # a late reply must not be read as the next one's
            raise ToolRefused("the orbitdock daemon did not answer in time") from None
        except RemoteError as exc:
            raise ToolRefused(f"{exc.code}: {exc.message}") from None
        except ClientError as exc:
            self._drop_client()
            raise ToolRefused(f"cannot reach the orbitdock daemon: {exc}") from None

    def _drop_client(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None

    def _state(self, session_id: str) -> SessionState:
        return self.request(m.SubscribeSession(session_id=session_id)).session

    def _controllable(self, session_id: str) -> SessionState:
        state = self._state(session_id)
        if state.integration_mode == "passive":
            raise ToolRefused(f"session {session_id} was started in a terminal: orbitdock only "
                              "watches it (its approvals can still be decided)")
        return state

    # ------------------------------------------------------------ read tools
    def list_sessions(self, *, provider: str | None = None, status: str | None = None,
                      needs_attention: bool | None = None,
                      controllable_only: bool = False) -> list[dict[str, Any]]:
        rows = self.request(m.SubscribeList()).sessions
        picked = [s for s in rows
                  if (provider in (None, "", "any") or s.provider == provider)
                  and (status in (None, "") or status in (s.status, s.work_status))
                  and (needs_attention is None
                       or (s.attention_reason != "none" and s.status == "active")
                       == needs_attention)
                  and (not controllable_only or s.integration_mode != "passive")]
        picked.sort(key=_attention_first)
        return [_summary_row(s) for s in picked]

    def get_session(self, session_id: str, *, messages: int = 20) -> dict[str, Any]:
        state = self._state(session_id)
        out = _summary_row(state)
        out.update(
            controllable=state.integration_mode != "passive",
            pending_approvals=[_approval_row(a) for a in state.approvals],
            plan=_plain(state.current_plan), plan_explanation=state.plan_explanation,
            token_usage=_plain(state.token_usage), last_error=state.last_error,
            current_turn_id=state.current_turn_id,
            messages=[_message_row(msg) for msg in state.messages[-messages:]]
            if messages > 0 else [])
        return out

    def get_messages(self, session_id: str, *, before_seq: int | None = None,
                     limit: int = 50) -> dict[str, Any]:
        page = self.request(m.GetMessages(session_id=session_id, before_seq=before_seq,
                                          limit=max(1, min(limit, 1000))))
        return {"session_id": session_id, "has_more_before": page.has_more_before,
                "messages": [_message_row(msg) for msg in page.messages]}

    def list_models(self, *, provider: str = "codex") -> list[dict[str, Any]]:
        return [_plain(model) for model in self.request(m.ListModels(provider=provider)).models]

    # ------------------------------------------------------------ actions
    def send_message(self, session_id: str, message: str, *, model: str | None = None,
                     effort: str | None = None) -> dict[str, Any]:
        self._controllable(session_id)
        fields: dict[str, Any] = {}
        overrides = {"model": model, "effort": effort}
        for name, value in overrides.items():
            if value is None:
                continue
            if name in m.SendMessage.__struct_fields__:
                fields[name] = value  # the daemon checks it against the provider's catalog
            elif name == "model":
                self.request(m.UpdateSessionConfig(session_id=session_id, model=value))
            else:
                raise ToolRefused(f"{name} per message is not supported by this daemon")
        reply = self.request(m.SendMessage(session_id=session_id, content=message, **fields))
        return {"session_id": session_id, "sent": True, **reply.result}

    def steer_turn(self, session_id: str, message: str) -> dict[str, Any]:
        self._controllable(session_id)
        reply = self.request(m.SteerTurn(session_id=session_id, content=message))
        return {"session_id": session_id, "steered": True, **reply.result}

    def interrupt_turn(self, session_id: str) -> dict[str, Any]:
        self._controllable(session_id)
        self.request(m.InterruptSession(session_id=session_id))
        return {"session_id": session_id, "interrupted": True}

    def create_session(self, *, provider: str, cwd: str, model: str | None = None,
                       approval_policy: str | None = None, sandbox_mode: str | None = None,
                       name: str | None = None) -> dict[str, Any]:
        reply = self.request(m.CreateSession(provider=provider, cwd=cwd, model=model,
                                             approval_policy=approval_policy,
                                             sandbox_mode=sandbox_mode, name=name))
        return _summary_row(reply.session)

    def end_session(self, session_id: str) -> dict[str, Any]:
        self._controllable(session_id)
        self.request(m.EndSession(session_id=session_id))
        return {"session_id": session_id, "ended": True}

    def resume_session(self, session_id: str) -> dict[str, Any]:
        self._controllable(session_id)
        return _summary_row(self.request(m.ResumeSession(session_id=session_id)).session)

    def rename_session(self, session_id: str, name: str | None) -> dict[str, Any]:
        self._controllable(session_id)
        self.request(m.RenameSession(session_id=session_id, name=name or None))
        return {"session_id": session_id, "name": name}

    def fork_session(self, session_id: str, *, model: str | None = None,
                     approval_policy: str | None = None, sandbox_mode: str | None = None,
                     name: str | None = None) -> dict[str, Any]:
        """Allowed on a passive session too: forking is how orbitdock takes one over."""
        reply = self.request(m.ForkSession(session_id=session_id, model=model,
                                           approval_policy=approval_policy,
                                           sandbox_mode=sandbox_mode, name=name))
        return {**_summary_row(reply.session), "forked_from": session_id}

    def rollback_turns(self, session_id: str, *, turns: int = 1) -> dict[str, Any]:
        self._controllable(session_id)
        reply = self.request(m.RollbackSession(session_id=session_id, turns=turns))
        return {"session_id": session_id, "rolled_back_turns": turns, **reply.result,
                "note": "files on disk were NOT reverted"}

    def compact_session(self, session_id: str) -> dict[str, Any]:
        self._controllable(session_id)
        reply = self.request(m.CompactSession(session_id=session_id))
        return {"session_id": session_id, "compacting": True, **reply.result}

    def review(self, session_id: str, *, target: str = "uncommitted",
               value: str | None = None) -> dict[str, Any]:
        self._controllable(session_id)
        reply = self.request(m.ReviewSession(session_id=session_id, target=target,
                                             value=value))
        return {"session_id": session_id, "reviewing": True, **reply.result}

    def approve(self, session_id: str, *, decision: str = "approved",
                request_id: str | None = None, wait_s: float = 0.0) -> dict[str, Any]:
        if decision not in DECISIONS:
            raise ToolRefused(f"decision must be one of {', '.join(DECISIONS)}")
        approval = self._pending(session_id, request_id, kinds=None,
                                 wait_s=min(max(wait_s, 0.0), self._cfg.approve_wait_max_s))
        if approval.type in QUESTION_TYPES:
            raise ToolRefused(f"approval {approval.id} is a question; use answer_question. "
                              f"Questions: {_questions_text(approval)}")
        reply = self.request(m.ApproveTool(approval_id=approval.id, decision=decision))
        return {"session_id": session_id, "approval_id": approval.id, "decision": decision,
                "outcome": reply.outcome}

    def answer_question(self, session_id: str, *, answer: str | None = None,
                        answers: dict[str, list[str]] | None = None,
                        request_id: str | None = None) -> dict[str, Any]:
        approval = self._pending(session_id, request_id, kinds=QUESTION_TYPES)
        if answers is None:
            if answer is None:
                raise ToolRefused(f"give answer or answers. Questions: "
                                  f"{_questions_text(approval)}")
            answers = {q.id: [answer] for q in approval.questions} or {"answer": [answer]}
        reply = self.request(m.AnswerQuestion(approval_id=approval.id, answers=answers))
        return {"session_id": session_id, "approval_id": approval.id, "outcome": reply.outcome}

    def _pending(self, session_id: str, request_id: str | None, kinds: tuple[str, ...] | None,
                 wait_s: float = 0.0):
        """The approval to decide: ``request_id`` if still pending, else the oldest pending
        one (of ``kinds``); a stale id is refused with the current one named. With
        ``wait_s``, waits that long for one to be pending (an agent that just started
        another session's turn need not poll)."""
        deadline = time.monotonic() + wait_s
        while True:
            pending = [a for a in self._state(session_id).approvals
                       if kinds is None or a.type in kinds]
            if pending or time.monotonic() >= deadline:
                break
            time.sleep(self._cfg.approve_poll_s)
        if not pending:
            raise ToolRefused(f"session {session_id} has no pending "
                              f"{'question' if kinds else 'approval'}")
        if request_id in (None, "", "pending"):
            return pending[0]
        for approval in pending:
            if approval.id == request_id or approval.id.startswith(request_id):
                return approval
        raise ToolRefused(f"approval {request_id} is no longer pending; the current one is "
                          f"{pending[0].id} ({pending[0].type}: {_approval_text(pending[0])})")


READ_REQUESTS = frozenset({"subscribe_list", "subscribe_session", "get_messages", "list_models",
                           "get_status"})


def _attention_first(summary: SessionSummary) -> tuple:
    waiting = summary.status == "active" and summary.attention_reason != "none"
    return (not waiting, summary.status != "active", -(summary.last_activity_at or 0))


def _summary_row(s: SessionSummary) -> dict[str, Any]:
    return {"session_id": s.id, "name": s.display_name, "provider": s.provider,
            "integration_mode": s.integration_mode, "status": s.status,
            "work_status": s.work_status, "attention_reason": s.attention_reason,
            "project_path": s.project_path, "model": s.model,
            "controllable": s.integration_mode != "passive",
            "last_message": s.last_message, "last_activity_at": s.last_activity_at}


def _approval_row(a: Any) -> dict[str, Any]:
    return {"request_id": a.id, "type": a.type, "summary": _approval_text(a),
            "command": a.command, "cwd": a.cwd, "reason": a.reason, "diff": a.diff,
            "options": list(a.available_decisions or DECISIONS),
            "questions": [_plain(q) for q in a.questions]}


def _approval_text(a: Any) -> str:
    return a.command or a.reason or _questions_text(a) or a.type


def _questions_text(a: Any) -> str:
    return "; ".join(f"{q.id}: {q.question}" + (
        f" (options: {', '.join(str(o.get('label')) for o in q.options)})" if q.options else "")
        for q in a.questions)


def _message_row(msg: Any) -> dict[str, Any]:
    row = {"seq": msg.seq, "type": msg.type, "content": msg.content}
    if msg.type == "tool":
        row.update(tool_name=msg.tool_name, tool_input=msg.tool_input,
                   tool_output=(msg.tool_output or "")[-4000:], is_error=msg.is_error)
    return row
