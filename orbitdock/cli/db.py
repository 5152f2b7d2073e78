"""`orbitdockctl db`: an online backup of the running daemon's database, and its check.

Both are answered by the persistence actor on its own write connection, after it has
written everything told before them (see actors/persistence.py ``_backup``): a backup
holds every message a client was shown, and never blocks for longer than the copy.
"""

from __future__ import annotations

from pathlib import Path

import click

from orbitdock.cli.common import CliErrorCode, CommandFailed, Context, pass_ctx
from orbitdock.protocol import messages as m


@click.group()
def db() -> None:
    """The daemon's database: backup while it runs, integrity check."""


@db.command()
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def backup(ctx: Context, file: str) -> None:
    """Copy the live database to FILE (SQLite's online backup; FILE must not exist)."""
    target = Path(file).expanduser().resolve()  # the daemon runs elsewhere: absolute
    reply = ctx.request(m.BackupDatabase(path=str(target)))
    r = reply.result or {}
    ctx.emit(r, f"backed up to {r.get('path')}: {r.get('pages')} pages, "
                f"{r.get('bytes', 0) / 1048576:.1f} MiB in {r.get('ms')} ms")


@db.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Run SQLite's integrity check on the live database (exit 1 when it finds problems)."""
    r = ctx.request(m.CheckDatabase()).result or {}
    if not r.get("ok"):
        problems = r.get("problems") or []
        raise CommandFailed(f"{r.get('path')}: integrity check found {len(problems)} "
                            f"problem(s): {'; '.join(problems[:5])}",
                            code=CliErrorCode.DATABASE_DAMAGED)
    ctx.emit(r, f"{r.get('path')}: integrity check ok (storage {r.get('storage')})")


def register(group: click.Group) -> None:
    group.add_command(db)
