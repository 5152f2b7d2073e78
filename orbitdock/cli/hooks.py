"""`orbitdockctl hooks install|uninstall|status`: orbitdock's hooks in Claude Code's settings.

``--user`` (default): ``$CLAUDE_CONFIG_DIR/settings.json``, else ``~/.claude/settings.json``;
``--project DIR``: ``DIR/.claude/settings.json``. The merge itself is
``orbitdock.claude.settings`` (the user's own hooks and every other key kept). A file
that changes is copied to ``<file>.orbitdock-backup-<time>`` first and replaced
atomically; ``--dry-run`` prints the diff and writes nothing. ``uninstall`` puts back
the backup byte for byte when the file holds nothing else since the install.
These commands need no running daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import click

from orbitdock.claude import settings as claude_settings
from orbitdock.cli.common import CommandFailed, Context, pass_ctx
from orbitdock.config import PathsConfig

BACKUP_SUFFIX = ".orbitdock-backup-"


def settings_path(user: bool, project: str | None) -> Path:
    if project is not None:
        return Path(project).expanduser().resolve() / ".claude" / "settings.json"
    config_dir = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(config_dir) if config_dir else Path.home() / ".claude") / "settings.json"


def hook_command(ctx: Context, explicit: str | None) -> str:
    """The forwarder (``orbitdock.claude.settings.default_command``); with
    ORBITDOCK_HOME when this orbitdockctl talks to a non-default home."""
    command = explicit or claude_settings.default_command()
    if not command:
        raise CommandFailed("orbitdock-hook not found (install orbitdock, or pass --command)")
    home = Path(ctx.cfg.paths.data_dir).expanduser().resolve()
    if home != Path(PathsConfig().data_dir).expanduser().resolve():
        command = f"ORBITDOCK_HOME={json.dumps(str(home))} {command}"
    return command


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _write(path: Path, text: str) -> Path | None:
    """Back the old file up (if any), then replace it atomically; returns the backup."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(path.name + BACKUP_SUFFIX + time.strftime("%Y%m%d-%H%M%S"))
        n = 1
        while backup.exists():
            n += 1
            backup = backup.with_name(f"{backup.name.split('~')[0]}~{n}")
        shutil.copy2(path, backup)
    tmp = path.with_name(f".{path.name}.orbitdock-tmp")
    tmp.write_text(text)
    if backup is not None:
        shutil.copymode(backup, tmp)
    os.replace(tmp, path)
    return backup


def _newest_backup(path: Path) -> Path | None:
    backups = sorted(path.parent.glob(path.name + BACKUP_SUFFIX + "*"),
                     key=lambda p: p.stat().st_mtime_ns)
    return backups[-1] if backups else None


def _options(command):
    command = click.option("--project", "project", metavar="DIR",
                           help="The project's .claude/settings.json instead of the user's.")(command)
    command = click.option("--user", "user", is_flag=True, default=True,
                           help="The user's settings (the default).")(command)
    return command


@click.group()
def hooks() -> None:
    """Claude Code hooks: install, uninstall, status."""


@hooks.command("install")
@_options
@click.option("--dry-run", is_flag=True, help="Print the change; write nothing.")
@click.option("--command", "explicit", help="The hook command (default: orbitdock-hook).")
@pass_ctx
def install(ctx: Context, user: bool, project: str | None, dry_run: bool,
            explicit: str | None) -> None:
    """Merge orbitdock's hooks into Claude's settings.json (idempotent)."""
    path = settings_path(user, project)
    before = _read(path)
    try:
        after = claude_settings.install(before, hook_command(ctx, explicit),
                                        ctx.cfg.claude.permission_wait_s)
    except claude_settings.SettingsError as exc:
        raise CommandFailed(f"{path}: {exc}; not changed") from None
    result = {"path": str(path), "changed": after != before, "dry_run": dry_run}
    if dry_run or after == before:
        text = claude_settings.diff(before, after, str(path)) if dry_run else ""
        ctx.emit(dict(result, diff=text), text or f"{path}: orbitdock's hooks already installed")
        return
    backup = _write(path, after)
    result["backup"] = str(backup) if backup else None
    ctx.emit(result, f"{path}: orbitdock's hooks installed"
                     + (f" (backup: {backup})" if backup else ""))


@hooks.command("uninstall")
@_options
@click.option("--dry-run", is_flag=True, help="Print the change; write nothing.")
@pass_ctx
def uninstall(ctx: Context, user: bool, project: str | None, dry_run: bool) -> None:
    """Take orbitdock's hooks out of Claude's settings.json (the rest stays)."""
    path = settings_path(user, project)
    before = _read(path)
    try:
        after = claude_settings.uninstall(before)
    except claude_settings.SettingsError as exc:
        raise CommandFailed(f"{path}: {exc}; not changed") from None
    result = {"path": str(path), "changed": after != before, "dry_run": dry_run}
    if after != before:
        # Nothing else changed since the install: the pre-install bytes, exactly.
        backup = _newest_backup(path)
        if backup is not None:
            original = backup.read_text()
            try:
                if json.loads(original or "{}") == json.loads(after or "{}"):
                    after = original
            except ValueError:
                pass
    if dry_run or after == before:
        text = claude_settings.diff(before, after, str(path)) if dry_run else ""
        ctx.emit(dict(result, diff=text), text or f"{path}: no orbitdock hooks to remove")
        return
    _write(path, after)
    ctx.emit(result, f"{path}: orbitdock's hooks removed")


@hooks.command("status")
@_options
@pass_ctx
def status(ctx: Context, user: bool, project: str | None) -> None:
    """Which Claude hook events run orbitdock-hook."""
    path = settings_path(user, project)
    try:
        report = claude_settings.status(_read(path))
    except claude_settings.SettingsError as exc:
        raise CommandFailed(f"{path}: {exc}") from None
    report["path"] = str(path)
    if report["complete"]:
        text = f"{path}: installed ({len(report['installed'])} events)"
    elif report["installed"]:
        text = f"{path}: partly installed; missing {', '.join(report['missing'])}"
    else:
        text = f"{path}: not installed (orbitdockctl hooks install)"
    ctx.emit(report, text)


def register(group: click.Group) -> None:
    group.add_command(hooks)
