"""`orbitdockctl approve|deny|answer`: decide what a session is waiting on."""

from __future__ import annotations

import click

from orbitdock.approvals import approval_session
from orbitdock.cli.common import CommandFailed, Context, pass_ctx
from orbitdock.cli.ids import APPROVAL_ID
from orbitdock.protocol import messages as m


@click.command()
@click.argument("approval_id", type=APPROVAL_ID)
@click.option("--for-session", is_flag=True, help="Also allow the same kind for this session.")
@click.option("--decision", help="A decision the request offers, instead of accept.")
@pass_ctx
def approve(ctx: Context, approval_id: str, for_session: bool, decision: str | None) -> None:
    """Approve a pending request."""
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
        reply = ctx.request(m.SubscribeSession(session_id=approval_session(approval_id)))
        pending = next((a for a in reply.session.approvals if a.id == approval_id), None)
        if pending is None or not pending.questions:
            raise CommandFailed(f"approval {approval_id} has no pending question")
        parsed[pending.questions[0].id] = parsed.pop("")
    reply = ctx.request(m.AnswerQuestion(approval_id=approval_id, answers=parsed))
    ctx.emit(reply, f"{approval_id}: answered ({reply.outcome})")


def register(group: click.Group) -> None:
    for command in (approve, deny, answer):
        group.add_command(command)
