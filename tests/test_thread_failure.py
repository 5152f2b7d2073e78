"""A long-lived thread that dies ends the daemon with a non-zero exit, never a deaf process."""

from __future__ import annotations

import json
import threading

import pytest

from conftest import REPO
from orbitdock import threads

EXIT_BOUND_S = 20.0  # the break comes ~3 s after start; then a normal, bounded stop

# Loaded by the daemon's interpreter at start-up (PYTHONPATH): the gateway loop raises
# on its fourth heartbeat, after the daemon is up and serving.
BREAK_THE_GATEWAY = '''
import actors.gateway as gateway

_heartbeat = gateway.GatewayLoop._heartbeat


def _breaking_heartbeat(self, xpub):
    self._test_beats = getattr(self, "_test_beats", 0) + 1
    if self._test_beats > 3:
        raise RuntimeError("injected: the gateway loop breaks")
    _heartbeat(self, xpub)


gateway.GatewayLoop._heartbeat = _breaking_heartbeat
'''


def test_a_daemon_whose_gateway_loop_raises_exits_non_zero(daemon_factory, tmp_path):
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(BREAK_THE_GATEWAY)
    d = daemon_factory(PYTHONPATH=f"{inject}:{REPO}")  # starts and serves first
    code, _, err = d.wait_exit(EXIT_BOUND_S)
    assert code == threads.EXIT_THREAD_FAILED, err
    records = [json.loads(line) for line in d.log_lines()]
    died = [r for r in records if r["msg"].startswith("thread gateway-loop died")]
    assert died and "injected: the gateway loop breaks" in died[0]["exc"], records[-5:]
    assert records[-1]["msg"] == "orbitdockd stopped" and records[-1]["exit_code"] == code


@pytest.fixture
def hook():
    previous = threading.excepthook
    fatal: list[str] = []
    threads.install_excepthook(lambda name, exc: fatal.append(name))
    yield fatal
    threading.excepthook = previous


def _raise() -> None:
    raise ValueError("boom")


def test_only_long_lived_threads_are_fatal_but_every_death_is_logged(hook, caplog):
    short = threading.Thread(target=_raise, name="short-helper")
    loop = threads.long_lived(threading.Thread(target=_raise, name="a-loop"))
    for thread in (short, loop):
        thread.start()
        thread.join(5)
    assert hook == ["a-loop"]
    logged = [r.getMessage() for r in caplog.records if r.name == "orbitdock.threads"]
    assert any(m.startswith("thread short-helper died: ValueError") for m in logged)
    assert any(m.startswith("thread a-loop died: ValueError; stopping") for m in logged)
