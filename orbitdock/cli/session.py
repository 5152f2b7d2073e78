"""`orbitdockctl session ...`: list, show, create and drive sessions."""

from __future__ import annotations

import time

import click

from orbitdock.cli.common import EXIT_TIMEOUT, CommandFailed, Context, ago, pass_ctx
from orbitdock.client import Subscription, find_daemon
from orbitdock.protocol import messages as m
from orbitdock.cli.rollouts import parse_since
from orbitdock.protocol.models import SessionState, SessionSummary

LIST_LIMIT = 50  # rows `session list` shows from the history by default
LIST_PAGE = 200  # rows per list_sessions request (the daemon allows up to 500)
ATTENTION_MARK = {"awaitingPermission": "!", "awaitingQuestion": "?", "awaitingReply": "*"}


@click.group()
def session() -> None:
    """Sessions: list, show, create, send, interrupt, end, resume, rename, config."""


@session.command("list")
@click.option("--all", "show_all", is_flag=True,
              help="Every session in the database, ended ones too, read page by page.")
@click.option("--since", help="Only sessions active since: 7d, 12h, 30m ago or an ISO date.")
@click.option("--provider", help="Only this provider's sessions (codex, scripted, ...).")
@click.option("--project", help="Only this project (its path or its name).")
@click.option("--search", help="Text in the session's name or first prompt.")
@click.option("--limit", default=LIST_LIMIT, show_default=True,
              help="At most this many rows from the history (0: all of them).")
@pass_ctx
def list_sessions(ctx: Context, show_all: bool, since: str | None, provider: str | None,
                  project: str | None, search: str | None, limit: int) -> None:
    """Sessions, the ones waiting on you first.

    Without options: the live list (sessions not ended). With --all or a filter: pages
    of the history, newest activity first, read from the daemon's database.
    """
    if show_all or since or provider or project or search:
        rows = _history(ctx, "all" if show_all else "active", parse_since(since), provider,
                        project, search, limit)
    else:
        rows = [s for s in ctx.request(m.SubscribeList()).sessions if s.status == "active"]
    order = {"awaitingPermission": 0, "awaitingQuestion": 1, "awaitingReply": 2, "none": 3}
    rows.sort(key=lambda s: (s.status != "active", order.get(s.attention_reason, 4),
                             -s.last_activity_at))
    lines = [f"{'':1} {'ID':40} {'PROVIDER':8} {'STATUS':10} {'APPR':>4} {'ACTIVE':>8}  NAME"]
    for s in rows:
        lines.append(f"{ATTENTION_MARK.get(s.attention_reason, ' '):1} {s.id:40} "
                     f"{s.provider:8} {s.work_status:10} {s.pending_approvals:>4} "
                     f"{ago(s.last_activity_at):>8}  {s.display_name}")
    if not rows:
        lines.append("(no sessions)")
    ctx.emit(rows, "\n".join(lines))


def _history(ctx: Context, status: str, since: float | None, provider: str | None,
             project: str | None, search: str | None, limit: int) -> list[SessionSummary]:
    """Pages of ``list_sessions`` until ``limit`` rows (0: every page)."""
    rows: list[SessionSummary] = []
    cursor: dict = {}
    while True:
        want = LIST_PAGE if limit <= 0 else min(LIST_PAGE, limit - len(rows))
        page = ctx.request(m.ListSessions(status=status, since=since, provider=provider,
                                          project=project, search=search, limit=want,
                                          **cursor))
        rows += page.sessions
        if not page.has_more or not page.sessions or (0 < limit <= len(rows)):
            return rows
        last = page.sessions[-1]
        cursor = {"before_activity": last.last_activity_at, "before_id": last.id}


def render_state(s: SessionState, messages: int = 20) -> str:
    out = [f"{s.display_name}  [{s.id}]",
           f"  provider {s.provider} ({s.integration_mode})  status {s.status}/{s.work_status}"
           f"  attention {s.attention_reason}",
           f"  project  {s.project_path or '-'}  branch {s.git_branch or '-'}  model {s.model or '-'}",
           f"  autonomy approval={s.approval_policy or '-'} sandbox={s.sandbox_mode or '-'}",
           f"  turns {s.turn_count}  prompts {s.prompt_count}  tools {s.tool_count}"
           f"  tokens in={s.token_usage.input_tokens} out={s.token_usage.output_tokens}"
           f" cached={s.token_usage.cached_tokens} ctx={s.token_usage.context_window}",
           f"  revision {s.revision}  messages {s.total_message_count}"]
    if s.last_error:
        out.append(f"  last error: {s.last_error}")
    if s.current_plan:
        out.append("  plan:")
        out += [f"    [{p.get('status', '?')}] {p.get('step', '')}" for p in s.current_plan]
    if s.approvals:
        out.append("  pending approvals (oldest first):")
        for a in s.approvals:
            what = a.command or a.file_path or "; ".join(q.question for q in a.questions) or a.method
            out.append(f"    {a.id}  {a.type:9} {what}")
            if a.available_decisions:
                out.append(f"      decisions: {', '.join(a.available_decisions)}")
    out.append("  recent messages:")
    for msg in s.messages[-messages:]:
        body = msg.content if msg.type != "tool" else f"{msg.tool_name}: {msg.tool_input or ''}"
        flag = " …" if msg.is_in_progress else ""
        out.append(f"    #{msg.seq} {msg.type:9} {body[:200]}{flag}")
    return "\n".join(out)


