"""Private by default: 0700 dirs, 0600 data files, runtime dirs removed when their daemon is.

The sweep tests give their daemons a runtime base of their own (XDG_RUNTIME_DIR), so they
neither see nor touch the runtime dirs of daemons outside the test.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, wait_until
from orbitdock.paths import layout
from orbitdock.protocol import messages as m

WAIT_S = 15.0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def runtime_base(monkeypatch):
    """A runtime base of the test's own, for the test process and the daemons it starts."""
    base = Path(tempfile.mkdtemp(prefix="odrt-"))  # short: ipc paths are limited to ~100 bytes
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def open_umask():
    previous = os.umask(0o022)  # the daemons inherit a usual, permissive umask
    yield
    os.umask(previous)


def write_something(d):
    with d.client() as client:
        sid = client.request(m.CreateSession(provider="scripted", cwd="/", name="x")).session.id
        client.request(m.SendMessage(session_id=sid, content="hello"))


def test_data_dir_database_wal_shm_and_log_are_private(daemon_factory, tmp_path, open_umask,
                                                       runtime_base):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    write_something(d)
    lay = layout(d.config)
    db = lay.db_path
    assert wait_until(lambda: Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists(), WAIT_S)
    assert mode(home) == 0o700
    assert mode(home / "logs") == 0o700
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), home / "logs" / "orbitdockd.log",
                 home / "orbitdockd.json", home / "orbitdockd.lock"):
        assert mode(path) == 0o600, path
    assert mode(lay.runtime_dir) == 0o700


def test_files_left_open_by_an_earlier_start_are_made_private(daemon_factory, tmp_path,
                                                              runtime_base):
    home = tmp_path / "home"
    d = daemon_factory(home=home)
    write_something(d)
    assert d.stop() == 0
    db = layout(d.config).db_path
    opened = [db, home / "logs" / "orbitdockd.log"]
    for path in opened:
        path.chmod(0o644)
    (home / "logs").chmod(0o755)
    daemon_factory(home=home)
    assert [mode(p) for p in opened] == [0o600, 0o600]
    assert mode(home / "logs") == 0o700


def test_a_clean_stop_removes_the_runtime_dir(daemon_factory, tmp_path, runtime_base):
    d = daemon_factory(home=tmp_path / "home")
    runtime_dir = layout(d.config).runtime_dir
    assert (runtime_dir / "request.sock").exists()
    assert d.stop() == 0
    assert not runtime_dir.exists()


def test_a_start_removes_dead_daemons_runtime_dirs_but_never_a_live_ones(
        daemon_factory, tmp_path, runtime_base):
    dead = daemon_factory(home=tmp_path / "dead")
    live = daemon_factory(home=tmp_path / "live")
    dead_dir, live_dir = layout(dead.config).runtime_dir, layout(live.config).runtime_dir
    dead.kill9()
    assert (dead_dir / "request.sock").exists()  # left behind by kill -9
    unknown = runtime_base / f"orbitdock-{os.getuid()}-nolockfile"  # no lock: never ours to judge
    unknown.mkdir()
    third = daemon_factory(home=tmp_path / "third")
    assert not dead_dir.exists()
    assert live_dir.exists() and unknown.exists()
    assert any("removed the stale runtime dir" in line and str(dead_dir) in line
               and f"pid {dead.proc.pid}" in line for line in third.log_lines())
    with live.client() as client:
        assert client.request(m.GetStatus()).pid == live.proc.pid


CHILD_UMASK_SCRIPT = r"""
import os, sys, time
from orbitdock import privacy
from orbitdock.codex.appserver import AppServerProcess
from orbitdock.config import CodexConfig

os.umask(0o022)
privacy.restrict_umask()
out = sys.argv[1]
proc = AppServerProcess(1, ["/bin/sh", "-c", f"umask > {out}"], env=dict(os.environ),
                        config=CodexConfig(), on_exit=lambda *a: None)
proc.start()
deadline = time.monotonic() + 10
while not (os.path.exists(out) and os.path.getsize(out)):
    if time.monotonic() > deadline:
        sys.exit("no umask written")
    time.sleep(0.02)
proc.stop()
print(oct(os.umask(0o077)))
"""


def test_codex_children_get_the_users_umask_back(tmp_path):
    out = tmp_path / "umask"
    result = subprocess.run([sys.executable, "-c", CHILD_UMASK_SCRIPT, str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=WAIT_S)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0o77"  # the daemon's own files stay private
    assert out.read_text().strip() == "0022"  # codex's files in the user's project do not
