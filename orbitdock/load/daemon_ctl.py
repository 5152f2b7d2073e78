"""Start, kill -9, restart, stop and measure one orbitdockd (or attach to a running one).

The daemon runs on a throw-away ORBITDOCK_HOME (under the system temp dir) and,
for codex sessions, a CODEX_HOME pointed at the load model; that one must be
outside the temp dir (codex refuses its helper binaries there), so it lives
under ``<repo>/.orbitdock-test/`` (in the user's cache for a clone under the temp dir). Every wait here is bounded.
"""

from __future__ import annotations

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

import psutil

from orbitdock.client import Client, ClientError, Endpoints, find_daemon
from orbitdock.codex.home import outside_temp_dir
from orbitdock.config import load
from orbitdock.paths import layout
from orbitdock.protocol import messages as m

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0  # restoring 200 sessions from the database takes a while on 2 cores
STOP_TIMEOUT_S = 30.0  # SIGTERM -> exit (final flush, app-servers stopped in parallel)
KILL_WAIT_S = 10.0  # SIGKILL -> reaped
ORPHAN_WAIT_S = 3.0  # app-servers of a killed daemon exit on stdin EOF; then they get SIGKILL
START_POLL_S = 0.05


@dataclass
class ProcSample:
    at: float
    cpu_s: float  # daemon user+system CPU seconds so far
    rss: int  # daemon RSS bytes
    codex_procs: int  # live app-server processes
    codex_rss: int  # their RSS bytes, summed


def app_server_pids(daemon_pid: int) -> list[int]:
    """Live ``codex app-server`` children of the daemon.

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
            if proc.status() != psutil.STATUS_ZOMBIE and "app-server" in proc.cmdline():
                pids.append(proc.pid)
        except psutil.Error:  # exited while we looked
            pass
    return pids


class DaemonCtl:
    """One orbitdockd child (``attach`` = someone else's: measure only, never kill)."""

    def __init__(self, env: dict[str, str], *, watcher: bool, home: Path | None = None,
                 attach: bool = False, keep: bool = False):
        self.attach = attach
        self.keep = keep
        self.own_home = home is None and not attach
        self.home = home or Path(tempfile.mkdtemp(prefix="orbitdock-load-"))
        self.env = dict(env)
        self.watcher = watcher
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.endpoints: Endpoints | None = None
        self.starts = 0
        self._stderr = None

    @property
    def config(self):
        env = {"ORBITDOCK_HOME": str(self.home), **self.env} if not self.attach else None
        return load(env=env)

    @property
    def db_path(self) -> Path:
        return layout(self.config).db_path

    @property
    def log_path(self) -> Path | None:
        return layout(self.config).log_path

    def start(self) -> Endpoints:
        if self.attach:
            self.endpoints = find_daemon(self.config)
            self.pid = self.endpoints.pid
            return self.endpoints
        env = dict(os.environ, **self.env, ORBITDOCK_HOME=str(self.home))
        env.setdefault("ORBITDOCK_LOGGING__STDERR", "false")
        if self._stderr is None:
            self._stderr = open(self.home / "daemon.stderr", "ab")
        args = [sys.executable, "-m", "actors.daemon"]
        if not self.watcher:
            args.append("--no-watcher")
        # In this tool's session, as when started from the terminal its clients run in.
        # (Linux's autogroup splits the CPU between sessions first; every figure in
        # docs/ was measured this way. A daemon in a session of its own was tried at
        # 200 sessions and did no better: docs/RELIABILITY.md, "Nice values and Linux's
        # autogroup".)
        self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr)
        self.pid = self.proc.pid
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.home / "daemon.stderr").read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"orbitdockd exited at start (rc {self.proc.returncode}): {tail}")
            try:
                endpoints = find_daemon(self.config)
                if endpoints.pid == self.proc.pid:
                    with Client(endpoints, timeout=1.0) as client:
                        client.request(m.GetStatus())
                    self.endpoints = endpoints
                    return endpoints
            except ClientError:  # not up yet (no runtime file, stale file, no reply)
                pass
            time.sleep(START_POLL_S)
        self.kill9()
        raise RuntimeError(f"orbitdockd did not come up within {START_TIMEOUT_S:.0f}s")

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and psutil.pid_exists(self.pid)

    def kill9(self) -> tuple[float, list[int]]:
        """SIGKILL the daemon and reap it; returns when, and its app-servers (``reap_orphans``)."""
        if self.attach:
            raise RuntimeError("will not kill a daemon this tool did not start (--attach)")
        orphans = app_server_pids(self.pid) if self.pid else []
        at = time.time()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(KILL_WAIT_S)
        return at, orphans

    def stop(self) -> int | None:
        """SIGTERM and wait (the daemon's final flush); SIGKILL if it hangs."""
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

    def cleanup(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.own_home and not self.keep:
            try:
                shutil.rmtree(layout(self.config).runtime_dir, ignore_errors=True)
            except OSError:
                pass
            shutil.rmtree(self.home, ignore_errors=True)


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


def codex_home_dir() -> Path:
    """A fresh CODEX_HOME outside the temp dir (see the module docstring)."""
    path = outside_temp_dir(REPO / ".orbitdock-test") / f"load-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True, exist_ok=True)
    return path
