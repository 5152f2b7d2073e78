"""`orbitdockctl models`: the model catalog of the codex backend."""

from __future__ import annotations

import click

from orbitdock.cli.common import Context, pass_ctx
from orbitdock.protocol import messages as m


@click.command()
@pass_ctx
def models(ctx: Context) -> None:
    """Models codex offers (default marked with *)."""
    reply = ctx.request(m.ListModels(), timeout=ctx.cfg.codex.start_timeout_s)
    lines = [f"{'*' if o.is_default else ' '} {o.id:24} {o.display_name}  "
             f"efforts: {', '.join(o.supported_reasoning_efforts) or '-'}" for o in reply.models]
    ctx.emit(reply.models, "\n".join(lines) or "(no models)")


def register(group: click.Group) -> None:
    group.add_command(models)
