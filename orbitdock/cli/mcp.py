"""``orbitdockctl mcp config codex|claude``: the snippet that points an agent at orbitdock-mcp."""

from __future__ import annotations

import click

from orbitdock.cli.common import Context, pass_ctx
from orbitdock.mcp.snippets import AGENTS, snippet
from orbitdock.paths import layout


@click.group()
def mcp() -> None:
    """The MCP server agents use to supervise agents (orbitdock-mcp)."""


@mcp.command("config")
@click.argument("agent", type=click.Choice(AGENTS))
@click.option("--read-only", is_flag=True, help="Point the agent at the read tools only.")
@pass_ctx
def config(ctx: Context, agent: str, read_only: bool) -> None:
    """Print the snippet for codex's config.toml or a Claude project's .mcp.json."""
    text = snippet(agent, home=str(layout(ctx.cfg).data_dir), read_only=read_only)
    where = ("add it to $CODEX_HOME/config.toml (default ~/.codex/config.toml)"
             if agent == "codex" else "save it as .mcp.json in your project")
    ctx.emit({"agent": agent, "snippet": text}, f"# {where}\n{text.rstrip()}")


def register(cli: click.Group) -> None:
    cli.add_command(mcp)
