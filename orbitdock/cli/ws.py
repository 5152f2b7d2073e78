"""`orbitdockctl ws pair`: the dashboard's URL (with its token off loopback) and a QR code."""

from __future__ import annotations

import io
import socket

import click
import segno

from orbitdock.cli.common import Context, pass_ctx
from orbitdock.ws import access


def pair_url(ctx: Context, host: str | None) -> tuple[str, bool]:
    """The URL a browser opens, and whether it carries the token (bound off loopback)."""
    ws = ctx.cfg.ws
    if access.is_loopback(ws.address):
        return f"http://{host or ws.address}:{ws.port}/", False
    token = access.ensure_token(ctx.cfg)
    if host is None:
        host = ws.address if ws.address not in ("0.0.0.0", "::") else _lan_address()
    return f"http://{host}:{ws.port}/?token={token}", True


def _lan_address() -> str:
    # The address this host reaches the network with (no packet is sent: UDP connect).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()


@click.group()
def ws() -> None:
    """The WebSocket bridge (orbitdock-ws) and its dashboard."""


@ws.command()
@click.option("--host", help="Host name or address the phone reaches this machine by.")
@click.option("--qr/--no-qr", default=None, help="Print a QR code (default: off loopback).")
@pass_ctx
def pair(ctx: Context, host: str | None, qr: bool | None) -> None:
    """Print the dashboard URL (with its token when bound off loopback) and a QR code."""
    url, with_token = pair_url(ctx, host)
    if ctx.as_json:
        ctx.emit({"url": url, "token_in_url": with_token})
        return
    click.echo(url)
    if qr if qr is not None else with_token:
        out = io.StringIO()
        segno.make(url, error="m").terminal(out=out, compact=True)
        click.echo(out.getvalue(), nl=False)
        click.echo("Anyone with this URL can drive your sessions: keep it to yourself.")
    elif not with_token:
        click.echo("(bound to loopback: open it on this machine; set ws.address to pair a phone)")


def register(group: click.Group) -> None:
    group.add_command(ws)
