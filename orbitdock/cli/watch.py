"""`orbitdockctl watch [ID]`: the live stream, through the client library's exact mirrors."""

from __future__ import annotations

import json
import time

import click

from orbitdock.cli.common import Context, pass_ctx, timed_out, to_builtins
from orbitdock.cli.ids import SESSION_ID
from orbitdock.client import Subscription
from orbitdock.protocol import messages as m


def describe(event: m.Wire) -> str:
    if isinstance(event, m.SessionsList):
        return f"list: {len(event.sessions)} sessions (rev {event.revision})"
    if isinstance(event, m.SessionCreated):
        s = event.session
        return f"{s.id} {s.work_status:10} {s.attention_reason:18} {s.display_name}"
    if isinstance(event, m.SessionSnapshot):
        s = event.session
        return f"[{s.id}] snapshot rev {s.revision}: {s.work_status}, {s.total_message_count} messages"
    sid = getattr(event, "session_id", "")
    if isinstance(event, m.MessageAppended):
        msg = event.message
        body = msg.content if msg.type != "tool" else f"{msg.tool_name} {msg.tool_input or ''}"
        return f"[{sid}] +{msg.type}: {body}"
    if isinstance(event, m.MessageUpdated):
        c = event.changes
        text = c.content_append if isinstance(c.content_append, str) else ""
        text += c.tool_output_append if isinstance(c.tool_output_append, str) else ""
        return f"[{sid}] ~{event.message_id.rsplit(':', 1)[-1]} {text}" if text else ""
    if isinstance(event, m.SessionDelta):
        fields = {k: v for k, v in to_builtins(event.changes).items() if k != "last_activity_at"}
        return f"[{sid}] {json.dumps(fields)}" if fields else ""
    if isinstance(event, m.ApprovalRequested):
        a = event.request
        return f"[{sid}] APPROVAL {a.id} {a.type}: {a.command or a.file_path or a.method}"
    if isinstance(event, m.ApprovalResolved):
        return f"[{sid}] approval {event.approval_id} -> {event.decision}"
    if isinstance(event, m.SessionEnded):
        return f"[{sid}] ended: {event.reason}"
    if isinstance(event, m.Error):
        return f"error {event.code}: {event.message}"
    return ""


def first_events(sub: Subscription, timeout: float) -> list[m.Wire]:
    """The events up to and including the first snapshot(s); exit 4 if none comes in time."""
    events: list[m.Wire] = []
    deadline = time.monotonic() + timeout
    while not sub.all_synced():
        if time.monotonic() > deadline:
            raise timed_out(f"no snapshot from orbitdockd within {timeout:.1f}s")
        events += sub.poll(0.05)
    return events


@click.command()
@click.argument("session_id", type=SESSION_ID, required=False)
@click.option("--duration", type=float, help="Stop after this many seconds.")
@pass_ctx
def watch(ctx: Context, session_id: str | None, duration: float | None) -> None:
    """Stream the session list, or one session, live (Ctrl-C to stop)."""
    if session_id:  # an unknown id fails now (exit 1), not after a silent wait
        ctx.request(m.SubscribeSession(session_id=session_id))
    sub = ctx.subscription()
    if session_id:
        sub.watch_session(session_id)
    else:
        sub.watch_list()
    deadline = time.monotonic() + duration if duration else None
    warned = False
    try:
        first = first_events(sub, ctx.cfg.client.request_timeout_s)
        while deadline is None or time.monotonic() < deadline:
            events, first = first + sub.poll(0.2), []
            for event in events:
                if ctx.as_json:
                    click.echo(json.dumps(to_builtins(event)))
                else:
                    line = describe(event)
                    if line:
                        click.echo(line)
            if not sub.server_alive and not warned:
                click.echo("(no heartbeat from orbitdockd — waiting for it to come back)", err=True)
                warned = True
            elif sub.server_alive:
                warned = False
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()


def register(group: click.Group) -> None:
    group.add_command(watch)
