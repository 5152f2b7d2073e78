"""`orbitdockctl session ...`: list, show, create and drive sessions."""

from __future__ import annotations

import json
import time

import click

from orbitdock.cli.approval import render_approval
from orbitdock.cli.common import CommandFailed, Context, OrderedGroup, ago, pass_ctx, timed_out
from orbitdock.cli.ids import SESSION_ID
from orbitdock.cli.live import ATTENTION_MARK
from orbitdock.cli.rollouts import parse_since
from orbitdock.client import Subscription
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import SessionState, SessionSummary



@click.group(cls=OrderedGroup)
def session() -> None:
    """Sessions: list, show, create, send, steer, interrupt, end, resume, rename, config;
    codex thread operations: archive, unarchive, compact, rollback, fork, review, mcp."""


@session.command("list")
@click.option("--all", "show_all", is_flag=True,
              help="Every session in the database, ended ones too, read page by page.")
@click.option("--archived", is_flag=True, help="Only archived sessions (left out otherwise).")
@click.option("--since", help="Only sessions active since: 7d, 12h, 30m ago or an ISO date.")
@click.option("--provider", help="Only this provider's sessions (codex, scripted, ...).")
@click.option("--project", help="Only this project (its path or its name).")
@click.option("--search", help="Text in the session's name or first prompt.")
@click.option("--limit", type=int, help="At most this many rows from the history "
              "(0: all of them; default client.list_limit, 50).")
@pass_ctx
def list_sessions(ctx: Context, show_all: bool, archived: bool, since: str | None,
                  provider: str | None, project: str | None, search: str | None,
                  limit: int | None) -> None:
    """Sessions, the ones waiting on you first.

    Without options: the live list (sessions not ended). With --all, --archived or a
    filter: pages of the history, newest activity first, read from the daemon's database.
    """
    if limit is None:
        limit = ctx.cfg.client.list_limit
    if show_all or archived or since or provider or project or search:
        rows = _history(ctx, "all" if show_all or archived else "active", parse_since(since),
                        provider, project, search, limit)
    else:
        rows = [s for s in ctx.request(m.SubscribeList()).sessions if s.status == "active"]
    rows = [s for s in rows if s.is_archived == archived]
    order = {"awaitingPermission": 0, "awaitingQuestion": 1, "awaitingReply": 2, "none": 3}
    rows.sort(key=lambda s: (s.status != "active", order.get(s.attention_reason, 4),
                             -s.last_activity_at))
    lines = [f"{'':1} {'ID':40} {'PROVIDER':8} {'STATUS':10} {'APPR':>4} {'MCP':>3} "
             f"{'ACTIVE':>8}  NAME"]
    for s in rows:
        lines.append(f"{ATTENTION_MARK.get(s.attention_reason, ' '):1} {s.id:40} "
                     f"{s.provider:8} {s.work_status:10} {s.pending_approvals:>4} "
                     f"{s.mcp_server_count:>3} "
                     f"{ago(s.last_activity_at):>8}  {s.display_name}"
                     + (f"  (fork of {s.forked_from_session_id})" if s.forked_from_session_id
                        else ""))
    if not rows:
        lines.append("(no sessions)")
    ctx.emit(rows, "\n".join(lines))


def _history(ctx: Context, status: str, since: float | None, provider: str | None,
             project: str | None, search: str | None, limit: int) -> list[SessionSummary]:
    """Pages of ``list_sessions`` until ``limit`` rows (0: every page)."""
    rows: list[SessionSummary] = []
    cursor: dict = {}
    while True:
        page_size = ctx.cfg.client.list_page
        want = page_size if limit <= 0 else min(page_size, limit - len(rows))
        page = ctx.request(m.ListSessions(status=status, since=since, provider=provider,
                                          project=project, search=search, limit=want,
                                          **cursor))
        rows += page.sessions
        if not page.has_more or not page.sessions or (0 < limit <= len(rows)):
            return rows
        last = page.sessions[-1]
        cursor = {"before_activity": last.last_activity_at, "before_id": last.id}


