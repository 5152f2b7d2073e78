"""One daemon per data dir: a second one is refused; a dead one's lock is taken over."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from orbitdock.paths import layout, read_runtime_file
from orbitdock.protocol import messages as m

REFUSE_TIMEOUT_S = 15.0


def test_a_second_daemon_on_the_same_home_exits_at_once_naming_the_first(daemon_factory,
                                                                         tmp_path):
    home = tmp_path / "home"
    first = daemon_factory(home=home)
    second = daemon_factory(home=home, wait=False)
    code, _, err = second.wait_exit(REFUSE_TIMEOUT_S)
    assert code == 1, err
    assert f"pid {first.proc.pid}" in err and "already running" in err
    assert "Traceback" not in err
    # The first one is untouched: still serving, its runtime file still names it.
    assert read_runtime_file(layout(first.config))["pid"] == first.proc.pid
    with first.client() as client:
        assert client.request(m.GetStatus()).pid == first.proc.pid


def test_a_dead_daemons_lock_is_taken_over_and_logged(daemon_factory, tmp_path):
    home = tmp_path / "home"
    first = daemon_factory(home=home)
    first.kill9()
    second = daemon_factory(home=home)
    with second.client() as client:
        assert client.request(m.GetStatus()).pid == second.proc.pid
    took_over = [line for line in second.log_lines() if "took over the lock" in line]
    assert took_over and f"pid {first.proc.pid}" in took_over[0]


def test_a_clean_stop_leaves_no_pid_behind(daemon_factory, tmp_path):
    home = tmp_path / "home"
    first = daemon_factory(home=home)
    assert first.stop() == 0
    second = daemon_factory(home=home)
    assert not [line for line in second.log_lines() if "took over the lock" in line]


def test_a_runtime_dir_in_use_by_another_daemon_is_refused(daemon_factory, tmp_path):
    runtime = Path(tempfile.mkdtemp(prefix="odrt-"))  # short: ipc paths are ~100 bytes at most
    try:
        first = daemon_factory("--runtime-dir", str(runtime), home=tmp_path / "a")
        second = daemon_factory("--runtime-dir", str(runtime), home=tmp_path / "b", wait=False,
                                ORBITDOCK_PATHS__RUNTIME_DIR_WAIT_S="0.2")
        code, _, err = second.wait_exit(REFUSE_TIMEOUT_S)
        assert code == 1, err
        assert f"in use by another orbitdockd (pid {first.proc.pid})" in err
        with first.client() as client:
            assert client.request(m.GetStatus()).pid == first.proc.pid
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