@session.command("show")
@click.argument("session_id")
@click.option("--messages", default=20, show_default=True, help="How many recent messages.")
@pass_ctx
def show(ctx: Context, session_id: str, messages: int) -> None:
    """One session with its pending approvals and recent messages."""
    reply = ctx.request(m.SubscribeSession(session_id=session_id))
    ctx.emit(reply.session, render_state(reply.session, messages))


@session.command("create")
@click.option("--provider", default="codex", show_default=True,
              type=click.Choice(["codex", "scripted"]))
@click.option("--model", help="Model slug (see `orbitdockctl models`).")
@click.option("--approval-policy", help="untrusted | on-request | never ...")
@click.option("--sandbox", help="read-only | workspace-write | danger-full-access")
@click.option("--cwd", default=".", show_default=True, type=click.Path(file_okay=False))
@click.option("--name", help="Custom name.")
@pass_ctx
def create(ctx: Context, provider, model, approval_policy, sandbox, cwd, name) -> None:
    """Start a new session; prints its id."""
    import os

    reply = ctx.request(m.CreateSession(provider=provider, cwd=os.path.abspath(cwd), model=model,
                                        approval_policy=approval_policy, sandbox_mode=sandbox,
                                        name=name), timeout=ctx.cfg.codex.start_timeout_s)
    ctx.emit(reply.session, reply.session.id)


def _wait_for_turn(ctx: Context, sub: Subscription, session_id: str, before_turns: int,
                   timeout: float) -> tuple[str, SessionState]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sub.poll(0.05)
        st = sub.state(session_id)
        if st is None:
            continue
        if st.work_status in ("permission", "question"):
            return "waiting_on_approval", st
        if st.turn_count > before_turns and st.current_turn_id is None:
            if st.work_status == "reply":
                return "completed", st
            return ("failed" if st.last_error else "interrupted"), st
        if st.status == "ended":
            return "ended", st
    raise CommandFailed(f"turn still running after {timeout:.0f}s", EXIT_TIMEOUT)


@session.command("send")
@click.argument("session_id")
@click.argument("text")
@click.option("--wait", is_flag=True,
              help="Return when the turn ends (completed, interrupted, failed) or waits on you.")
@click.option("--wait-timeout", default=600.0, show_default=True, help="Seconds, with --wait.")
@pass_ctx
def send(ctx: Context, session_id: str, text: str, wait: bool, wait_timeout: float) -> None:
    """Send a message (starts a turn)."""
    if not wait:
        reply = ctx.request(m.SendMessage(session_id=session_id, content=text))
        ctx.emit(reply, "sent")
        return
    sub = Subscription(find_daemon(ctx.cfg), config=ctx.cfg)
    try:
        sub.watch_session(session_id)
        if not sub.wait_synced(ctx.cfg.client.request_timeout_s):
            raise CommandFailed(f"could not follow session {session_id}")
        before = sub.state(session_id).turn_count
        ctx.request(m.SendMessage(session_id=session_id, content=text))
        outcome, st = _wait_for_turn(ctx, sub, session_id, before, wait_timeout)
    finally:
        sub.close()
    last = next((x.content for x in reversed(st.messages) if x.type == "assistant"), "")
    pending = [a.id for a in st.approvals]
    text_out = f"turn {outcome}" + (f"; pending: {', '.join(pending)}" if pending else "")
    if last and outcome == "completed":
        text_out += f"\n{last}"
    ctx.emit({"outcome": outcome, "session_id": session_id, "pending_approvals": pending,
              "last_assistant_message": last, "last_error": st.last_error}, text_out)
    if outcome == "failed":
        raise CommandFailed(f"turn failed: {st.last_error}")


def _simple(name: str, message_cls, help_text: str):
    @session.command(name, help=help_text)
    @click.argument("session_id")
    @pass_ctx
    def command(ctx: Context, session_id: str) -> None:
        reply = ctx.request(message_cls(session_id=session_id))
        ctx.emit(reply, f"{name}: ok")

    return command


_simple("interrupt", m.InterruptSession, "Interrupt the running turn.")
_simple("end", m.EndSession, "End the session (its history stays).")
_simple("resume", m.ResumeSession, "Resume an ended session with its context.")


@session.command("rename")
@click.argument("session_id")
@click.argument("name", required=False)
@pass_ctx
def rename(ctx: Context, session_id: str, name: str | None) -> None:
    """Set (or, with no NAME, clear) the custom name."""
    ctx.emit(ctx.request(m.RenameSession(session_id=session_id, name=name)), "renamed")


@session.command("config")
@click.argument("session_id")
@click.option("--approval-policy")
@click.option("--sandbox")
@click.option("--model")
@pass_ctx
def config(ctx: Context, session_id: str, approval_policy, sandbox, model) -> None:
    """Change autonomy (approval policy, sandbox) or model from the next turn on."""
    reply = ctx.request(m.UpdateSessionConfig(session_id=session_id,
                                              approval_policy=approval_policy,
                                              sandbox_mode=sandbox, model=model))
    ctx.emit(reply, "applies from the next turn")


def register(group: click.Group) -> None:
    group.add_command(session)
