"""An in-process scripted backend: real turns, streaming, approvals and failures, no model.

Used by tests, the foundation benchmark and the load tool's fast mode. Each
``send_message`` starts a turn on a worker thread (it owns nothing but the
``emit`` callback) that plays one reply:

- the next entry of the session's ``script`` (consumed in order), or
- a directive in the message text: ``/burst N [SIZE]`` streams N deltas as fast
  as possible, ``/approve CMD`` asks an exec approval then reports the outcome,
  ``/ask QUESTION`` asks a question, ``/fail MSG`` fails the turn, ``/hold``
  streams one delta then waits for an interrupt, ``/stream N RATE [SIZE]`` streams N
  deltas paced at RATE per second (for latency measurements), ``/crash`` raises
  inside the connector (a bug, to exercise the supervisor's restart policy);
- otherwise it streams back an echo of the prompt.

Script entries: ``{"text": str, "chunk": int}``, ``{"burst": n, "size": k}``,
``{"approval": "exec"|"patch", "command": str, "diff": str}``,
``{"question": str, "options": [..]}``, ``{"fail": str}``, ``{"hold": true}``.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from typing import Any

from orbitdock.connectors import events as be
from orbitdock.connectors.base import Connector, ConnectorError, Emit, Provider
from orbitdock.protocol.errors import ErrorCode
from orbitdock.protocol.models import SessionState

DEFAULT_CHUNK = 8  # characters per streamed delta for text replies


class ScriptedConnector(Connector):
    provider = "scripted"

    def __init__(self, *, script: list[dict[str, Any]] | None, cwd: str, model: str | None,
                 wait_timeout_s: float):
        self._script = list(script or [])
        self._cwd = cwd
        self._model = model or "scripted"
        self._wait_timeout_s = wait_timeout_s
        self._emit: Emit | None = None
        self._turn: _Turn | None = None
        # Turn ids key the turns rows (session, turn id): a connector life of its own in each
        # id keeps a restored or resumed session from reusing, and overwriting, an earlier one.
        self._life = uuid.uuid4().hex
        self._turn_numbers = itertools.count(1)

    def start(self, emit: Emit, *, resume_thread_id: str | None = None,
              fork_thread_id: str | None = None) -> None:
        if fork_thread_id is not None:
            raise ConnectorError(ErrorCode.UNSUPPORTED, "scripted sessions cannot be forked")
        self._emit = emit
        emit(be.ThreadStarted(thread_id=resume_thread_id or f"scripted-{uuid.uuid4()}",
                              model=self._model, cwd=self._cwd))

    def send_message(self, token: Any, content: str, model: str | None = None,
                     effort: str | None = None, sandbox_mode: str | None = None,
                     approval_policy: str | None = None) -> None:
        if model and model != self._model:
            self._model = model
            self._emit(be.ConfigApplied(approval_policy=None, sandbox_mode=None, model=model))
        text = content
        if any(v is not None for v in (model, effort, sandbox_mode, approval_policy)):
            self._model = model or self._model  # the scripted "model" takes any setting
            self._emit(be.ConfigApplied(approval_policy, sandbox_mode, model, effort))
        if text.strip() == "/crash":
            # Simulates a connector bug (not a refusal): exercises actor crash + restart.
            raise RuntimeError("scripted connector crashed on purpose (/crash)")
        if self._turn is not None and self._turn.is_alive():
            raise ConnectorError(ErrorCode.INVALID_STATE,
                                 "a turn is already running; interrupt it first")
        reply = self._script.pop(0) if self._script else _directive(text)
        turn_id = f"turn-{next(self._turn_numbers)}-{self._life}"
        self._turn = _Turn(self._emit, turn_id, text, reply, self._wait_timeout_s)
        self._turn.start()
        self._emit(be.CommandResult(token, True, {"turn_id": self._turn.turn_id}))

    def steer(self, token: Any, content: str) -> None:
        """Into the running turn, as codex does: the text joins it as a user message (a
        scripted reply is already chosen, so it changes nothing else); with no turn
        running it starts one."""
        turn = self._turn
        if turn is None or not turn.is_alive():
            self.send_message(token, content)
            return
        self._emit(be.UserMessage(content, f"{turn.turn_id}-steer-{uuid.uuid4().hex[:8]}",
                                  turn.turn_id))
        self._emit(be.CommandResult(token, True, {"turn_id": turn.turn_id}))

    def interrupt(self, token: Any) -> None:
        if self._turn is None or not self._turn.is_alive():
            raise ConnectorError(ErrorCode.INVALID_STATE, "no running turn to interrupt")
        self._turn.interrupted.set()
        self._turn.answered.set()
        self._emit(be.CommandResult(token, True))

    def respond(self, token: Any, key: Any, *, decision: str | None,
                answers: dict[str, list[str]] | None) -> None:
        turn = self._turn
        if turn is None or turn.pending_key != key:
            raise ConnectorError(ErrorCode.STALE_APPROVAL,
                                 "the backend no longer waits on this request")
        turn.decision = decision
        turn.answers = answers
        turn.answered.set()
        self._emit(be.CommandResult(token, True))

    def rename(self, token: Any, name: str | None) -> None:
        self._emit(be.NameUpdated(name))
        self._emit(be.CommandResult(token, True))

    def stop(self) -> None:
        if self._turn is not None:
            self._turn.interrupted.set()
            self._turn.answered.set()


def _directive(text: str) -> dict[str, Any]:
    word, _, rest = text.strip().partition(" ")
    args = rest.split()
    if word == "/burst" and args and args[0].isdigit():
        return {"burst": int(args[0]), "size": int(args[1]) if len(args) > 1 else 16}
    if word == "/stream" and len(args) >= 2 and args[0].isdigit():
        return {"burst": int(args[0]), "rate": float(args[1]),
                "size": int(args[2]) if len(args) > 2 else 16}
    if word == "/approve":
        return {"approval": "exec", "command": rest or "true"}
    if word == "/ask":
        return {"question": rest or "Continue?", "options": ["yes", "no"]}
    if word == "/fail":
        return {"fail": rest or "scripted failure"}
    if word == "/hold":
        return {"hold": True}
    return {"text": f"You said: {text}"}


class _Turn(threading.Thread):
    """Plays one reply. Owns no resource; talks to the session only through ``emit``."""

    def __init__(self, emit: Emit, turn_id: str, prompt: str, reply: dict[str, Any],
                 wait_timeout_s: float):
        super().__init__(name=f"scripted-{turn_id}", daemon=True)
        self.emit, self.turn_id, self.prompt, self.reply = emit, turn_id, prompt, reply
        self.wait_timeout_s = wait_timeout_s
        self.interrupted = threading.Event()
        self.answered = threading.Event()
        self.pending_key: Any = None
        self.decision: str | None = None
        self.answers: dict[str, list[str]] | None = None

    def _stream(self, item: str, text: str, chunk: int) -> None:
        for i in range(0, len(text), chunk):
            if self.interrupted.is_set():
                return
            self.emit(be.AgentMessageDelta(item, text[i:i + chunk], self.turn_id))
        self.emit(be.AgentMessage(item, text, self.turn_id))

    def _wait_for_client(self, key: str) -> bool:
        self.pending_key = key
        self.answered.wait(self.wait_timeout_s)
        self.pending_key = None
        return not self.interrupted.is_set() and self.answered.is_set()

    def run(self) -> None:
        emit, turn, reply = self.emit, self.turn_id, self.reply
        emit(be.TurnStarted(turn))
        emit(be.UserMessage(self.prompt, f"{turn}-user", turn))
        status, error = "completed", None
        if "burst" in reply:
            piece = "x" * int(reply.get("size", 16))
            item = f"{turn}-burst"
            period = 1.0 / float(reply["rate"]) if reply.get("rate") else 0.0
            next_at = time.monotonic()
            for _ in range(int(reply["burst"])):
                if period:
                    next_at += period
                    if self.interrupted.wait(max(0.0, next_at - time.monotonic())):
                        break
                emit(be.AgentMessageDelta(item, piece, turn))
            emit(be.AgentMessage(item, piece * int(reply["burst"]), turn))
        elif "approval" in reply:
            kind = reply["approval"]
            key = f"{turn}-approval"
            emit(be.ToolStarted(key, "Shell" if kind == "exec" else "Edit",
                                reply.get("command"), turn))
            emit(be.ApprovalRequest(key=key, type=kind, method="scripted/requestApproval",
                                    turn_id=turn, command=reply.get("command"),
                                    diff=reply.get("diff"),
                                    available_decisions=["accept", "accept_for_session",
                                                         "decline", "cancel"]))
            if self._wait_for_client(key):
                accepted = self.decision in ("accept", "accept_for_session")
                emit(be.ApprovalCleared(key))
                emit(be.ToolCompleted(key, "ran" if accepted else None, not accepted,
                                      status="completed" if accepted else "declined"))
                self._stream(f"{turn}-msg", "Done." if accepted else "Skipped.", DEFAULT_CHUNK)
                if self.decision == "cancel":
                    status = "interrupted"
            else:
                status = "interrupted"
        elif "question" in reply:
            key = f"{turn}-question"
            emit(be.ApprovalRequest(key=key, type="question", method="scripted/requestUserInput",
                                    turn_id=turn, questions=[{
                                        "id": "q1", "question": reply["question"],
                                        "options": [{"label": o} for o in reply.get("options", [])]}]))
            if self._wait_for_client(key):
                emit(be.ApprovalCleared(key))
                answer = ", ".join((self.answers or {}).get("q1", [])) or "(no answer)"
                self._stream(f"{turn}-msg", f"You chose: {answer}", DEFAULT_CHUNK)
            else:
                status = "interrupted"
        elif "fail" in reply:
            status, error = "failed", str(reply["fail"])
        elif reply.get("hold"):
            emit(be.AgentMessageDelta(f"{turn}-msg", "Working", turn))
            self.interrupted.wait(self.wait_timeout_s)
            status = "interrupted"
        else:
            self._stream(f"{turn}-msg", str(reply.get("text", "")),
                         int(reply.get("chunk", DEFAULT_CHUNK)))
        if self.interrupted.is_set():
            status = "interrupted"
        emit(be.TurnCompleted(turn, status, error))


class ScriptedProvider(Provider):
    """Sessions played by ``ScriptedConnector``: the demo, tests, the load tool's fast mode."""

    name = "scripted"

    def __init__(self, wait_timeout_s: float):
        self._wait_timeout_s = wait_timeout_s

    def connector(self, state: SessionState, *,
                  script: list[dict[str, Any]] | None = None) -> ScriptedConnector:
        return ScriptedConnector(script=script, cwd=state.project_path or "/", model=state.model,
                                 wait_timeout_s=self._wait_timeout_s)


def scripted_provider(cfg: Any, lay: Any) -> ScriptedProvider:
    """The registry's builder (``actors/providers.py``)."""
    return ScriptedProvider(cfg.sessions.scripted_wait_timeout_s)
