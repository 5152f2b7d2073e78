"""`orbitdockctl approval list|show`: what a session asks before it acts, in full.

``render_approval`` is shared with `session show` and `approve --show`: an exec
request's command, cwd and reason, a patch's diff (colored on a terminal: click
drops the colors when stdout is not one), a question's questions and options.
"""

from __future__ import annotations

import time

import click

from orbitdock.session.approvals import ID_SEPARATOR, approval_number, approval_session
from orbitdock.cli.common import EXIT_FAILED, CommandFailed, Context, OrderedGroup, pass_ctx
from orbitdock.cli.ids import (
    APPROVAL_ID,
    SESSION_PREFIX,
    SHORT_SESSION_CHARS,
    pending_approvals,
    sessions,
)
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode
from orbitdock.protocol.models import ApprovalRequest

DIFF_STYLES = (("+++", {"bold": True}), ("---", {"bold": True}), ("diff ", {"bold": True}),
               ("@@", {"fg": "cyan"}), ("+", {"fg": "green"}), ("-", {"fg": "red"}))


def diff_line(line: str) -> str:
    for start, style in DIFF_STYLES:
        if line.startswith(start):
            return click.style(line, **style)
    return line


def asked_at(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "-"


def summary(a: ApprovalRequest) -> str:
    """One line: what is asked."""
    return a.command or a.file_path or "; ".join(q.question for q in a.questions) or a.method or ""


def typed_id(a: ApprovalRequest) -> str:
    """A short form that resolves to ``a`` (orbitdock/cli/ids.py): session prefix + :a<n>."""
    head = a.session_id[:len(SESSION_PREFIX) + SHORT_SESSION_CHARS]
    return f"{head}{ID_SEPARATOR}{approval_number(a.id)}" if approval_number(a.id) else a.id


def render_approval(a: ApprovalRequest, indent: str = "", diff_lines: int | None = None) -> str:
    """One approval, whole (or with the diff cut at ``diff_lines``)."""
    what = {"exec": "run a command", "patch": "change files", "question": "an answer"}
    out = [f"{click.style(a.id, bold=True)}  {a.type}: wants {what.get(a.type, a.method or '?')}"
           f"  (asked {asked_at(a.created_at)})"]
    for label, value in (("command", a.command), ("cwd", a.cwd), ("file", a.file_path),
                         ("reason", a.reason)):
        if value:
            out.append(f"  {label:8} {value}")
    if a.diff:
        lines = a.diff.splitlines()
        shown = lines if diff_lines is None else lines[:diff_lines]
        out.append("  diff:")
        out += [f"    {diff_line(line)}" for line in shown]
        if len(shown) < len(lines):
            out.append(f"    ... {len(lines) - len(shown)} more lines: "
                       f"orbitdockctl approval show {a.id}")
    for q in a.questions:
        options = " | ".join(str(o.get("label", o)) for o in q.options)
        out.append(f"  question {q.id}: {q.question}" + (f"  [{options}]" if options else ""))
    if a.type == "generic" and a.payload:
        out.append(f"  payload  {a.payload}")
    if a.questions:
        out.append(f"  reply with: orbitdockctl answer {typed_id(a)} ANSWER")
    else:
        if a.available_decisions:
            out.append(f"  decisions: {', '.join(a.available_decisions)}")
        out.append(f"  reply with: orbitdockctl approve {typed_id(a)} | deny {typed_id(a)}")
    return "\n".join(indent + line for line in out)


def pending_approval(ctx: Context, approval_id: str) -> ApprovalRequest | None:
    """The approval if its session still waits on it (None if not, or no such session)."""
    try:
        reply = ctx.request(m.SubscribeSession(session_id=approval_session(approval_id)))
    except CommandFailed as exc:
        if exc.code == ErrorCode.NOT_FOUND or exc.code == ErrorCode.INVALID_FIELD:
            return None
        raise
    return next((a for a in reply.session.approvals if a.id == approval_id), None)


def find_approval(ctx: Context, approval_id: str) -> ApprovalRequest:
    found = pending_approval(ctx, approval_id)
    if found is None:
        raise CommandFailed(f"error {ErrorCode.NOT_FOUND}: no pending approval {approval_id}",
                            EXIT_FAILED, ErrorCode.NOT_FOUND)
    return found


def show_one(ctx: Context, approval_id: str) -> None:
    a = find_approval(ctx, approval_id)
    ctx.emit(a, render_approval(a))


@click.group(cls=OrderedGroup)
def approval() -> None:
    """Pending approvals: list them, show one whole."""


@approval.command("list")
@pass_ctx
def list_approvals(ctx: Context) -> None:
    """Every pending approval, oldest first, across sessions."""
    pending = sorted(pending_approvals(ctx.request, sessions(ctx.request)),
                     key=lambda a: a.created_at)
    lines = [f"{a.id}  {a.type:9} {summary(a)}" for a in pending]
    ctx.emit(pending, "\n".join(lines) or "(nothing waits on you)")


@approval.command("show")
@click.argument("approval_id", type=APPROVAL_ID)
@pass_ctx
def show(ctx: Context, approval_id: str) -> None:
    """One approval whole: command, cwd, reason, the full diff, questions."""
    show_one(ctx, approval_id)


def register(group: click.Group) -> None:
    group.add_command(approval)
