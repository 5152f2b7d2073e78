"""`orbitdockctl status`: is the daemon up, and how busy is it."""

from __future__ import annotations

import time

import click

from orbitdock.cli.common import Context, pass_ctx
from orbitdock.protocol import messages as m


@click.command()
@pass_ctx
def status(ctx: Context) -> None:
    """Server epoch, uptime, actor and session counts."""
    reply = ctx.request(m.GetStatus())
    text = (
        f"orbitdockd {reply.version} (pid {reply.pid}, epoch {reply.epoch})\n"
        f"  uptime     {reply.uptime_s:.0f}s\n"
        f"  actors     {reply.actors}\n"
        f"  sessions   {reply.sessions} ({reply.sessions_active} active, "
        f"{reply.sessions_needing_attention} need you)\n"
        f"  subscribers {reply.subscribers}\n"
        f"  rejected frames {reply.frames_rejected}\n"
        f"  rss        {reply.rss_bytes / 1048576:.1f} MiB\n"
        f"  storage    {_storage(reply)}"
    )
    ctx.emit(reply, text)


def _storage(reply: m.ServerStatus) -> str:
    """ok, or the state with its cause, since when and what waits to be written."""
    if reply.storage == "ok":
        text = "ok"
    else:
        since = time.strftime("%H:%M:%S", time.localtime(reply.storage_since))
        text = (f"{reply.storage.upper()} since {since}: {reply.storage_cause}; "
                f"{reply.unsaved_commands} unsaved writes kept, new sessions and turns refused")
    if reply.dropped_commands:
        text += f" ({reply.dropped_commands} writes dropped, persistence.drop_when_full)"
    return text


def register(group: click.Group) -> None:
    group.add_command(status)
