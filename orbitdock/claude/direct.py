"""A direct Claude session: orbitdock runs and drives one ``claude`` process for it.

Claude Code has no multi-session server, so each direct session has its own
``claude -p --input-format stream-json --output-format stream-json --verbose
--include-partial-messages --permission-prompt-tool stdio`` child (+ ``--model``,
``--permission-mode``, and ``--session-id`` for a new conversation or ``--resume``
for one that has a transcript). The protocol is in ``orbitdock.claude.stream``.

Threads, each owning one resource:

- the session actor's thread calls ``ClaudeDirectConnector`` (never blocks): every
  call becomes an op put on the driver's queue (and a byte on its wake pipe);
- the **driver** thread (one per session, ``claude-<id>``) owns the child's
  **stdout** and all backend state: the ``StreamMapper``, the turn, the
  ``can_use_tool`` requests waiting for a decision, the control requests in flight,
  the start and idle deadlines, and the process itself (spawn, stop, restart). It
  ``select``s on stdout and the wake pipe, runs ops, maps lines and emits events;
- the **writer** thread (one per process) owns the child's **stdin**: it writes the
  lines the driver queues, and closes stdin when handed ``None``;
- the **stderr** thread (one per process) logs the child's stderr and keeps its tail
  (read by the driver only after joining it) to explain an exit.

The child inherits the daemon's environment (``ANTHROPIC_BASE_URL`` / API key,
``CLAUDE_CONFIG_DIR``, the user's login) plus ``DIRECT_SESSION_ENV`` = the orbitdock
session id, so orbitdock's own hook forwarder, if installed, skips the session.

Lifecycle: a create spawns at once and emits ``ThreadStarted`` (thread id = the
``--session-id`` orbitdock chose, which is Claude's ``session_id``) when the
``initialize`` control request is answered, which answers the create. A resumed or
restored session spawns on its first send, with ``--resume``. A process that dies
mid-turn closes the turn as failed (``BackendLost``, not fatal); the next send
starts a new one with ``--resume``. After ``claude.idle_stop_s`` with no turn, no
approval and no control request in flight, the process is stopped the same way.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import re
import select
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from orbitdock.claude import modes, stream
from orbitdock.claude.forward import DIRECT_SESSION_ENV
from orbitdock.codex.jsonrpc import LineBuffer, raw_preview
from orbitdock.config import ClaudeConfig
from orbitdock.connectors import events as be
from orbitdock.connectors.base import Connector, ConnectorError, Emit
from orbitdock.privacy import child_umask
from orbitdock.protocol.errors import ErrorCode
from orbitdock.backend_child import WakePipe, describe_exit

logger = logging.getLogger(__name__)

READ_CHUNK = 1 << 16
STDERR_TAIL_LINES = 20
OPERATIONS = ("send_message", "interrupt", "steer")
BYPASS = "bypassPermissions"  # claude takes it at start only, not by set_permission_mode


def transcript_path(cwd: str, thread_id: str, env: dict[str, str]) -> Path:
    """Where claude keeps the conversation (``<config>/projects/<slug>/<id>.jsonl``; the
    slug is the cwd with every character but letters, digits and ``-`` made ``-``)."""
    config = env.get("CLAUDE_CONFIG_DIR") or os.path.join(env.get("HOME", "~"), ".claude")
    slug = re.sub(r"[^A-Za-z0-9-]", "-", cwd)
    return Path(config).expanduser() / "projects" / slug / f"{thread_id}.jsonl"


class ClaudeDirectConnector(Connector):
    """The session actor's handle on its driver thread (see the module docstring)."""

    provider = "claude"

    def __init__(self, *, session_id: str, cwd: str, binary: str, config: ClaudeConfig,
                 env: dict[str, str], model: str | None = None,
                 approval_policy: str | None = None, thread_id: str | None = None):
        self._driver = _Driver(session_id=session_id, cwd=cwd, binary=binary, config=config,
                               env=env, model=model,
                               permission_mode=modes.permission_mode_for(approval_policy)
                               or modes.DEFAULT_MODE, thread_id=thread_id)
        self._started = False

    def start(self, emit: Emit, *, resume_thread_id: str | None = None,
              fork_thread_id: str | None = None) -> None:
        if self._started:
            raise ConnectorError(ErrorCode.INVALID_STATE, "claude connector already started")
        self._started = True
        self._driver.start(emit)
        if resume_thread_id is None:
            self._driver.post(("create", fork_thread_id))
        else:
            self._driver.post(("resume", resume_thread_id))

    def call(self, operation: str, token: Any, **fields: Any) -> None:
        if operation not in OPERATIONS:
            raise ConnectorError(ErrorCode.UNSUPPORTED,
                                 f"claude sessions do not support {operation}")
        self._post((operation, token, fields))

    def respond(self, token: Any, key: Any, *, decision: str | None,
                answers: dict[str, list[str]] | None) -> None:
        self._post(("respond", token, dict(key=key, decision=decision, answers=answers)))

    def set_config(self, token: Any, *, approval_policy: str | None,
                   sandbox_mode: str | None, model: str | None) -> None:
        self._post(("set_config", token, dict(approval_policy=approval_policy, model=model)))

    def stop(self) -> None:
        if self._started:
            self._driver.post(("stop",))

    def _post(self, op: tuple) -> None:
        if not self._started:
            raise ConnectorError(ErrorCode.INVALID_STATE, "claude connector not started")
        self._driver.post(op)