def render_state(s: SessionState, messages: int = 20, diff_lines: int | None = None) -> str:
    out = [f"{s.display_name}  [{s.id}]",
           f"  provider {s.provider} ({s.integration_mode})  status {s.status}/{s.work_status}"
           f"  attention {s.attention_reason}",
           f"  project  {s.project_path or '-'}  branch {s.git_branch or '-'}  model {s.model or '-'}",
           f"  autonomy approval={s.approval_policy or '-'} sandbox={s.sandbox_mode or '-'}"
           f"  effort {s.effort or '-'}",
           f"  turns {s.turn_count}  prompts {s.prompt_count}  tools {s.tool_count}"
           f"  tokens in={s.token_usage.input_tokens} out={s.token_usage.output_tokens}"
           f" cached={s.token_usage.cached_tokens} ctx={s.token_usage.context_window}",
           f"  revision {s.revision}  messages {s.total_message_count}"
           + ("  archived" if s.is_archived else "") + ("  compacting" if s.is_compacting else "")
           + (f"  forked from {s.forked_from_session_id}" if s.forked_from_session_id else "")]
    if s.last_error:
        out.append(f"  last error: {s.last_error}")
    if s.mcp_servers:
        out.append("  MCP servers:")
        out += [f"    {x.name:20} {x.state:10} {x.tool_count} tool(s)"
                + (f"  {x.error}" if x.error else f"  {', '.join(x.tools)}")
                for x in s.mcp_servers]
    if s.current_plan:
        out.append("  plan:")
        out += [f"    [{p.get('status', '?')}] {p.get('step', '')}" for p in s.current_plan]
    if s.approvals:
        out.append("  pending approvals (oldest first):")
        out += [render_approval(a, indent="    ", diff_lines=diff_lines) for a in s.approvals]
    out.append("  recent messages:")
    for msg in s.messages[-messages:]:
        body = msg.content if msg.type != "tool" else f"{msg.tool_name}: {msg.tool_input or ''}"
        flag = " …" if msg.is_in_progress else ""
        out.append(f"    #{msg.seq} {msg.type:9} {body[:200]}{flag}")
        if msg.type == "review" and msg.tool_output:
            result = json.loads(msg.tool_output)
            out.append(f"      verdict: {result.get('verdict') or '-'}")
            for f in result.get("findings") or []:
                priority = f"[P{f['priority']}] " if f.get("priority") is not None else ""
                out.append(f"      - {priority}{f.get('title')} — {f.get('file')}:"
                           f"{f.get('line_start')}-{f.get('line_end')}")
    return "\n".join(out)


@session.command("show")
@click.argument("session_id", type=SESSION_ID)
@click.option("--messages", default=20, show_default=True, help="How many recent messages.")
@click.option("--diff-lines", default=200, show_default=True,
              help="Lines of a pending patch's diff to show (`approval show` shows all).")
@pass_ctx
def show(ctx: Context, session_id: str, messages: int, diff_lines: int) -> None:
    """One session with its pending approvals (commands, diffs, questions) and recent messages."""
    reply = ctx.request(m.SubscribeSession(session_id=session_id))
    ctx.emit(reply.session, render_state(reply.session, messages, diff_lines))


@session.command("create")
@click.option("--provider", default="codex", show_default=True,
              type=click.Choice(["codex", "claude", "scripted"]))
@click.option("--model", help="Model slug (see `orbitdockctl models`).")
@click.option("--approval-policy", help="untrusted | on-request | never ...; claude also takes "
              "its permission modes (default, acceptEdits, plan, ...)")
@click.option("--sandbox", help="read-only | workspace-write | danger-full-access")
@click.option("--cwd", default=".", show_default=True, type=click.Path(file_okay=False))
@click.option("--name", help="Custom name.")
@pass_ctx
def create(ctx: Context, provider, model, approval_policy, sandbox, cwd, name) -> None:
    """Start a new session; prints its id."""
    import os

    reply = ctx.request(m.CreateSession(provider=provider, cwd=os.path.abspath(cwd), model=model,
                                        approval_policy=approval_policy, sandbox_mode=sandbox,
                                        name=name),
                        timeout=max(ctx.cfg.codex.start_timeout_s, ctx.cfg.claude.start_timeout_s))
    ctx.emit(reply.session, reply.session.id)


