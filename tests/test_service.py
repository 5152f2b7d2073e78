"""Service mode: the systemd user unit `orbitdockctl service` writes, sd_notify READY/STOPPING
from a real daemon over a real AF_UNIX datagram socket, and `orbitdockctl shutdown`.
No test runs systemctl: PATH holds none, or --dry-run only prints the steps."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, STOP_TIMEOUT_S
from orbitdock import sd_notify

CLI_TIMEOUT_S = 60
WAIT_S = 30.0
ORBITDOCKD = Path(sys.executable).parent / "orbitdockd"  # the venv's, as the unit must name


def ctl(tmp_path: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """orbitdockctl with a private XDG_CONFIG_HOME and a PATH without systemctl."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir(exist_ok=True)
    env = dict(os.environ, ORBITDOCK_HOME=str(home), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
               PATH=str(empty_bin), CODEX_HOME=str(tmp_path / "codex home"))
    return subprocess.run([sys.executable, "-m", "orbitdock.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def test_install_dry_run_prints_the_unit_and_changes_nothing(tmp_path):
    home = tmp_path / "my home%1"  # a space and a systemd specifier character
    out = ctl(tmp_path, home, "service", "install", "--dry-run")
    assert out.returncode == 0, out.stderr
    unit = out.stdout
    assert not (tmp_path / "xdg").exists()
    lines = unit.splitlines()
    assert "Type=notify" in lines and "Restart=on-failure" in lines
    assert f'ExecStart="{ORBITDOCKD}" "--log-format" "text"' in lines
    assert f'Environment="ORBITDOCK_HOME={str(home).replace("%", "%%")}"' in lines
    assert f'Environment="CODEX_HOME={tmp_path}/codex home"' in lines
    assert f'Environment="PATH={tmp_path}/bin"' in lines
    assert "@" not in unit.replace("enable-linger", "")  # every field filled in
    assert f"would write {tmp_path}/xdg/systemd/user/orbitdock.service:" in out.stderr
    assert "would run: systemctl --user daemon-reload\n" in out.stderr
    assert "would run: systemctl --user enable --now orbitdock.service\n" in out.stderr

    config = tmp_path / "o.toml"
    config.write_text("[logging]\nlevel = \"DEBUG\"\n")
    out = ctl(tmp_path, home, "--config", str(config), "--json", "service", "install",
              "--dry-run")
    report = json.loads(out.stdout)
    assert f'ExecStart="{ORBITDOCKD}" "--log-format" "text" "--config" "{config}"' \
        in report["unit"].splitlines()
    assert report["systemctl"] == ["systemctl --user daemon-reload",
                                   "systemctl --user enable --now orbitdock.service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path):
    unit = tmp_path / "orbitdock.service"
    unit.write_text(ctl(tmp_path, tmp_path / "home", "service", "install", "--dry-run").stdout)
    check = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                           text=True, timeout=CLI_TIMEOUT_S)
    assert check.returncode == 0 and check.stderr == "", check.stderr
    # It does check: a unit naming a missing orbitdockd is refused.
    unit.write_text(unit.read_text().replace(str(ORBITDOCKD), str(tmp_path / "nope")))
    assert subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          timeout=CLI_TIMEOUT_S).returncode != 0


def test_install_status_uninstall_without_systemctl(tmp_path):
    home = tmp_path / "home"
    path = tmp_path / "xdg" / "systemd" / "user" / "orbitdock.service"
    printed = ctl(tmp_path, home, "service", "install", "--dry-run").stdout
    out = ctl(tmp_path, home, "service", "install")
    assert out.returncode == 0, out.stderr
    assert path.read_text() == printed
    assert "systemctl not found" in out.stderr

    status = ctl(tmp_path, home, "service", "status")
    assert status.returncode == 3  # LSB: not running
    assert f"{path} (installed)" in status.stdout and "systemctl not found" in status.stdout
    assert "daemon  not running" in status.stdout

    out = ctl(tmp_path, home, "service", "uninstall")
    assert out.returncode == 0 and not path.exists() and f"removed {path}" in out.stderr
    again = ctl(tmp_path, home, "service", "uninstall")
    assert again.returncode == 0 and "not installed" in again.stderr


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    # A short dir: AF_UNIX paths are limited to ~108 bytes.
    with tempfile.TemporaryDirectory(prefix="odn-") as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(WAIT_S)
        yield sock, path
        sock.close()


def test_daemon_tells_systemd_ready_then_stopping(daemon_factory, notify_socket):
    sock, path = notify_socket
    daemon = daemon_factory(NOTIFY_SOCKET=path)
    ready = sock.recv(4096).decode().splitlines()
    assert ready == ["READY=1", f"MAINPID={daemon.proc.pid}"]
    assert daemon.stop() == 0
    assert sock.recv(4096) == b"STOPPING=1"


def test_notify_abstract_socket_and_no_socket():
    name = f"orbitdock-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(WAIT_S)
        assert sd_notify.notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"READY=1"
    assert not sd_notify.notify("READY=1", {})
    assert not sd_notify.notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/notify"})


def test_shutdown_stops_the_daemon_cleanly(tmp_path, daemon):
    out = ctl(tmp_path, daemon.home, "shutdown")
    assert out.returncode == 0, out.stderr
    assert f"orbitdockd (pid {daemon.proc.pid}) stopped" in out.stdout
    assert daemon.proc.wait(STOP_TIMEOUT_S) == 0
    assert not (daemon.home / "orbitdockd.json").exists()  # it went through its stop path
    again = ctl(tmp_path, daemon.home, "shutdown")
    assert again.returncode == 3 and "not running" in again.stderr
    never = ctl(tmp_path, tmp_path / "never", "--json", "shutdown")
    assert never.returncode == 3