class _Process:
    """One ``claude`` child with its writer and stderr threads; stdout is read by the
    driver. Created and stopped on the driver thread only."""

    def __init__(self, argv: list[str], *, cwd: str, env: dict[str, str], name: str):
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=cwd, env=env, start_new_session=True,  # its own group: its shells go with it
            umask=child_umask())  # the user's own: claude writes into their project
        self.name = f"{name} pid={self.popen.pid}"
        self.fd = self.popen.stdout.fileno()  # type: ignore[union-attr]
        os.set_blocking(self.fd, False)
        self.lines = LineBuffer()
        self.line_bytes = 0  # of the line being read, to skip an overlong one
        self.skipping = False
        self.eof = False
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name=f"{name}-writer",
                                        daemon=True)
        self._stderr = threading.Thread(target=self._stderr_loop, name=f"{name}-stderr",
                                        daemon=True)
        self._writer.start()
        self._stderr.start()

    def write(self, line: bytes) -> None:
        self._out.put(line)

    def close_stdin(self) -> None:
        self._out.put(None)

    def _write_loop(self) -> None:
        stdin = self.popen.stdin
        while (line := self._out.get()) is not None:
            try:
                stdin.write(line)  # type: ignore[union-attr]
                stdin.flush()  # type: ignore[union-attr]
            except (BrokenPipeError, ValueError, OSError) as exc:
                logger.debug("%s: stdin closed (%s)", self.name, exc)
                break
        try:
            stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass

    def _stderr_loop(self) -> None:
        for raw in self.popen.stderr:  # type: ignore[union-attr]
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                logger.info("claude[%s]: %s", self.popen.pid, line)

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def finish(self, timeout_s: float, *, graceful: bool) -> str:
        """Stop (stdin closed, then SIGTERM, then SIGKILL, each ``timeout_s`` apart; at
        once SIGKILL when not ``graceful``), join the threads; returns how it ended."""
        self.close_stdin()
        steps = (None, signal.SIGTERM, signal.SIGKILL) if graceful else (signal.SIGKILL,)
        for sig in steps:
            if sig is not None:
                self.signal(sig)
            try:
                self.popen.wait(timeout=timeout_s)
                break
            except subprocess.TimeoutExpired:
                continue
        self._writer.join(timeout=timeout_s)
        self._stderr.join(timeout=timeout_s)
        self.popen.stdout.close()  # type: ignore[union-attr]
        return describe_exit(self.popen.returncode, self.stderr_tail) or "did not exit"