def _wait_for_turn(sub: Subscription, session_id: str, turns_before: int, steered: bool,
                   timeout: float) -> tuple[str, SessionState]:
    """Until the turn started after ``turns_before`` (or, ``steered``, the running one) ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sub.poll(0.05)
        st = sub.state(session_id)
        if st is None:
            continue
        if st.work_status in ("permission", "question"):
            return "waiting_on_approval", st
        ended = (st.current_turn_id is None if steered
                 else st.turn_count > turns_before and st.current_turn_id is None)
        if ended:
            if st.work_status == "reply":
                return "completed", st
            return ("failed" if st.last_error else "interrupted"), st
        if st.status == "ended":
            return "ended", st
    raise timed_out(f"turn still running after {timeout:.0f}s")


def _steer_or_send(ctx: Context, session_id: str, text: str, steer: bool,
                   overrides: dict[str, str | None] | None = None) -> str:
    if steer:
        ctx.request(m.SteerTurn(session_id=session_id, content=text))
        return STEERED
    ctx.request(m.SendMessage(session_id=session_id, content=text, **(overrides or {})))
    return "sent"


STEERED = "steered the running turn"


@session.command("send")
@click.argument("session_id", type=SESSION_ID)
@click.argument("text")
@click.option("--new-turn", is_flag=True,
              help="Start a new turn even if one is running (default: steer the running one).")
@click.option("--wait", is_flag=True,
              help="Return when the turn ends (completed, interrupted, failed) or waits on you.")
@click.option("--wait-timeout", default=600.0, show_default=True, help="Seconds, with --wait.")
@click.option("--model", help="Model for this turn and the next ones.")
@click.option("--effort", help="Reasoning effort: low | medium | high | ... (as the model offers).")
@click.option("--sandbox", help="read-only | workspace-write | danger-full-access")
@click.option("--approval-policy", help="untrusted | on-request | never ...")
@pass_ctx
def send(ctx: Context, session_id: str, text: str, new_turn: bool, wait: bool,
         wait_timeout: float, model: str | None, effort: str | None, sandbox: str | None,
         approval_policy: str | None) -> None:
    """Send a message: steers the running turn if the session is working, else starts one.
    The overrides (model, effort, sandbox, approval policy) start a new turn and stick for
    later ones."""
    overrides = dict(model=model, effort=effort, sandbox_mode=sandbox,
                     approval_policy=approval_policy)
    new_turn = new_turn or any(v is not None for v in overrides.values())
    if not wait:
        working = ctx.request(m.SubscribeSession(session_id=session_id)).session.work_status
        said = _steer_or_send(ctx, session_id, text, working == "working" and not new_turn,
                              overrides)
        ctx.emit({"session_id": session_id, "steered": said == STEERED}, said)
        return
    ctx.request(m.SubscribeSession(session_id=session_id))  # an unknown id: exit 1 at once
    sub = ctx.subscription()
    try:
        sub.watch_session(session_id)
        if not sub.wait_synced(ctx.cfg.client.request_timeout_s):
            raise timed_out(f"no snapshot of {session_id} within "
                            f"{ctx.cfg.client.request_timeout_s:.1f}s")
        start = sub.state(session_id)  # the live mirror: read its values now
        steered, turns_before = start.work_status == "working" and not new_turn, start.turn_count
        said = _steer_or_send(ctx, session_id, text, steered, overrides)
        if not ctx.as_json:
            click.echo(said)
        outcome, st = _wait_for_turn(sub, session_id, turns_before, steered, wait_timeout)
    finally:
        sub.close()
    last = next((x.content for x in reversed(st.messages) if x.type == "assistant"), "")
    pending = [a.id for a in st.approvals]
    text_out = f"turn {outcome}" + (f"; pending: {', '.join(pending)}" if pending else "")
    if last and outcome == "completed":
        text_out += f"\n{last}"
    ctx.emit({"outcome": outcome, "session_id": session_id, "steered": steered,
              "pending_approvals": pending, "last_assistant_message": last,
              "last_error": st.last_error}, text_out)
    if outcome == "failed":
        raise CommandFailed(f"turn failed: {st.last_error}")


@session.command("steer")
@click.argument("session_id", type=SESSION_ID)
@click.argument("text")
@pass_ctx
def steer(ctx: Context, session_id: str, text: str) -> None:
    """Add TEXT to the running turn (the agent reads it before its next step)."""
    said = _steer_or_send(ctx, session_id, text, steer=True)
    ctx.emit({"session_id": session_id, "steered": True}, said)


def _simple(name: str, message_cls, help_text: str):
    @session.command(name, help=help_text)
    @click.argument("session_id", type=SESSION_ID)
    @pass_ctx
    def command(ctx: Context, session_id: str) -> None:
        reply = ctx.request(message_cls(session_id=session_id))
        ctx.emit(reply, f"{name}: ok")

    return command


_simple("interrupt", m.InterruptSession, "Interrupt the running turn.")
_simple("end", m.EndSession, "End the session (its history stays).")
_simple("resume", m.ResumeSession, "Resume an ended session with its context.")
_simple("compact", m.CompactSession, "Compact the context now (refused while a turn runs).")
_simple("archive", m.ArchiveSession, "Archive the session's thread (refused while a turn runs).")
_simple("unarchive", m.UnarchiveSession, "Unarchive it; the next prompt resumes the thread.")


@session.command("fork")
@click.argument("session_id")
@click.option("--model", help="Model of the fork (default: the parent's).")
@click.option("--sandbox", help="read-only | workspace-write | danger-full-access")
@click.option("--approval-policy", help="untrusted | on-request | never ...")
@click.option("--name", help="Custom name of the fork.")
@pass_ctx
def fork(ctx: Context, session_id: str, model, sandbox, approval_policy, name) -> None:
    """A new session continuing this one's conversation; prints its id."""
    reply = ctx.request(m.ForkSession(session_id=session_id, model=model, sandbox_mode=sandbox,
                                      approval_policy=approval_policy, name=name),
                        timeout=ctx.cfg.codex.start_timeout_s)
    ctx.emit(reply.session, reply.session.id)


