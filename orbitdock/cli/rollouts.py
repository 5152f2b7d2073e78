"""`orbitdockctl rollouts status|import`: the terminal-started sessions the watcher follows."""

from __future__ import annotations

import re
import time

import click

from orbitdock.cli.common import CommandFailed, Context, pass_ctx
from orbitdock.protocol import messages as m

PROGRESS_POLL_S = 0.25  # how often `rollouts import` asks for progress
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | None) -> float | None:
    """`7d`, `12h`, `30m` ago, or an ISO date/time."""
    if not text:
        return None
    match = DURATION.match(text)
    if match:
        return time.time() - float(match.group(1)) * UNIT_S[match.group(2)]
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise click.BadParameter(f"{text!r}: use e.g. 7d, 12h, 30m or 2026-11-01") from None


@click.group()
def rollouts() -> None:
    """Codex sessions started in a terminal, read from CODEX_HOME rollout files."""


@rollouts.command("status")
@pass_ctx
def status(ctx: Context) -> None:
    """Files followed, their offsets and lag, errors."""
    report = ctx.request(m.RolloutsStatus()).report
    lines = [f"CODEX_HOME {report['codex_home']}  (observing: {report['observing']})",
             f"  files followed {report['files_followed']}   older, not imported "
             f"{report['files_unknown']}   sessions {report['sessions']} "
             f"({report['sessions_idle']} idle)",
             f"  lag {report['lag_bytes']} bytes   lines {report['lines_parsed']}   malformed "
             f"{report['malformed_lines']}   errors {report['errors']}"]
    if report.get("unknown_types"):
        lines.append(f"  unknown line types: {report['unknown_types']}")
    for f in sorted(report["files"], key=lambda f: -f["lag"])[:50]:
        flag = " own" if f.get("own") else ""
        err = f"  last error: {f['last_error']}" if f.get("last_error") else ""
        lines.append(f"  {f['offset']:>10}/{f['size']:<10} lag {f['lag']:>8}{flag}  "
                     f"{f['session_id'] or '-'}  {f['path']}{err}")
    ctx.emit(report, "\n".join(lines))


@rollouts.command("import")
@click.option("--since", help="Only files modified since: 7d, 12h, 30m ago or an ISO date.")
@click.option("--wait-timeout", default=3600.0, show_default=True,
              help="Stop showing progress after this many seconds (the import goes on).")
@pass_ctx
def import_(ctx: Context, since: str | None, wait_timeout: float) -> None:
    """Import older rollouts (resumable: run it again to continue)."""
    started = ctx.request(m.ImportRollouts(since=parse_since(since))).report
    total = started["queued_bytes"]
    if ctx.as_json or started["queued_files"] == 0:
        ctx.emit(started, f"nothing to import ({started['remaining_unknown']} older files left)"
                 if started["queued_files"] == 0 else None)
        return
    deadline = time.monotonic() + wait_timeout
    with click.progressbar(length=total, label=f"importing {started['queued_files']} files",
                           show_pos=True) as bar:
        done = 0
        while True:
            report = ctx.request(m.RolloutsStatus()).report
            now_done = max(0, total - report["lag_bytes"])
            bar.update(now_done - done)
            done = now_done
            if report["lag_bytes"] == 0:
                break
            if time.monotonic() > deadline:
                raise CommandFailed("still importing; run `orbitdockctl rollouts status`")
            time.sleep(PROGRESS_POLL_S)
    click.echo(f"imported {started['queued_files']} files ({total} bytes)")


def register(group: click.Group) -> None:
    group.add_command(rollouts)
