"""`orbitdockctl models`: the model catalog of a provider (codex, claude)."""

from __future__ import annotations

import click

from orbitdock.cli.common import Context, pass_ctx
from orbitdock.protocol import messages as m


@click.command()
@click.option("--provider", default="codex", show_default=True,
              type=click.Choice(["codex", "claude"]))
@pass_ctx
def models(ctx: Context, provider: str) -> None:
    """Models a provider offers (default marked with *)."""
    reply = ctx.request(m.ListModels(provider=provider),
                        timeout=max(ctx.cfg.codex.start_timeout_s, ctx.cfg.claude.start_timeout_s))
    lines = [f"{'*' if o.is_default else ' '} {o.id:24} {o.display_name}  "
             f"efforts: {', '.join(o.supported_reasoning_efforts) or '-'}" for o in reply.models]
    ctx.emit(reply.models, "\n".join(lines) or "(no models)")


def register(group: click.Group) -> None:
    group.add_command(models)