@session.command("review")
@click.argument("session_id")
@click.option("--uncommitted", "target", flag_value="uncommitted", default=True,
              help="The working tree's uncommitted changes (default).")
@click.option("--base", help="The changes against this base branch.")
@click.option("--commit", help="The changes of this commit.")
@click.option("--custom", help="Review what these instructions say.")
@pass_ctx
def review(ctx: Context, session_id: str, target: str, base, commit, custom) -> None:
    """Start a review turn; its findings arrive as a 'review' message."""
    given = [(name, value) for name, value in (("base_branch", base), ("commit", commit),
                                               ("custom", custom)) if value]
    if len(given) > 1:
        raise click.UsageError("give one of --uncommitted, --base, --commit, --custom")
    target, value = given[0] if given else ("uncommitted", None)
    reply = ctx.request(m.ReviewSession(session_id=session_id, target=target, value=value))
    ctx.emit(reply, f"review started ({target})")


@session.command("mcp")
@click.argument("session_id")
@pass_ctx
def mcp(ctx: Context, session_id: str) -> None:
    """The MCP servers the session's backend started: state, tools, error."""
    reply = ctx.request(m.McpStatus(session_id=session_id))
    servers = reply.result.get("servers") or []
    lines = [f"{'NAME':20} {'STATE':10} {'TOOLS':>5}  DETAIL"]
    for s in servers:
        detail = s.get("error") or ", ".join(s.get("tools") or [])
        lines.append(f"{s['name']:20} {s['state']:10} {len(s.get('tools') or []):>5}  {detail}")
    if not servers:
        lines.append("(no MCP servers)")
    ctx.emit(servers, "\n".join(lines))


@session.command("rollback")
@click.argument("session_id")
@click.option("--turns", default=1, show_default=True, type=click.IntRange(min=1),
              help="How many of the last turns to drop.")
@pass_ctx
def rollback(ctx: Context, session_id: str, turns: int) -> None:
    """Drop the last turns from the conversation. Files on disk are NOT reverted."""
    reply = ctx.request(m.RollbackSession(session_id=session_id, turns=turns))
    result = reply.result
    ctx.emit(reply, f"rolled back {result.get('turns_dropped')} turn(s), "
                    f"{result.get('messages_dropped')} message(s); {result.get('warning')}")


@session.command("rename")
@click.argument("session_id", type=SESSION_ID)
@click.argument("name", required=False)
@pass_ctx
def rename(ctx: Context, session_id: str, name: str | None) -> None:
    """Set (or, with no NAME, clear) the custom name."""
    ctx.emit(ctx.request(m.RenameSession(session_id=session_id, name=name)), "renamed")


@session.command("config")
@click.argument("session_id", type=SESSION_ID)
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
