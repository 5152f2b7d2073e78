"""`orbitdockctl watch [ID]`: the live view, through the client library's exact mirrors.

On a terminal the session list is a table redrawn in place; one session, or any
output that is not a terminal, is one timestamped line per meaningful change
(orbitdock/cli/live.py). With --json: every applied event, one JSON object a line.
"""

from __future__ import annotations

import json
import time

import click

from orbitdock.cli.common import Context, pass_ctx, timed_out, to_builtins
from orbitdock.cli.ids import SESSION_ID
from orbitdock.cli.live import ListLines, ListTable, SessionLog
from orbitdock.client import Subscription
from orbitdock.protocol import messages as m

POLL_S = 0.2  # how long one pass waits for events (also the redraw and Ctrl-C latency)
REDRAW_S = 1.0  # the table is redrawn at least this often (its "ago" column ages)
LOST = "no heartbeat from orbitdockd — waiting for it to come back"


def first_events(sub: Subscription, timeout: float) -> list[m.Wire]:
    """The events up to and including the first snapshot(s); exit 4 if none comes in time."""
    events: list[m.Wire] = []
    deadline = time.monotonic() + timeout
    while not sub.all_synced():
        if time.monotonic() > deadline:
            raise timed_out(f"no snapshot from orbitdockd within {timeout:.1f}s")
        events += sub.poll(0.05)
    return events


class Heartbeats:
    """Says once when the daemon goes quiet, and once when it is back."""

    def __init__(self) -> None:
        self.lost = False

    def note(self, sub: Subscription) -> str | None:
        if sub.server_alive == (not self.lost):
            return None
        self.lost = not sub.server_alive
        return LOST if self.lost else "orbitdockd is back"


def _until(duration: float | None):
    deadline = time.monotonic() + duration if duration else None
    return lambda: deadline is None or time.monotonic() < deadline


def watch_json(sub: Subscription, first: list[m.Wire], more) -> None:
    while True:
        for event in first:
            click.echo(json.dumps(to_builtins(event)))
        if not more():
            return
        first = sub.poll(POLL_S)


def watch_session(sub: Subscription, session_id: str, more) -> None:
    log = SessionLog(sub.state(session_id))
    for line in log.opening(sub.state(session_id)):
        click.echo(line)
    beats = Heartbeats()
    while more():
        for event in sub.poll(POLL_S):
            for line in log.lines(event, sub.state(session_id)):
                click.echo(line)
        note = beats.note(sub)
        if note:
            click.echo(f"({note})", err=True)


def watch_list_lines(sub: Subscription, more) -> None:
    rows = ListLines()
    beats = Heartbeats()
    click.echo(f"{len(sub.summaries)} sessions")
    while True:
        for line in rows.lines(list(sub.summaries.values())):
            click.echo(line)
        note = beats.note(sub)
        if note:
            click.echo(f"({note})", err=True)
        if not more():
            return
        sub.poll(POLL_S)


def watch_list_table(sub: Subscription, show_all: bool, more) -> None:
    beats = Heartbeats()
    with ListTable(show_all) as table:
        changed, drawn_at = True, 0.0
        while True:
            changed |= beats.note(sub) is not None
            if changed or time.monotonic() - drawn_at >= REDRAW_S:  # "3s ago" moves on
                table.draw(list(sub.summaries.values()), LOST if beats.lost else "")
                drawn_at = time.monotonic()
            if not more():
                return
            changed = bool(sub.poll(POLL_S))


@click.command()
@click.argument("session_id", type=SESSION_ID, required=False)
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--all", "show_all", is_flag=True, help="The list's table includes ended sessions.")
@pass_ctx
def watch(ctx: Context, session_id: str | None, duration: float | None, show_all: bool) -> None:
    """The session list (a live table on a terminal), or one session, live (Ctrl-C stops)."""
    if session_id:  # an unknown id fails now (exit 1), not after a silent wait
        ctx.request(m.SubscribeSession(session_id=session_id))
    sub = ctx.subscription()
    if session_id:
        sub.watch_session(session_id)
    else:
        sub.watch_list()
    more = _until(duration)
    try:
        first = first_events(sub, ctx.cfg.client.request_timeout_s)
        if ctx.as_json:
            watch_json(sub, first, more)
        elif session_id:
            watch_session(sub, session_id, more)
        elif ctx.on_terminal:
            watch_list_table(sub, show_all, more)
        else:
            watch_list_lines(sub, more)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()


def register(group: click.Group) -> None:
    group.add_command(watch)