class _Driver:
    """The per-session driver thread and everything it owns (see the module docstring).
    Only ``start`` and ``post`` are called from other threads."""

    def __init__(self, *, session_id: str, cwd: str, binary: str, config: ClaudeConfig,
                 env: dict[str, str], model: str | None, permission_mode: str,
                 thread_id: str | None):
        self.session_id = session_id
        self.cwd = cwd
        self.binary = binary
        self.cfg = config
        self.env = dict(env, **{DIRECT_SESSION_ENV: session_id})
        self.model = model
        self.permission_mode = permission_mode
        self.thread_id = thread_id
        self.name = f"claude-{session_id[:15]}"
        self._ops: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        self._wakeup = WakePipe()  # the session actor's ops wake the driver's select
        self._emit: Emit | None = None
        # --- owned by the driver thread
        self.proc: _Process | None = None
        self.ready = False
        self.announce = False  # emit ThreadStarted once initialized (a create or a fork)
        self.fork_from: str | None = None
        self.lost = False  # the last process died on us: say so when the next one is up
        self.mapper = stream.StreamMapper(model=model)
        self.approvals: dict[str, dict[str, Any]] = {}  # control request id -> can_use_tool
        self.controls: dict[str, tuple[str, Any, float]] = {}  # id -> (kind, token, deadline)
        self.start_deadline: float | None = None
        self.idle_deadline: float | None = None
        self.stopping = False
        self.respawn = False  # the next turn needs a new process (a mode only a start sets)
        self._requests = 0

    # ------------------------------------------------------------ any thread
    def start(self, emit: Emit) -> None:
        self._emit = emit
        threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def post(self, op: tuple) -> None:
        self._ops.put(op)
        self._wakeup.wake()

    # ------------------------------------------------------------ driver thread
    def emit(self, event: Any) -> None:
        if self._emit is not None:
            self._emit(event)

    def _run(self) -> None:
        try:
            while not self.stopping:
                wake_fd = self._wakeup.fileno()
                fds = [wake_fd] + ([self.proc.fd] if self.proc and not self.proc.eof else [])
                readable, _, _ = select.select(fds, [], [], self._timeout())
                if wake_fd in readable:
                    self._wakeup.drain()
                    self._run_ops()
                if self.proc is not None and self.proc.fd in readable and not self.stopping:
                    self._read()
                self._expire()
        except Exception as exc:  # a bug: fail this session's backend, not the daemon
            logger.exception("%s: driver failed", self.name)
            self._drop_process(f"orbitdock's claude driver failed: {exc!r}", graceful=False)
            self.emit(be.BackendLost(f"orbitdock's claude driver failed: {exc!r}", fatal=True))
        finally:
            if self.proc is not None:
                self._drop_process("stopped", graceful=True)
            self._refuse_queued_ops()
            self._wakeup.close()

    def _refuse_queued_ops(self) -> None:
        """Ops that came after the stop still get an answer (their client is waiting)."""
        while True:
            try:
                op = self._ops.get_nowait()
            except queue.Empty:
                return
            if len(op) > 1 and op[0] not in ("create", "resume") and op[1] is not None:
                self._result(op[1], ErrorCode.INVALID_STATE, "the session's claude was stopped")

    def _timeout(self) -> float | None:
        deadlines = [d for d in (self.start_deadline, self.idle_deadline) if d is not None]
        deadlines += [deadline for _, _, deadline in self.controls.values()]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _run_ops(self) -> None:
        while not self.stopping:
            try:
                op = self._ops.get_nowait()
            except queue.Empty:
                return
            try:
                getattr(self, "_op_" + op[0])(*op[1:])
            except Exception as exc:  # one op's bug must not stop the session's backend
                logger.exception("%s: op %s failed", self.name, op[0])
                if len(op) > 1 and op[0] not in ("create", "resume"):
                    self._result(op[1], ErrorCode.INTERNAL, f"{op[0]} failed: {exc!r}")

    def _result(self, token: Any, error: ErrorCode | None = None, message: str = "",
                **result: Any) -> None:
        if token is None:
            if error is not None:
                self.emit(be.BackendError(message))
            return
        if error is None:
            self.emit(be.CommandResult(token, True, result))
        else:
            self.emit(be.CommandResult(token, False, error_code=error, error_message=message))

    def _write(self, line: bytes) -> None:
        assert self.proc is not None
        self.proc.write(line)

    def _control(self, kind: str, token: Any, **fields: Any) -> None:
        self._requests += 1
        request_id = f"od-{self._requests}"
        self.controls[request_id] = (kind, token, time.monotonic() + (
            self.cfg.start_timeout_s if kind == "initialize" else self.cfg.control_timeout_s))
        self._write(stream.control_request(request_id, kind, **fields))

    # ------------------------------------------------------------ process life
    def _argv(self, resume: bool) -> list[str]:
        argv = [self.binary, "-p", "--input-format", "stream-json", "--output-format",
                "stream-json", "--verbose", "--include-partial-messages",
                "--permission-prompt-tool", "stdio", "--permission-mode", self.permission_mode]
        if self.model:
            argv += ["--model", self.model]
        if self.fork_from is not None:
            argv += ["--resume", self.fork_from, "--fork-session", "--session-id", self.thread_id]
        elif resume:
            argv += ["--resume", self.thread_id]
        else:
            argv += ["--session-id", self.thread_id]
        return argv

    def _spawn(self) -> bool:
        """Start the process for ``thread_id`` (``--resume`` once it has a transcript);
        False (and the failure reported) when it cannot even be spawned."""
        resume = transcript_path(self.cwd, self.thread_id, self.env).exists()
        argv = self._argv(resume)
        try:
            self.proc = _Process(argv, cwd=self.cwd, env=self.env, name=self.name)
        except OSError as exc:
            self._lost(f"cannot start claude: {exc}", before_ready=True)
            return False
        logger.info("%s: started %s", self.proc.name, " ".join(argv))
        self.ready = False
        self.mapper = stream.StreamMapper(model=self.mapper.model,
                                          permission_mode=self.mapper.permission_mode)
        self.start_deadline = time.monotonic() + self.cfg.start_timeout_s
        self._control("initialize", None)
        return True

    def _ensure_process(self) -> bool:
        return self.proc is not None or self._spawn()

    def _drop_process(self, why: str, *, graceful: bool) -> str:
        proc, self.proc = self.proc, None
        self.ready = False
        self.start_deadline = self.idle_deadline = None
        if proc is None:
            return why
        ended = proc.finish(self.cfg.stop_timeout_s, graceful=graceful)
        logger.info("%s: %s (%s)", proc.name, why, ended)
        return ended

    def _lost(self, reason: str, *, before_ready: bool) -> None:
        """The process is gone (or never came up): settle everything that waited on it."""
        for kind, token, _ in self.controls.values():
            if kind != "initialize":
                self._result(token, ErrorCode.BACKEND_ERROR, f"claude {reason}")
        self.controls.clear()
        self.approvals.clear()
        self.lost = True
        if self.announce and before_ready:
            self.announce = False
            logger.warning("%s: claude %s before it came up; the create is refused", self.name,
                           reason)
            self.emit(be.BackendLost(f"claude {reason}", fatal=True))
        elif self.mapper.turn_id is not None:
            self.mapper.turn_id = None
            logger.warning("%s: claude %s mid-turn; the turn failed, the next send resumes it",
                           self.name, reason)
            self.emit(be.BackendLost(f"claude {reason}", fatal=False))
        else:
            logger.warning("%s: claude %s while idle; the next send resumes it", self.name,
                           reason)

    # ------------------------------------------------------------ ops
    def _op_create(self, fork_from: str | None) -> None:
        self.thread_id = str(uuid.uuid4())
        self.fork_from = fork_from
        self.announce = True
        self._spawn()

    def _op_resume(self, thread_id: str) -> None:
        self.thread_id = thread_id  # spawned with --resume on the first send

    def _op_stop(self) -> None:
        self.stopping = True
        self._drop_process("stopped", graceful=True)

    def _op_send_message(self, token: Any, fields: dict[str, Any]) -> None:
        if self.mapper.turn_id is not None:
            self._result(token, ErrorCode.INVALID_STATE,
                         "a turn is running: interrupt it, or send when it ends")
            return
        if fields.get("sandbox_mode"):
            self._result(token, ErrorCode.INVALID_ARGUMENT,
                         "sandbox_mode: claude sessions have no sandbox modes; use "
                         "approval_policy (a Claude permission mode)")
            return
        mode = modes.permission_mode_for(fields.get("approval_policy"))
        if fields.get("approval_policy") is not None and mode is None:
            self._result(token, ErrorCode.INVALID_ARGUMENT,
                         f"approval_policy: {fields['approval_policy']!r} is not allowed; "
                         f"expected {', '.join(modes.allowed_policies())}")
            return
        if self.thread_id is None:
            self._result(token, ErrorCode.INVALID_STATE, "the session has no claude thread")
            return
        self._apply_config(model=fields.get("model"),
                           mode=mode if fields.get("approval_policy") else None)
        if self.respawn and self.proc is not None:
            self._drop_process(f"restarted for {self.permission_mode}", graceful=True)
        self.respawn = False
        if not self._ensure_process():
            self._result(token, ErrorCode.BACKEND_ERROR, "claude could not be started")
            return
        turn_id = self._begin_turn()
        self.emit(be.UserMessage(text=fields["content"], item_id=f"user-{turn_id}",
                                 turn_id=turn_id))
        self._write(stream.user_turn(fields["content"]))
        self._result(token, turn_id=turn_id)

    def _begin_turn(self) -> str:
        turn_id = f"turn-{uuid.uuid4().hex[:12]}"
        self.mapper.begin_turn(turn_id)
        self.idle_deadline = None
        self.emit(be.TurnStarted(turn_id))
        return turn_id

    def _op_steer(self, token: Any, fields: dict[str, Any]) -> None:
        """A user line written while the turn runs: claude 2.1.332 hands it to the model
        within that turn (beside the next tool result). With no turn running it starts
        one, as a send would."""
        turn_id = self.mapper.turn_id
        if turn_id is None or self.proc is None:
            self._op_send_message(token, {"content": fields["content"]})
            return
        self.emit(be.UserMessage(text=fields["content"], item_id=f"steer-{uuid.uuid4().hex[:12]}",
                                 turn_id=turn_id))
        self._write(stream.user_turn(fields["content"]))
        self._result(token, turn_id=turn_id)

    def _op_interrupt(self, token: Any, fields: dict[str, Any]) -> None:
        if self.mapper.turn_id is None or self.proc is None:
            self._result(token, ErrorCode.INVALID_STATE, "no turn is running")
            return
        self._control("interrupt", token)

    def _op_respond(self, token: Any, fields: dict[str, Any]) -> None:
        request = self.approvals.pop(fields["key"], None)
        if request is None or self.proc is None:
            self._result(token, ErrorCode.STALE_APPROVAL,
                         "claude no longer waits for this decision")
            return
        answer = stream.can_use_tool_answer(request, fields["decision"] or "decline",
                                            fields["answers"])
        self._write(stream.control_response(fields["key"], answer))
        for update in answer.get("updatedPermissions") or []:
            if update.get("type") == "setMode" and update.get("mode") in modes.PERMISSION_MODES:
                # Claude switches now; its next init would say so only at the next turn
                self.permission_mode = self.mapper.permission_mode = update["mode"]
                self.emit(be.ConfigApplied(approval_policy=update["mode"]))
        self._result(token, behavior=answer["behavior"])

    def _op_set_config(self, token: Any, fields: dict[str, Any]) -> None:
        mode = modes.permission_mode_for(fields["approval_policy"]) \
            if fields["approval_policy"] is not None else None
        self._apply_config(model=fields["model"], mode=mode)
        self._result(token)

    def _apply_config(self, *, model: str | None, mode: str | None) -> None:
        """From the next turn on: told to a running process (``set_model`` /
        ``set_permission_mode``), else given as flags when the next one starts."""
        if model and model != self.model:
            self.model = model
            if self.proc is not None:
                self._control("set_model", None, model=model)
        if mode and mode != self.permission_mode:
            self.permission_mode = mode
            if self.proc is not None and mode == BYPASS:
                # claude refuses to switch to it unless launched so: the next turn runs in
                # a new process (--resume, --permission-mode bypassPermissions)
                self.respawn = True
            elif self.proc is not None:
                self._control("set_permission_mode", None, mode=mode)

    # ------------------------------------------------------------ output
    def _read(self) -> None:
        proc = self.proc
        assert proc is not None
        try:
            chunk = os.read(proc.fd, READ_CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            proc.eof = True
            self._exited()
            return
        for line in self._split(proc, chunk):
            self._line(line)
            if self.proc is not proc:
                return  # the line stopped or replaced the process

    def _split(self, proc: _Process, chunk: bytes) -> list[bytes]:
        """Lines of ``chunk``; a line longer than ``max_line_bytes`` is dropped (logged),
        its bytes not kept."""
        lines = proc.lines.feed(chunk)
        if lines and proc.skipping:
            lines, proc.skipping = lines[1:], False  # the end of the line being skipped
        newline = chunk.rfind(b"\n")
        proc.line_bytes = len(chunk) - newline - 1 if newline >= 0 else proc.line_bytes + len(chunk)
        if proc.line_bytes > self.cfg.max_line_bytes:
            if not proc.skipping:
                logger.warning("%s: a stream-json line longer than %d bytes; skipped (code %s)",
                               proc.name, self.cfg.max_line_bytes, ErrorCode.TOO_LARGE)
            proc.skipping = True
            proc.lines.flush()
        return lines

    def _line(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            obj = stream.parse_line(raw)
        except stream.BadLine as exc:
            logger.warning("%s: skipped a stream-json line (%s): %s (code %s)", self.name, exc,
                           raw_preview(raw), ErrorCode.BACKEND_ERROR)
            return
        kind = obj["type"]
        if self.mapper.turn_id is None and self.ready and (
                kind in ("assistant", "stream_event") or obj.get("subtype") == "init"):
            # a turn orbitdock did not start: a steer that arrived as the turn ended, or a
            # background agent's re-prompt (claude-code.md §12.7). Show it as a turn.
            self._begin_turn()
        if kind == "control_request":
            self._on_control_request(obj)
        elif kind == "control_response":
            self._on_control_response(obj)
        else:
            for event in self.mapper.feed(obj):
                self.emit(event)
            if kind == "result":
                self.approvals.clear()  # a finished turn asks nothing more
                self._arm_idle()

    def _on_control_request(self, obj: dict[str, Any]) -> None:
        request_id = str(obj.get("request_id"))
        request = obj.get("request") if isinstance(obj.get("request"), dict) else {}
        subtype = request.get("subtype")
        if subtype == "can_use_tool":
            self.approvals[request_id] = request
            self.emit(stream.approval_of(request_id, request, self.cwd))
        elif subtype == "hook_callback":
            self._write(stream.control_response(request_id, {}))  # no opinion
        else:
            logger.info("%s: claude asked %s; orbitdock does not handle it", self.name, subtype)
            self._write(stream.control_error(request_id,
                                             f"orbitdock does not handle {subtype}"))

    def _on_control_response(self, obj: dict[str, Any]) -> None:
        response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
        pending = self.controls.pop(str(response.get("request_id")), None)
        if pending is None:
            return
        kind, token, _ = pending
        error = response.get("error") if response.get("subtype") == "error" else None
        if kind == "initialize":
            self._initialized(response.get("response") or {}, error)
        elif error is not None:
            self._result(token, ErrorCode.BACKEND_ERROR, f"claude refused {kind}: {error}")
        else:
            self._result(token)

    def _initialized(self, info: dict[str, Any], error: Any) -> None:
        if error is not None:
            self._failed_start(f"refused initialize: {error}")
            return
        self.ready = True
        self.start_deadline = None
        version = info.get("claude_code_version")
        if self.cfg.expected_version and version and version != self.cfg.expected_version:
            logger.warning("%s: claude %s, orbitdock drives %s", self.name, version,
                           self.cfg.expected_version)
        if self.announce:
            self.announce = False
            self.emit(be.ThreadStarted(
                thread_id=self.thread_id, model=self.model, cwd=self.cwd,
                transcript_path=str(transcript_path(self.cwd, self.thread_id, self.env)),
                approval_policy=self.permission_mode))
        elif self.lost:
            self.emit(be.BackendRecovered("claude restarted with --resume"))
        self.lost = False
        self.fork_from = None
        self._arm_idle()

    def _failed_start(self, why: str) -> None:
        ended = self._drop_process(why, graceful=False)
        self._lost(f"{why} ({ended})", before_ready=True)

    def _exited(self) -> None:
        proc = self.proc
        assert proc is not None
        if (tail := proc.lines.flush()):
            self._line(tail)
        ready = self.ready
        ended = self._drop_process("exited", graceful=True)
        self._lost(ended, before_ready=not ready)

    # ------------------------------------------------------------ deadlines
    def _arm_idle(self) -> None:
        if self.cfg.idle_stop_s > 0 and self.mapper.turn_id is None:
            self.idle_deadline = time.monotonic() + self.cfg.idle_stop_s

    def _expire(self) -> None:
        now = time.monotonic()
        if self.start_deadline is not None and now >= self.start_deadline:
            self._failed_start(f"did not answer initialize within {self.cfg.start_timeout_s} s")
            return
        for request_id, (kind, token, deadline) in list(self.controls.items()):
            if now >= deadline and kind != "initialize":
                del self.controls[request_id]
                self._result(token, ErrorCode.TIMEOUT,
                              f"claude did not answer {kind} within {self.cfg.control_timeout_s} s")
        if self.idle_deadline is not None and now >= self.idle_deadline:
            self.idle_deadline = None
            if self.mapper.turn_id is None and not self.approvals and not self.controls:
                self._drop_process(f"idle for {self.cfg.idle_stop_s} s: stopped, resumed on "
                                   "the next send", graceful=True)
