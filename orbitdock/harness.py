"""One orbitdockd child process for the tests, the benchmarks and the load tool.

``DaemonProcess`` starts ``python -m actors.daemon`` (or a given command) on its own
ORBITDOCK_HOME, waits until it answers ``GetStatus``, and stops, kills -9, measures and
cleans it up; ``attach=True`` measures someone else's daemon and never signals it.
``pipelined`` sends a batch of requests without waiting and collects the replies.

Each caller's extras are options, not copies: the tests pass a home under their tmp dir
and extra daemon arguments; the benchmarks a throw-away home and, for A/B runs, another
daemon command; the load tool attaches, keeps the home, kills -9 and samples CPU/RSS.
Every wait here is bounded; a daemon still running at interpreter exit is stopped.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import psutil

from orbitdock.codex.home import outside_temp_dir
from orbitdock.client import Client, ClientError, Endpoints, Subscription, find_daemon
from orbitdock.config import load
from orbitdock.paths import layout
from orbitdock.protocol import messages as m

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0  # restoring 200 sessions from the database takes a while on 2 cores
STOP_TIMEOUT_S = 30.0  # SIGTERM -> exit (final flush, app-servers stopped in parallel)
KILL_WAIT_S = 10.0  # SIGKILL -> reaped
ORPHAN_WAIT_S = 3.0  # app-servers of a killed daemon exit on stdin EOF; then they get SIGKILL
START_POLL_S = 0.05
STDERR_TAIL = 2000  # characters of the daemon's stderr quoted when it fails to start

_LIVE: "set[DaemonProcess]" = set()  # started and not yet stopped: stopped at exit


@atexit.register
def _stop_leftovers() -> None:
    for daemon in list(_LIVE):
        try:
            daemon.stop()
        except Exception:  # at exit, best effort: the next daemon must still start
            logger.exception("stopping a leftover orbitdockd at exit")


@dataclass
class ProcSample:
    at: float
    cpu_s: float  # daemon user+system CPU seconds so far
    rss: int  # daemon RSS bytes
    codex_procs: int  # live app-server processes
    codex_rss: int  # their RSS bytes, summed


class DaemonProcess:
    """One orbitdockd child with its own ORBITDOCK_HOME (``attach``: someone else's daemon).

    ``home``: the data dir; None makes a throw-away one under the temp dir (``home_prefix``),
    removed by ``cleanup`` unless ``keep``. ``env``: extra environment, also seen by
    ``config``. ``args``: extra daemon arguments. ``cmd``: the daemon command instead of
    ``python -m actors.daemon`` (A/B runs of a patch). ``watcher``: run the rollout watcher
    (otherwise ``--no-watcher``). The daemon's stderr goes to ``<home>/daemon.stderr``.
    """

    def __init__(self, home: Path | None = None, *, env: dict[str, str] | None = None,
                 args: Sequence[str] = (), cmd: Sequence[str] | None = None,
                 watcher: bool = False, attach: bool = False, keep: bool = False,
                 home_prefix: str = "orbitdock-daemon-",
                 start_timeout: float = START_TIMEOUT_S, serves: Path | None = None):
        self.attach = attach
        self.keep = keep
        self.own_home = home is None and not attach
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix=home_prefix))
        self._serves = Path(serves) if serves else None  # its data dir, when not home (--demo)
        self.env = dict(env or {})
        self.args = list(args)
        self.cmd = list(cmd or [sys.executable, "-m", "actors.daemon"])
        self.watcher = watcher
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.endpoints: Endpoints | None = None
        self.starts = 0
        self.clients: list[Any] = []
        self._stderr = None

    # ------------------------------------------------------------ where things are
    @property
    def serves(self) -> Path:
        """The data dir the daemon runs on: its home, or ``<home>/demo`` for ``--demo``."""
        return self._serves or self.home

    @property
    def config(self):
        if self.attach:
            return load()
        return load(env={**self.env, "ORBITDOCK_HOME": str(self.serves)})

    @property
    def db_path(self) -> Path:
        return layout(self.config).db_path

    @property
    def log_path(self) -> Path | None:
        return layout(self.config).log_path

    @property
    def stderr_path(self) -> Path:
        return self.home / "daemon.stderr"

    def log_lines(self) -> list[str]:
        path = self.log_path
        return path.read_text().splitlines() if path and path.exists() else []

    # ------------------------------------------------------------ lifecycle
    def spawn(self, stdout: int = subprocess.DEVNULL) -> "DaemonProcess":
        """Start the process without waiting for it to serve (``start`` waits; a daemon
        expected to exit is spawned, then ``wait_exit``)."""
        env = dict(os.environ, **self.env, ORBITDOCK_HOME=str(self.home))
        env.setdefault("ORBITDOCK_LOGGING__STDERR", "false")
        if self._stderr is None:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)  # as the daemon makes it
            self._stderr = open(self.stderr_path, "ab")
        args = [*self.cmd, *([] if self.watcher else ["--no-watcher"]), *self.args]
        # In the caller's session, as when started from the terminal its clients run in.
        # (Linux's autogroup splits the CPU between sessions first; every figure in
        # docs/ was measured this way. A daemon in a session of its own was tried at
        # 200 sessions and did no better: docs/RELIABILITY.md, "Nice values and Linux's
        # autogroup".)
        self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=stdout,
                                     stderr=self._stderr)
        self.pid = self.proc.pid
        self.starts += 1
        _LIVE.add(self)
        return self

    def wait_exit(self, timeout: float = START_TIMEOUT_S) -> tuple[int, str, str]:
        """Exit code, stdout (when spawned with a pipe) and stderr of a daemon expected to
        end within ``timeout``."""
        out, _ = self.proc.communicate(timeout=timeout)
        _LIVE.discard(self)
        self._stderr.flush()
        return self.proc.returncode, (out or b"").decode(), self.stderr_path.read_text(
            errors="replace")

    def start(self) -> "DaemonProcess":
        """Start (or attach) and return once the daemon answers; bounded by ``start_timeout``."""
        if self.attach:
            self.endpoints = find_daemon(self.config)
            self.pid = self.endpoints.pid
            return self
        self.spawn()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _LIVE.discard(self)
                raise RuntimeError(f"orbitdockd exited at start (rc {self.proc.returncode}): "
                                   f"{self.stderr_tail()}")
            try:
                endpoints = find_daemon(self.config)
                if endpoints.pid == self.proc.pid:
                    with Client(endpoints, timeout=1.0) as client:
                        client.request(m.GetStatus())
                    self.endpoints = endpoints
                    return self
            except ClientError:  # not up yet (no runtime file, stale file, no reply)
                pass
            time.sleep(START_POLL_S)
        self.kill9()
        raise RuntimeError(f"orbitdockd did not come up within {self.start_timeout:.0f}s: "
                           f"{self.stderr_tail()}")

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-STDERR_TAIL:]
        except OSError:
            return ""

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and psutil.pid_exists(self.pid)

    def kill9(self) -> tuple[float, list[int]]:
        """SIGKILL the daemon and reap it; returns when, and its app-servers (``reap_orphans``)."""
        if self.attach:
            raise RuntimeError("will not kill a daemon this harness did not start (attach)")
        orphans = app_server_pids(self.pid) if self.pid else []
        at = time.time()
        _LIVE.discard(self)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(KILL_WAIT_S)
        return at, orphans

    def stop(self) -> int | None:
        """SIGTERM and wait (the daemon's final flush); SIGKILL if it hangs. The exit code."""
        _LIVE.discard(self)
        if self.attach or self.proc is None:
            return None
        orphans = app_server_pids(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.error("orbitdockd did not stop within %.0fs; SIGKILL", STOP_TIMEOUT_S)
                self.proc.kill()
                self.proc.wait(KILL_WAIT_S)
        reap_orphans(orphans)
        return self.proc.returncode

    def cleanup(self, keep: bool | None = None) -> None:
        """After ``stop``: close the clients and the stderr file, remove the runtime dir and,
        if the home is the harness's own and not ``keep``, the home."""
        self.close_clients()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.attach:
            return
        try:
            shutil.rmtree(layout(self.config).runtime_dir, ignore_errors=True)
        except (OSError, ValueError):  # ValueError: a test's deliberately bad config
            pass
        keep = self.keep if keep is None else keep
        if self.own_home and not keep:
            shutil.rmtree(self.home, ignore_errors=True)
        elif self.own_home:
            print(f"orbitdockd home kept for inspection: {self.home}", file=sys.stderr)

    def __enter__(self) -> "DaemonProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self.cleanup()

    # ------------------------------------------------------------ clients
    def client(self, timeout: float = 5.0) -> Client:
        """A request client, closed by ``close_clients``/``cleanup``."""
        client = Client(find_daemon(self.config), timeout=timeout)
        self.clients.append(client)
        return client

    def subscription(self) -> Subscription:
        sub = Subscription(find_daemon(self.config), config=self.config)
        self.clients.append(sub)
        return sub

    def close_clients(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()

    # ------------------------------------------------------------ measuring
    def sample(self) -> ProcSample | None:
        if self.pid is None:
            return None
        try:
            proc = psutil.Process(self.pid)
            cpu = proc.cpu_times()
            rss = proc.memory_info().rss
        except psutil.Error:
            return None
        pids = app_server_pids(self.pid)
        codex_rss = 0
        for pid in pids:
            try:
                codex_rss += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                pass
        return ProcSample(time.time(), cpu.user + cpu.system, rss, len(pids), codex_rss)


def child_pids(daemon_pid: int, marker: str) -> list[int]:
    """Live children of the daemon with ``marker`` among their arguments.

    Direct children only: a sandboxed command is forked by an app-server and, until
    it execs, carries the app-server's command line, which would count it twice.
    """
    pids = []
    try:
        children = psutil.Process(daemon_pid).children(recursive=False)
    except psutil.Error:
        return pids
    for proc in children:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and marker in proc.cmdline():
                pids.append(proc.pid)
        except psutil.Error:  # exited while we looked
            pass
    return pids


def app_server_pids(daemon_pid: int) -> list[int]:
    """Live ``codex app-server`` children of the daemon."""
    return child_pids(daemon_pid, "app-server")


def reap_orphans(pids: list[int]) -> None:
    """App-servers of a dead daemon: wait for them to notice stdin EOF, then SIGKILL by pid."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=ORPHAN_WAIT_S)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=KILL_WAIT_S)


def scratch_codex_home(prefix: str) -> Path:
    """A fresh CODEX_HOME under ``<repo>/.orbitdock-test/`` (codex refuses its helper
    binaries under the temp dir, so it cannot live there)."""
    path = outside_temp_dir(REPO / ".orbitdock-test") / f"{prefix}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pipelined(client: Client, requests: Sequence[m.Request], timeout: float, *,
              spread_s: float = 0.0, raise_errors: bool = True) -> list[m.Reply]:
    """Send every request without waiting, then collect the replies in request order.

    ``spread_s`` > 0 spaces the sends evenly over that many seconds (staggered starts).
    ``raise_errors``: an ``Error`` reply raises RuntimeError (else it is returned like any
    reply). Raises TimeoutError if some reply is missing at the deadline.
    """
    ids = []
    t0 = time.monotonic()
    for i, request in enumerate(requests):
        if spread_s > 0:
            delay = t0 + i * spread_s / len(requests) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        ids.append(client.send(request))
    want = set(ids)
    replies: dict[str, m.Reply] = {}
    deadline = time.monotonic() + timeout
    while want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(want)} of {len(ids)} replies missing after {timeout:.0f}s")
        reply = client.recv_reply(left)
        if reply is not None and reply.id in want:
            if raise_errors and isinstance(reply, m.Error):
                raise RuntimeError(f"request failed: {reply.code}: {reply.message}")
            want.discard(reply.id)
            replies[reply.id] = reply
    return [replies[i] for i in ids]
