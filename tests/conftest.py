"""Shared fixtures: real daemons in subprocesses (orbitdock.harness), on private data dirs
and ipc sockets."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from orbitdock.codex.home import outside_temp_dir
from orbitdock.harness import STOP_TIMEOUT_S, DaemonProcess  # noqa: F401 (tests import it)
from orbitdock.sim.server import SimServer

REPO = Path(__file__).resolve().parent.parent
# CODEX_HOMEs and codex work dirs of the tests: under the repository, or in the user's
# cache when the clone is under the temp dir (codex refuses its helper binaries there).
TEST_ROOT = outside_temp_dir(REPO / ".orbitdock-test")
START_TIMEOUT_S = 30.0  # generous: CI machines are shared and sometimes very loaded


def pytest_report_header(config) -> str:
    return f"codex homes of the tests under {TEST_ROOT}"


@pytest.fixture
def daemon_factory(tmp_path):
    started: list[DaemonProcess] = []

    def make(*extra_args: str, home: Path | None = None, watcher: bool = False,
             wait: bool = True, serves: Path | None = None, **env: str) -> DaemonProcess:
        """A started daemon; with ``wait=False`` only spawned (for one expected to exit)."""
        d = DaemonProcess(home or tmp_path / f"home{len(started)}", args=extra_args, env=env,
                          watcher=watcher, start_timeout=START_TIMEOUT_S, serves=serves)
        started.append(d)
        return d.start() if wait else d.spawn(stdout=subprocess.PIPE)

    yield make
    for d in started:  # all stopped before any cleanup: several may share one home
        d.close_clients()
        d.stop()
    for d in started:
        d.cleanup()


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
