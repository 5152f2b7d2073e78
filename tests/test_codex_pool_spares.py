"""CodexPoolActor's spare process and the app-servers' priority and arguments, against the
fake app-server of ``fake_app_server.py``. Every wait is bounded."""

from __future__ import annotations

import os
import signal
import time
import uuid

import psutil
import pytest

from actors.codex_pool import CodexPoolActor, Describe
from codex_session import WAIT_S, Session, make_base_dir
from fake_app_server import FAKE_RECOVERY_SERVER, describe_when, fake_codex
from orbitdock.config import CodexConfig
from orbitdock.connectors import events as ev


@pytest.fixture(scope="module")
def base_dir():
    yield from make_base_dir("pool-spares")


def nice_when(pid: int, value: int) -> bool:
    """True once every thread of ``pid`` has nice ``value`` (bounded wait)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        values = {os.getpriority(os.PRIO_PROCESS, t.id) for t in psutil.Process(pid).threads()}
        if values == {value}:
            return True
        assert time.monotonic() < deadline, f"pid {pid}: nice {values}, expected {value}"
        time.sleep(0.02)


def test_spare_process_is_kept_idle_and_takes_the_recovery(base_dir):
    """A spare stays empty while others have room, then hosts a dead process's resumes;
    idle processes beyond the spare count are stopped."""
    binary = fake_codex(base_dir, FAKE_RECOVERY_SERVER)
    gate = base_dir / f"gate-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "FAKE_RESUME_BARRIER": "2",  # both resumes in flight on one process
           "FAKE_RESUME_GATE": str(gate)}  # and answered once the test opens the gate
    gate.touch()
    config = CodexConfig(threads_per_process=2, recovery_batch=2, resume_timeout_s=5,
                         spare_processes=1, spare_delay_s=0.05, session_nice=5,
                         shared_session=True)
    pool = CodexPoolActor.start(config, env=env, binary=binary)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        assert pool.ask(Describe(), timeout=5) == []  # no session: no spare either
        first = Session(pool, base_dir)
        first.start()
        working, spare = describe_when(pool, [1, 0])
        # sessions' work yields to recovery: the spare keeps the daemon's priority
        assert nice_when(working["pid"], ours + 5) and nice_when(spare["pid"], ours)
        for proc in (working, spare):  # nice values only count within one session
            assert os.getsid(proc["pid"]) == os.getsid(0)  # (Linux's autogroup scheduler)
            assert os.getpgid(proc["pid"]) == proc["pid"]  # still stopped as a group
        second = Session(pool, base_dir)
        second.start()
        busy, idle = describe_when(pool, [2, 0])
        assert idle["pid"] == spare["pid"]  # the second session did not spread onto it
        gate.unlink()
        os.kill(busy["pid"], signal.SIGKILL)
        # while the resumes run no spare is started (its start would take their CPU)
        (host,) = describe_when(pool, [2])
        time.sleep(0.3)  # six times spare_delay_s
        assert [p["pid"] for p in pool.ask(Describe(), timeout=5)] == [host["pid"]]
        gate.touch()
        for session in (first, second):
            session.wait(ev.BackendRecovered)
        host, new_spare = describe_when(pool, [2, 0])
        assert host["pid"] == spare["pid"] and new_spare["pid"] not in (busy["pid"], spare["pid"])
        assert sorted(host["threads"]) == sorted(busy["threads"])
        # its resumes done, the old spare is an ordinary process (every thread); the new
        # spare waits at the daemon's priority
        assert nice_when(host["pid"], ours + 5) and nice_when(new_spare["pid"], ours)
        for session in (first, second):
            session.connector.stop()
        # two idle processes, one spare wanted: the one holding no loaded thread goes
        (kept,) = describe_when(pool, [0])
        assert kept["pid"] == host["pid"]
        deadline = time.monotonic() + WAIT_S
        while psutil.pid_exists(new_spare["pid"]):  # stopped and reaped
            assert time.monotonic() < deadline, "the retired process is still running"
            time.sleep(0.02)
    finally:
        pool.stop(timeout=10)


@pytest.mark.parametrize("shared", [True, False])
def test_config_overrides_reach_every_app_server(base_dir, shared):
    binary = fake_codex(base_dir, FAKE_RECOVERY_SERVER)  # (it passes its arguments on)
    config = CodexConfig(spare_processes=0, shared_session=shared,
                         config_overrides='features.shell_snapshot=false; model="gpt-x"')
    assert CodexConfig().shared_session  # the default
    pool = CodexPoolActor.start(config, env={**os.environ, "FAKE_RESUME_BARRIER": "1"},
                                binary=binary)
    try:
        Session(pool, base_dir).start()
        (proc,) = describe_when(pool, [1])
        assert psutil.Process(proc["pid"]).cmdline()[-5:] == [
            "app-server", "-c", "features.shell_snapshot=false", "-c", 'model="gpt-x"']
        # shared: in the daemon's session, where nice values count; else a session of
        # its own; a process group of its own either way (stopped as one)
        assert (os.getsid(proc["pid"]) == os.getsid(0)) is shared
        assert os.getpgid(proc["pid"]) == proc["pid"]
    finally:
        pool.stop(timeout=10)
