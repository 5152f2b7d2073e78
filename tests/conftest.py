"""Shared fixtures: real daemons in subprocesses, on private data dirs and ipc sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orbitdock.client import Client, Subscription, find_daemon
from orbitdock.codex.home import outside_temp_dir
from orbitdock.config import load
from orbitdock.protocol import messages as m
from orbitdock.sim.server import SimServer

REPO = Path(__file__).resolve().parent.parent
# CODEX_HOMEs and codex work dirs of the tests: under the repository, or in the user's
# cache when the clone is under the temp dir (codex refuses its helper binaries there).
TEST_ROOT = outside_temp_dir(REPO / ".orbitdock-test")
START_TIMEOUT_S = 30.0  # generous: CI machines are shared and sometimes very loaded
STOP_TIMEOUT_S = 15.0


def pytest_report_header(config) -> str:
    return f"codex homes of the tests under {TEST_ROOT}"


class DaemonProcess:
    """One orbitdockd child process with its own ORBITDOCK_HOME."""

    def __init__(self, home: Path, extra_args: list[str], env: dict[str, str],
                 watcher: bool = False, serves: Path | None = None):
        self.home = home  # its ORBITDOCK_HOME
        self.serves = serves or home  # the data dir it runs on (--demo: <home>/demo)
        self.watcher = watcher
        self.extra_args = extra_args
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.clients: list = []

    @property
    def config(self):
        return load(env={"ORBITDOCK_HOME": str(self.serves)})

    def spawn(self, stdout: int = subprocess.DEVNULL) -> "DaemonProcess":
        """Start the process without waiting for it to serve (see ``start``)."""
        env = dict(os.environ, **self.env, ORBITDOCK_HOME=str(self.home))
        env.setdefault("ORBITDOCK_LOGGING__STDERR", "false")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors.daemon",
             *([] if self.watcher else ["--no-watcher"]), *self.extra_args],
            cwd=REPO, env=env, stdout=stdout, stderr=subprocess.PIPE)
        return self

    def wait_exit(self, timeout: float = START_TIMEOUT_S) -> tuple[int, str, str]:
        """Exit code, stdout and stderr of a daemon expected to end within ``timeout``."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, (out or b"").decode(), err.decode()

    def start(self) -> "DaemonProcess":
        self.spawn()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"orbitdockd exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                endpoints = find_daemon(self.config)
                if endpoints.pid == self.proc.pid:
                    with Client(endpoints, timeout=1.0) as client:
                        client.request(m.GetStatus())
                    return self
            except Exception:  # not up yet
                pass
            time.sleep(0.05)
        raise RuntimeError("orbitdockd did not come up in time")

    def client(self, timeout: float = 5.0) -> Client:
        client = Client(find_daemon(self.config), timeout=timeout)
        self.clients.append(client)
        return client

    def subscription(self) -> Subscription:
        sub = Subscription(find_daemon(self.config), config=self.config)
        self.clients.append(sub)
        return sub

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT_S)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
                raise
        return self.proc.returncode

    def log_lines(self) -> list[str]:
        path = self.serves / "logs" / "orbitdockd.log"
        return path.read_text().splitlines() if path.exists() else []

    def close_clients(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()


@pytest.fixture
def daemon_factory(tmp_path):
    started: list[DaemonProcess] = []

    def make(*extra_args: str, home: Path | None = None, watcher: bool = False,
             wait: bool = True, serves: Path | None = None, **env: str) -> DaemonProcess:
        """A started daemon; with ``wait=False`` only spawned (for one expected to exit)."""
        d = DaemonProcess(home or tmp_path / f"home{len(started)}", list(extra_args), env,
                          watcher, serves)
        started.append(d)
        return d.start() if wait else d.spawn(stdout=subprocess.PIPE)

    yield make
    for d in started:
        d.close_clients()
        try:
            d.stop()
        except Exception:
            pass


@pytest.fixture
def daemon(daemon_factory) -> DaemonProcess:
    return daemon_factory()


def wait_until(predicate, timeout: float, poll=None, interval: float = 0.02) -> bool:
    """Bounded wait: True once predicate() holds; ``poll(dt)`` pumps a subscription."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if poll is not None:
            poll(interval)
        else:
            time.sleep(interval)
    return predicate()


@pytest.fixture
def sim():
    """The scripted model server on 127.0.0.1, started (codex and the demo talk to it)."""
    with SimServer() as server:
        server.start()
        yield server
