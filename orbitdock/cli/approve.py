"""`orbitdockctl approve|deny|answer`: decide what a session is waiting on."""

from __future__ import annotations

import click

from orbitdock.cli.approval import find_approval, pending_approval, render_approval, show_one
from orbitdock.cli.common import EXIT_FAILED, CliErrorCode, CommandFailed, Context, pass_ctx
from orbitdock.cli.ids import APPROVAL_ID
from orbitdock.protocol import messages as m


@click.command()
@click.argument("approval_id", type=APPROVAL_ID)
@click.option("--for-session", is_flag=True, help="Also allow the same kind for this session.")
@click.option("--decision", help="A decision the request offers, instead of accept.")
@click.option("--show", is_flag=True, help="Only show the request whole (decide nothing).")
@pass_ctx
def approve(ctx: Context, approval_id: str, for_session: bool, decision: str | None,
            show: bool) -> None:
    """Approve a pending request (a question needs `answer`)."""
    if show:
        show_one(ctx, approval_id)
        return
    pending = pending_approval(ctx, approval_id)  # None: the daemon says why (stale, unknown)
    if pending is not None and (pending.questions or pending.type == "question"):
        if not ctx.as_json:
            click.echo(render_approval(pending))
        raise CommandFailed(f"{approval_id} is a question: answer it with "
                            f"`orbitdockctl answer {approval_id} ANSWER`", EXIT_FAILED,
                            CliErrorCode.WRONG_VERB)
    chosen = decision or ("accept_for_session" if for_session else "accept")
    reply = ctx.request(m.ApproveTool(approval_id=approval_id, decision=chosen))
    ctx.emit(reply, f"{approval_id}: {chosen} ({reply.outcome})")


@click.command()
@click.argument("approval_id", type=APPROVAL_ID)
@click.option("--cancel", is_flag=True, help="Cancel (interrupts the turn) instead of decline.")
@pass_ctx
def deny(ctx: Context, approval_id: str, cancel: bool) -> None:
    """Decline a pending request."""
    chosen = "cancel" if cancel else "decline"
    reply = ctx.request(m.ApproveTool(approval_id=approval_id, decision=chosen))
    ctx.emit(reply, f"{approval_id}: {chosen} ({reply.outcome})")


@click.command()
@click.argument("approval_id", type=APPROVAL_ID)
@click.argument("answers", nargs=-1, required=True)
@pass_ctx
def answer(ctx: Context, approval_id: str, answers: tuple[str, ...]) -> None:
    """Answer a question: `answer ID QUESTION_ID=ANSWER ...`, or just ANSWER for one question."""
    parsed: dict[str, list[str]] = {}
    for item in answers:
        qid, sep, value = item.partition("=")
        if not sep:
            qid, value = "", item
        parsed.setdefault(qid, []).append(value)
    if "" in parsed:
        pending = find_approval(ctx, approval_id)
        if not pending.questions:
            raise CommandFailed(f"approval {approval_id} has no pending question")
        parsed[pending.questions[0].id] = parsed.pop("")
    reply = ctx.request(m.AnswerQuestion(approval_id=approval_id, answers=parsed))
    ctx.emit(reply, f"{approval_id}: answered ({reply.outcome})")


def register(group: click.Group) -> None:
    for command in (approve, deny, answer):
        group.add_command(command)
