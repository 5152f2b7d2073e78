"""One ``codex app-server`` child process and the threads that own its pipes.

Thread ownership:
- reader thread: stdout, plus everything routed from it: the JSON-RPC state
  (``RpcPeer``, in ``rpc_peer``: the pending-request table and the thread-id ->
  sink routes) and the sinks it hosts (their state and their server requests).
  Nobody else touches these, so none of them is locked.
  Work for the reader (a sink command, a registration, a model/list) arrives as
  ``Op`` objects on a queue; a self-pipe wakes the reader's ``select`` so it can
  also expire request deadlines without polling.
- writer thread: stdin; consumes a queue of ready-made lines.
- stderr thread: stderr, logged line by line (the tail explains a crash).
- waiter thread: ``Popen.wait``; a child whose stdout stays open (grandchildren
  inheriting it) must still be noticed when it dies.

Whoever ``post``s an op must be the single poster (the pool actor), so that after
the exit callback the poster can collect the ops that never ran (``unrun_ops``).
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
from typing import Any, Callable, Protocol

from orbitdock.codex import jsonrpc as rpc
from orbitdock.codex.rpc_peer import BROADCAST_METHODS, Callback, RpcPeer, Sink
from orbitdock.config import CodexConfig
from orbitdock.privacy import child_umask
from orbitdock.threads import long_lived
from orbitdock.backend_child import WakePipe, describe_exit

__all__ = ["AppServerProcess", "BROADCAST_METHODS", "Callback", "Op", "Sink"]

logger = logging.getLogger(__name__)

READ_CHUNK = 1 << 16
STDERR_TAIL_LINES = 20  # kept to explain an unexpected exit
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # codex colours its stderr even into a pipe
# codex's stderr lines (Rust tracing): "2026-12-07T19:00:39.123702Z ERROR codex_app_server: ..."
_CODEX_LEVEL = re.compile(r"^\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s")
_CODEX_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
                 "WARN": logging.WARNING, "ERROR": logging.ERROR}


def codex_line_level(line: str) -> int:
    """The level codex gave a stderr line; INFO for a line without one (a panic's text)."""
    match = _CODEX_LEVEL.match(line)
    return _CODEX_LEVELS[match.group(1)] if match else logging.INFO


class Op(Protocol):
    """A unit of work run on the reader thread; ``fail`` if it never gets to run."""

    def run(self, ctx: "AppServerProcess") -> None: ...

    def fail(self, reason: str) -> None: ...


class AppServerProcess(RpcPeer):
    """Spawns, initializes and serves one app-server; see the module docstring.

    Sinks and ops talk JSON-RPC through the ``RpcPeer`` methods (``request``,
    ``reply``, ``route``...), on the reader thread only.
    """

    def __init__(self, proc_id: int, argv: list[str], *, env: dict[str, str],
                 config: CodexConfig, on_exit: Callable[["AppServerProcess", str], None],
                 cwd: str | None = None):
        super().__init__(config)
        self.proc_id = proc_id
        self.argv = argv
        self.version: str | None = None  # from the initialize userAgent
        self._env, self._cwd, self._on_exit = env, cwd, on_exit
        self._popen: subprocess.Popen[bytes] | None = None
        self._inbox: queue.SimpleQueue[Op | tuple[str, Any]] = queue.SimpleQueue()
        self._wakeup = WakePipe()  # other threads' ops wake the reader's select
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        # --- owned by the reader thread (so is everything in RpcPeer)
        self._lines = rpc.LineBuffer()
        self._ready = False
        self._failure: str | None = None  # why we killed it ourselves (initialize failed)
        self._deferred: list[Op] = []
        self._unrun: list[Op] = []

    # ------------------------------------------------------------ any thread
    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def __repr__(self) -> str:
        return f"<app-server #{self.proc_id} pid={self.pid}>"

    def start(self) -> None:
        """Spawn and begin ``initialize``; returns at once (ops wait for the reply)."""
        self._popen = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self._env, cwd=self._cwd,
            # Always its own process group (signalled as one); a session of its own unless
            # ``codex.shared_session`` (orbitdock.codex.priority explains the choice).
            start_new_session=not self._config.shared_session,
            process_group=0 if self._config.shared_session else None,
            umask=child_umask())  # the user's own: codex writes into their projects
        logger.info("started %s: %s", self, " ".join(self.argv))
        # The reader starts last: when a child dies at once, the reader joins the
        # stderr and waiter threads, which must already be running.
        self._threads = [long_lived(threading.Thread(
                             target=target, name=f"codex-{self.proc_id}-{name}", daemon=True))
                         for name, target in (("writer", self._write_loop),
                                              ("stderr", self._stderr_loop),
                                              ("waiter", self._wait_loop),
                                              ("reader", self._read_loop))]
        for thread in self._threads:
            thread.start()

    def post(self, op: Op) -> None:
        self._inbox.put(op)
        self._wake()

    def stop(self, deadline: float | None = None) -> None:
        """Close stdin, then SIGTERM, then SIGKILL (each after ``stop_timeout_s``)."""
        self._stopping = True
        self._out.put(None)
        if self._popen is None:
            return
        deadline = deadline or time.monotonic() + self._config.stop_timeout_s
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                self._signal(sig)
                deadline = time.monotonic() + self._config.stop_timeout_s
            try:
                self._popen.wait(timeout=max(0.0, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                continue
        self._inbox.put(("stop", None))
        self._wake()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=self._config.stop_timeout_s)

    def unrun_ops(self) -> list[Op]:
        """After ``on_exit`` fired: ops posted that never ran (the poster fails or re-posts).

        Also closes the wake pipe: the poster promises to post nothing more, and a
        closed descriptor number must not be written to once the OS reuses it.
        """
        ops = list(self._unrun)
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, tuple):
                ops.append(item)
        self.close()
        return ops

    def close(self) -> None:
        """Release the wake pipe once the reader has finished; idempotent."""
        self._wakeup.close()

    def _send(self, line: bytes) -> None:
        self._out.put(line)

    # ------------------------------------------------------------ threads
    def _wake(self) -> None:
        self._wakeup.wake()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._popen.pid, sig)  # type: ignore[union-attr]
        except ProcessLookupError:
            pass

    def _write_loop(self) -> None:
        stdin = self._popen.stdin  # type: ignore[union-attr]
        while (line := self._out.get()) is not None:
            try:
                stdin.write(line)
                stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:
                logger.debug("%s: stdin closed (%s)", self, exc)
                break
        try:
            stdin.close()
        except OSError:
            pass

    def _stderr_loop(self) -> None:
        for raw in self._popen.stderr:  # type: ignore[union-attr]
            line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
            if line:
                self._stderr_tail.append(line)
                logger.log(codex_line_level(line), "codex[%s]: %s", self.pid, line)

    def _wait_loop(self) -> None:
        code = self._popen.wait()  # type: ignore[union-attr]
        self._inbox.put(("exited", code))
        self._wake()

    def _read_loop(self) -> None:
        reason = "reader thread crashed"
        try:
            reason = self._serve()
        except Exception:  # a bug here must still end in _finish, or sessions hang silently
            logger.exception("%s: reader failed", self)
        finally:
            self._finish(reason)

    def _serve(self) -> str:
        fd = self._popen.stdout.fileno()  # type: ignore[union-attr]
        self.request("initialize", {
            "clientInfo": {"name": self._config.client_name, "title": "orbitdock",
                           "version": _version()},
            "capabilities": {"experimentalApi": True}},
            self._on_initialized, timeout=self._config.start_timeout_s)
        reason = None
        while reason is None:
            wake_fd = self._wakeup.fileno()
            readable, _, _ = select.select([fd, wake_fd], [], [], self._next_timeout())
            if wake_fd in readable:
                self._wakeup.drain()
                reason = self._drain_inbox()
            if fd in readable:
                chunk = os.read(fd, READ_CHUNK)
                if not chunk:
                    reason = reason or "app-server closed its output"
                for line in self._lines.feed(chunk):
                    self._dispatch(line)
            self._expire()
        if (tail := self._lines.flush()):
            logger.warning("%s: truncated last line: %s", self, rpc.raw_preview(tail))
        return reason

    def _drain_inbox(self) -> str | None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return None
            if isinstance(item, tuple):
                kind, value = item
                if kind == "stop":
                    return "stopped"
                if kind == "exited":
                    self._drain_stdout()
                    return f"app-server exited ({value})"
            elif self._ready:
                self._run(item)
            else:
                self._deferred.append(item)

    def _drain_stdout(self) -> None:
        """The child is gone: take what it already wrote, without waiting for EOF."""
        fd = self._popen.stdout.fileno()  # type: ignore[union-attr]
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                break
            for line in self._lines.feed(chunk):
                self._dispatch(line)

    def _run(self, op: Op) -> None:
        try:
            op.run(self)
        except Exception:  # a bug in one session's op must not stop the process
            logger.exception("%s: op %r failed", self, op)

    def _on_initialized(self, result: Any, error: rpc.RpcError | None) -> None:
        if error is not None:
            if error.code == rpc.PROCESS_EXITED:
                return  # the exit itself is the reason
            self._failure = f"initialize failed: {error.message}"
            logger.error("%s: %s", self, self._failure)
            self._signal(signal.SIGKILL)
            return
        agent = (result or {}).get("userAgent", "")
        self.version = agent.split("/", 1)[1].split(" ", 1)[0] if "/" in agent else None
        if self._config.expected_version and self.version != self._config.expected_version:
            logger.warning("%s: codex %s, but orbitdock expects %s; the protocol may differ",
                           self, self.version, self._config.expected_version)
        self.notify("initialized")
        self._ready = True
        deferred, self._deferred = self._deferred, []
        for op in deferred:
            self._run(op)

    def _exit_reason(self, reason: str) -> str:
        if self._failure:
            return self._failure
        code = self._popen.returncode if self._popen else None
        return describe_exit(code, self._stderr_tail, "app-server") or reason

    def _finish(self, reason: str) -> None:
        if not self._stopping:
            # Initialize timed out, stdout closed early, or the child died: whatever is
            # left of its process group (sandboxed commands) has no one to report to.
            self._signal(signal.SIGKILL)
        self._out.put(None)
        for thread in self._threads:
            if thread.name.endswith(("stderr", "waiter")):
                thread.join(timeout=self._config.stop_timeout_s)
        if not self._stopping:
            reason = self._exit_reason(reason)
            logger.warning("%s: %s", self, reason)
        self._close_peer(reason)
        self._unrun = self._deferred
        self._on_exit(self, "stopped" if self._stopping else reason)


def _version() -> str:
    try:
        from orbitdock import __version__
    except ImportError:
        return "0"
    return str(__version__)
