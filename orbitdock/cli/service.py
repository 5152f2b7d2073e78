"""`orbitdockctl service install|uninstall|status` and `orbitdockctl shutdown`.

``service install`` fills in ``conf/orbitdock.service`` (a systemd user unit,
``Type=notify``: orbitdockd says READY=1 through ``orbitdock.sd_notify``) with this
installation's ``orbitdockd`` and the current ``ORBITDOCK_HOME``/``CODEX_HOME``/``PATH``,
writes it to ``$XDG_CONFIG_HOME/systemd/user/`` (default ``~/.config``) and, when
``systemctl`` exists, reloads systemd and enables the unit. ``shutdown`` stops a
running daemon, however it was started, with SIGTERM (its clean stop path).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import psutil

from orbitdock.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_RUNNING,
    EXIT_TIMEOUT,
    CommandFailed,
    Context,
    pass_ctx,
)
from orbitdock.client import DaemonNotRunning, find_daemon
from orbitdock.paths import layout, read_runtime_file

UNIT_NAME = "orbitdock.service"
TEMPLATE = Path(__file__).resolve().parents[2] / "conf" / UNIT_NAME


def unit_path() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user" / UNIT_NAME


def orbitdockd_path() -> Path:
    """This installation's orbitdockd: next to the running Python (the venv's bin/)."""
    beside = Path(sys.executable).parent / "orbitdockd"  # not resolved: the venv's python
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which("orbitdockd")
    if found is None:
        raise CommandFailed("orbitdockd not found next to this Python or on PATH; run bin/setup")
    return Path(found).absolute()


def _quoted(value: str, *, exec_line: bool = False) -> str:
    """``value`` as one systemd word: double-quoted, with ``%`` (specifiers) and, on an
    Exec line, ``$`` (variable expansion) kept literal."""
    value = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if exec_line:
        value = value.replace("$", "$$")
    return f'"{value}"'


def render_unit(ctx: Context, config_file: str | None) -> str:
    try:
        template = TEMPLATE.read_text()
    except FileNotFoundError:
        raise CommandFailed(f"unit template missing: {TEMPLATE} (a checkout's conf/)") from None
    lay = layout(ctx.cfg)
    argv = [str(orbitdockd_path()), "--log-format", "text"]  # the journal shows people's lines
    if config_file:
        argv += ["--config", str(Path(config_file).absolute())]
    fields = {
        "EXEC_START": " ".join(_quoted(arg, exec_line=True) for arg in argv),
        "ORBITDOCK_HOME": _quoted(f"ORBITDOCK_HOME={lay.data_dir}"),
        "CODEX_HOME": _quoted(f"CODEX_HOME={lay.codex_home.absolute()}"),
        "PATH": _quoted(f"PATH={os.environ.get('PATH', os.defpath)}"),
    }
    for name, value in fields.items():
        template = template.replace(f"@{name}@", value)
    return template


def _daemon_pid(ctx: Context) -> int | None:
    try:
        return find_daemon(ctx.cfg).pid
    except DaemonNotRunning:
        return None


class Systemctl:
    """``systemctl --user``, when there is one; each step is echoed as it runs."""

    def __init__(self, ctx: Context, dry_run: bool):
        self.binary = shutil.which("systemctl")
        self.ctx, self.dry_run = ctx, dry_run
        self.ran: list[list[str]] = []

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str] | None:
        argv = ["systemctl", "--user", *args]
        self.ran.append(argv)
        if self.dry_run or self.binary is None:
            return None
        try:
            proc = subprocess.run([self.binary, "--user", *args], capture_output=True, text=True,
                                  timeout=self.ctx.cfg.client.systemctl_timeout_s)
        except subprocess.TimeoutExpired:
            bound = self.ctx.cfg.client.systemctl_timeout_s
            raise CommandFailed(f"{' '.join(argv)}: no answer within {bound:g}s",
                                EXIT_TIMEOUT) from None
        if check and proc.returncode != 0:
            raise CommandFailed(f"{' '.join(argv)} failed ({proc.returncode}): "
                                f"{(proc.stderr or proc.stdout).strip()}")
        return proc


def _say(ctx: Context, text: str) -> None:
    if not ctx.as_json:
        click.echo(text, err=True)


@click.group()
def service() -> None:
    """Run orbitdockd as a systemd user service."""


@service.command()
@click.option("--dry-run", is_flag=True, help="Print the unit and the steps; change nothing.")
@pass_ctx
def install(ctx: Context, dry_run: bool) -> None:
    """Write the user unit, reload systemd, enable (and start) orbitdock."""
    unit = render_unit(ctx, click.get_current_context().find_root().params.get("config_file"))
    path = unit_path()
    systemctl = Systemctl(ctx, dry_run)
    running = _daemon_pid(ctx)
    if dry_run:
        _say(ctx, f"would write {path}:")
        if not ctx.as_json:
            click.echo(unit, nl=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(unit)
        _say(ctx, f"wrote {path}")
    if systemctl.binary is None and not dry_run:
        _say(ctx, "systemctl not found: the unit is written but not enabled; "
                  "run `orbitdockd` yourself (or install it where systemd runs)")
    else:
        systemctl("daemon-reload")
        if running is None:
            systemctl("enable", "--now", UNIT_NAME)
        else:  # starting a second daemon on the same home would only fail
            systemctl("enable", UNIT_NAME)
            _say(ctx, f"orbitdockd is already running (pid {running}): stop it with "
                      f"`orbitdockctl shutdown`, then `systemctl --user start {UNIT_NAME}`")
        for argv in systemctl.ran:
            _say(ctx, f"{'would run' if dry_run else 'ran'}: {' '.join(argv)}")
    if ctx.as_json:
        click.echo(json.dumps({"path": str(path), "unit": unit, "dry_run": dry_run,
                               "systemctl": [" ".join(a) for a in systemctl.ran]}, indent=2))


@service.command()
@click.option("--dry-run", is_flag=True, help="Print the steps; change nothing.")
@pass_ctx
def uninstall(ctx: Context, dry_run: bool) -> None:
    """Stop and disable orbitdock, remove the user unit."""
    path = unit_path()
    if not path.exists():
        _say(ctx, f"not installed ({path} does not exist)")
        return
    systemctl = Systemctl(ctx, dry_run)
    if systemctl.binary is not None or dry_run:
        systemctl("disable", "--now", UNIT_NAME, check=False)  # maybe never loaded
    if not dry_run:
        path.unlink()
    if systemctl.binary is not None or dry_run:
        systemctl("daemon-reload")
    _say(ctx, f"{'would remove' if dry_run else 'removed'} {path}")
    for argv in systemctl.ran:
        _say(ctx, f"{'would run' if dry_run else 'ran'}: {' '.join(argv)}")


@service.command("status")
@pass_ctx
def service_status(ctx: Context) -> None:
    """Is the unit installed, enabled, active; is a daemon running. Exit 3 if not running."""
    path = unit_path()
    systemctl = Systemctl(ctx, dry_run=False)
    state: dict[str, object] = {"unit": str(path), "installed": path.exists(),
                                "enabled": None, "active": None, "pid": _daemon_pid(ctx)}
    if systemctl.binary is not None and path.exists():
        for key in ("enabled", "active"):
            proc = systemctl(f"is-{key}", UNIT_NAME, check=False)
            state[key] = (proc.stdout or proc.stderr).strip() if proc else None
    systemd = ("systemctl not found" if systemctl.binary is None
               else f"{state['enabled'] or '-'}, {state['active'] or '-'}")
    pid = state["pid"]
    ctx.emit(state, f"unit    {path} ({'installed' if state['installed'] else 'not installed'})\n"
                    f"systemd {systemd}\n"
                    f"daemon  {f'running (pid {pid})' if pid else 'not running'}")
    if pid is None:
        sys.exit(EXIT_NOT_RUNNING)  # LSB status: "not running", with no error message


@click.command()
@click.option("--wait", "wait_s", type=float, metavar="SECONDS",
              help="How long to wait for it to exit (default client.shutdown_timeout_s).")
@pass_ctx
def shutdown(ctx: Context, wait_s: float | None) -> None:
    """Stop the running daemon cleanly (SIGTERM, then wait). Exit 3 if it is not running."""
    wait_s = ctx.cfg.client.shutdown_timeout_s if wait_s is None else wait_s
    try:
        pid = find_daemon(ctx.cfg).pid
    except DaemonNotRunning as exc:
        raise CommandFailed(str(exc), EXIT_NOT_RUNNING) from None
    try:
        process = psutil.Process(pid)
        info = read_runtime_file(layout(ctx.cfg)) or {}
        # A pid reused by a process born after the daemon wrote its runtime file is not it.
        if process.create_time() > float(info.get("started_at", float("inf"))) + 1.0:
            raise CommandFailed(f"orbitdockd (pid {pid}) is not running; pid {pid} is now "
                                "another process (stale runtime file)", EXIT_NOT_RUNNING)
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        raise CommandFailed(f"orbitdockd (pid {pid}) is not running", EXIT_NOT_RUNNING) from None
    except psutil.AccessDenied:
        raise CommandFailed(f"not allowed to signal orbitdockd (pid {pid})", EXIT_FAILED) from None
    _say(ctx, f"sent SIGTERM to orbitdockd (pid {pid}); waiting up to {wait_s:g}s")
    deadline = time.monotonic() + wait_s
    while _alive(process):
        if time.monotonic() > deadline:
            raise CommandFailed(f"orbitdockd (pid {pid}) still running after {wait_s:g}s; "
                                "see `orbitdockctl logs`", EXIT_TIMEOUT)
        time.sleep(0.05)
    ctx.emit({"stopped": pid}, f"orbitdockd (pid {pid}) stopped")


def _alive(process: psutil.Process) -> bool:
    try:  # an exited child of someone else's shell stays a zombie until reaped: gone for us
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def register(group: click.Group) -> None:
    group.add_command(service)
    group.add_command(shutdown)
