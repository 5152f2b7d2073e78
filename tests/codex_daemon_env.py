"""What the direct-Codex end-to-end tests share: the scripted model, a daemon whose codex
runs against it (CODEX_HOME under the repository: codex refuses its helper binaries under
the temp dir), and helpers to create sessions and wait on them, every wait bounded.
The fixtures are imported by the test modules (``from codex_daemon_env import ...``).
"""

from __future__ import annotations

import shutil
import uuid

import psutil
import pytest

from conftest import TEST_ROOT, wait_until
from orbitdock.codex.home import write_sim_codex_home
from orbitdock.codex.install import CodexNotFound, find_codex
from orbitdock.protocol import messages as m

CODEX_MARKS = pytest.mark.codex  # every test module sets pytestmark = CODEX_MARKS
TURN_TIMEOUT_S = 30

try:
    find_codex()
except CodexNotFound as exc:  # pragma: no cover - bin/setup installs it
    CODEX_MARKS = [CODEX_MARKS, pytest.mark.skip(reason=str(exc))]


@pytest.fixture
def codex_daemon(daemon_factory, sim, tmp_path):
    # CODEX_HOME outside /tmp (TEST_ROOT): codex refuses its helper binaries under it.
    codex_home = TEST_ROOT / f"e2e-{uuid.uuid4().hex[:8]}"
    env = write_sim_codex_home(codex_home, sim.url)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    holder = {}

    def start(**extra):
        holder["d"] = daemon_factory(home=tmp_path / "home", **env, **extra)
        return holder["d"]

    start.workspace = workspace
    start.codex_home = codex_home
    yield start
    if "d" in holder:
        holder["d"].stop()
    shutil.rmtree(codex_home, ignore_errors=True)


def state(client, sid):
    return client.request(m.SubscribeSession(session_id=sid)).session


def create(client, workspace, policy="untrusted", name=None):
    return client.request(m.CreateSession(
        provider="codex", cwd=str(workspace), model="gpt-5.5", approval_policy=policy,
        sandbox_mode="workspace-write", name=name), timeout=TURN_TIMEOUT_S).session.id


def wait_status(client, sid, *statuses, timeout=TURN_TIMEOUT_S):
    assert wait_until(lambda: state(client, sid).work_status in statuses, timeout), \
        (state(client, sid).work_status, state(client, sid).last_error)
    return state(client, sid)


def wait_turn_done(client, sid, turns_before, timeout=TURN_TIMEOUT_S):
    def done():
        st = state(client, sid)
        return st.turn_count > turns_before and st.current_turn_id is None
    assert wait_until(done, timeout), state(client, sid)
    return state(client, sid)


def app_servers(daemon_pid: int, name: str = "") -> list[int]:
    """The daemon's live app-server processes (whose command line also holds ``name``)."""
    pids = []
    for proc in psutil.Process(daemon_pid).children(recursive=True):
        try:
            cmdline = proc.cmdline()
            if (proc.status() != psutil.STATUS_ZOMBIE and "app-server" in cmdline
                    and name in " ".join(cmdline)):
                pids.append(proc.pid)
        except psutil.Error:  # exited while we looked
            pass
    return pids


def user_texts(st) -> list[str]:
    return [x.content for x in st.messages if x.type == "user"]
