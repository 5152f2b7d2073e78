"""`orbitdockctl status`: is the daemon up, and how busy is it."""

from __future__ import annotations

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
        f"  rss        {reply.rss_bytes / 1048576:.1f} MiB"
    )
    ctx.emit(reply, text)


def register(group: click.Group) -> None:
    group.add_command(status)
