"""``orbitdock-mcp``: a stdio MCP server, on the official ``mcp`` SDK, that lets an agent
supervise agents through the daemon of the same ``ORBITDOCK_HOME``.

Threads: the SDK's event loop owns stdio; tool calls run on the SDK's worker threads,
each with its own ZeroMQ ``Client`` (``orbitdock.mcp.tools``); one follower thread owns
a ``Subscription`` to the session list and tells the loop what changed, which the loop
publishes as resource notifications (``orbitdock://session/<id>``: list changed when a
session appears, updated when its summary changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
from typing import Any, AsyncIterator

import click
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.resources.types import FunctionResource
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated

from orbitdock import __version__
from orbitdock.client import DaemonNotRunning, Subscription, find_daemon
from orbitdock.config import Config, load
from orbitdock.mcp.tools import DECISIONS, Supervision, ToolRefused

logger = logging.getLogger("orbitdock.mcp")

RESOURCE_PREFIX = "orbitdock://session/"
INSTRUCTIONS = (
    "orbitdock supervises every Codex and Claude Code session on this machine. Start with "
    "list_sessions (sessions waiting on a person come first), read one with get_session, "
    "then act: send_message / steer_turn / interrupt_turn on sessions orbitdock drives "
    "(controllable), approve / answer_question on pending approvals. Sessions started in a "
    "terminal are watched only: their approvals can be decided, nothing else.")


def build_server(cfg: Config, *, read_only: bool = False) -> MCPServer:
    """The MCP server with its tools and resources (stdio is started by ``run``)."""
    supervision = Supervision(lambda: find_daemon(cfg), cfg.mcp, read_only=read_only)
    follower = _ListFollower(cfg, cfg.mcp.follow_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[None]:
        follower.start(server, asyncio.get_running_loop())
        try:
            yield None
        finally:
            follower.stop()

    server = MCPServer("orbitdock", version=__version__, instructions=INSTRUCTIONS,
                       lifespan=lifespan)
    _register_read_tools(server, supervision)
    if not read_only:
        _register_action_tools(server, supervision)
    follower.resource = lambda sid: _session_resource(supervision, sid)
    return server


def _call(fn: Any, *args: Any, **kwargs: Any) -> str:
    """Run one tool's logic; a refusal is a tool error the agent reads, not a crash."""
    try:
        return json.dumps(fn(*args, **kwargs), indent=1, default=str)
    except ToolRefused as exc:
        raise ToolError(str(exc)) from None


def _name_client(supervision: Supervision, ctx: Context | None) -> None:
    """Actions are logged by the daemon with the MCP client's name, when it gave one."""
    try:
        info = ctx.session.client_params.clientInfo  # type: ignore[union-attr]
        supervision.client_name = f"orbitdock-mcp ({info.name})"
    except Exception:  # noqa: BLE001 - an anonymous client keeps the default name
        pass


def _register_read_tools(server: MCPServer, sv: Supervision) -> None:
    @server.tool(description="List the sessions orbitdock knows, the ones waiting on a person "
                 "first. Filters: provider (codex | claude | any), status (active | ended, or "
                 "a work status: working | waiting | permission | question | reply), "
                 "needs_attention (true: only those waiting on a person), controllable_only "
                 "(true: only sessions orbitdock drives, so send_message works).")
    def list_sessions(provider: str | None = None, status: str | None = None,
                      needs_attention: bool | None = None,
                      controllable_only: bool = False) -> str:
        return _call(sv.list_sessions, provider=provider, status=status,
                     needs_attention=needs_attention, controllable_only=controllable_only)

    @server.tool(description="One session: status, pending approvals (their request_id, "
                 "command or diff, and options), plan, token usage and the last `messages` "
                 "messages (default 20).")
    def get_session(session_id: str, messages: int = 20) -> str:
        return _call(sv.get_session, session_id, messages=messages)

    @server.tool(description="A page of a session's conversation history from the database, "
                 "oldest first; pass before_seq (the first seq of the previous page) to page "
                 "back.")
    def get_messages(session_id: str, before_seq: int | None = None, limit: int = 50) -> str:
        return _call(sv.get_messages, session_id, before_seq=before_seq, limit=limit)

    @server.tool(description="The models a provider offers (id, reasoning efforts, default).")
    def list_models(provider: str = "codex") -> str:
        return _call(sv.list_models, provider=provider)


def _register_action_tools(server: MCPServer, sv: Supervision) -> None:
    @server.tool(description="Send a message to a session orbitdock drives: starts a turn "
                 "(model and effort optional, checked against the provider's catalog).")
    def send_message(session_id: str, message: str, model: str | None = None,
                     effort: str | None = None, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.send_message, session_id, message, model=model, effort=effort)

    @server.tool(description="Add guidance to the turn a session is running (starts a turn "
                 "if none runs).")
    def steer_turn(session_id: str, message: str, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.steer_turn, session_id, message)

    @server.tool(description="Interrupt the turn a session is running.")
    def interrupt_turn(session_id: str, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.interrupt_turn, session_id)

    @server.tool(description="Start a new session orbitdock drives. provider: codex or "
                 "claude (or scripted for tests); cwd: an existing directory; approval_policy: "
                 "untrusted | on-request | on-failure | never (claude also takes its "
                 "permission modes: default, acceptEdits, plan, ...); sandbox_mode (codex "
                 "only): read-only | workspace-write | danger-full-access. Returns the new "
                 "session.")
    def create_session(provider: str, cwd: str, model: str | None = None,
                       approval_policy: str | None = None, sandbox_mode: str | None = None,
                       name: str | None = None, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.create_session, provider=provider, cwd=cwd, model=model,
                     approval_policy=approval_policy, sandbox_mode=sandbox_mode, name=name)

    @server.tool(description="End a session orbitdock drives (its history stays).")
    def end_session(session_id: str, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.end_session, session_id)

    @server.tool(description="Resume an ended session orbitdock drove, with its context.")
    def resume_session(session_id: str, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.resume_session, session_id)

    @server.tool(description="Rename a session (an empty name clears it).")
    def rename_session(session_id: str, name: str | None = None,
                       ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.rename_session, session_id, name)

    @server.tool(description="Fork a session: a new session orbitdock drives that continues "
                 "its conversation (model, approval_policy, sandbox_mode, name optional). "
                 "Works on a session started in a terminal too: the way to take it over.")
    def fork_session(session_id: str, model: str | None = None,
                     approval_policy: str | None = None, sandbox_mode: str | None = None,
                     name: str | None = None, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.fork_session, session_id, model=model, approval_policy=approval_policy,
                     sandbox_mode=sandbox_mode, name=name)

    @server.tool(description="Drop the last `turns` turns (default 1) of a session's "
                 "conversation. Files on disk are NOT reverted.")
    def rollback_turns(session_id: str, turns: int = 1, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.rollback_turns, session_id, turns=turns)

    @server.tool(description="Compact a session's context (summarize it) while no turn runs.")
    def compact_session(session_id: str, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.compact_session, session_id)

    @server.tool(description="Start a code review in a session. target: uncommitted | "
                 "base_branch (value: the branch) | commit (value: the sha) | custom (value: "
                 "the instructions). The findings arrive as a review message.")
    def review(session_id: str, target: str = "uncommitted", value: str | None = None,
               ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.review, session_id, target=target, value=value)

    @server.tool(description="Decide a pending command or file-change approval. decision: "
                 f"{' | '.join(DECISIONS)}. request_id optional: the oldest pending one; a "
                 "stale id is refused with the current one named. wait_s: wait up to that "
                 "many seconds (at most mcp.approve_wait_max_s, 120 by default) for an "
                 "approval to be pending. Questions take "
                 "answer_question instead.")
    def approve(session_id: str, decision: str = "approved", request_id: str | None = None,
                wait_s: float = 0.0, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.approve, session_id, decision=decision, request_id=request_id,
                     wait_s=wait_s)

    @server.tool(description="Answer a pending question: `answer` (one answer for every "
                 "question) or `answers` (question id -> list of chosen answers). request_id "
                 "optional: the oldest pending question.")
    def answer_question(session_id: str, answer: str | None = None,
                        answers: dict[str, list[str]] | None = None,
                        request_id: str | None = None, ctx: Context | None = None) -> str:
        _name_client(sv, ctx)
        return _call(sv.answer_question, session_id, answer=answer, answers=answers,
                     request_id=request_id)


def _session_resource(sv: Supervision, session_id: str) -> FunctionResource:
    def snapshot() -> str:
        try:
            return json.dumps(sv.get_session(session_id, messages=50), default=str)
        except ToolRefused as exc:
            raise ResourceError(str(exc)) from None

    return FunctionResource(uri=f"{RESOURCE_PREFIX}{session_id}", name=session_id,
                            description=f"orbitdock session {session_id}: its state as JSON",
                            mime_type="application/json", fn=snapshot)


class _ListFollower:
    """Owns a ``Subscription`` to the session list on its own thread; tells the server's
    loop which resources to add (list changed) and which changed (updated)."""

    def __init__(self, cfg: Config, interval_s: float):
        self.cfg = cfg
        self.interval_s = interval_s
        self.resource: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, server: MCPServer, loop: asyncio.AbstractEventLoop) -> None:
        self._thread = threading.Thread(target=self._run, args=(server, loop),
                                        name="mcp-list-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self, server: MCPServer, loop: asyncio.AbstractEventLoop) -> None:
        seen: dict[str, Any] = {}
        while not self._stop.is_set():
            try:
                sub = Subscription(find_daemon(self.cfg), config=self.cfg)
            except DaemonNotRunning:
                self._stop.wait(1.0)  # tools say "not running"; resources wait for it
                continue
            try:
                sub.watch_list()
                while not self._stop.is_set():
                    sub.poll(self.interval_s)
                    current = dict(sub.summaries) if sub.list_synced else seen
                    added = [sid for sid in current if sid not in seen]
                    changed = [sid for sid in current if sid in seen and current[sid] != seen[sid]]
                    seen = current
                    if added or changed:
                        asyncio.run_coroutine_threadsafe(
                            self._publish(server, added, changed), loop)
            except Exception:  # noqa: BLE001 - the follower must outlive a bad moment
                logger.exception("session list follower failed; reconnecting")
                self._stop.wait(1.0)
            finally:
                sub.close()

    async def _publish(self, server: MCPServer, added: list[str], changed: list[str]) -> None:
        for sid in added:
            server.add_resource(self.resource(sid))
        bus = server._subscriptions  # noqa: SLF001 - the SDK's own fan-out seam
        if added:
            await bus.publish(ResourcesListChanged())
        for sid in changed:
            await bus.publish(ResourceUpdated(uri=f"{RESOURCE_PREFIX}{sid}"))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", "data_dir", help="Data dir of the daemon to talk to "
              "(default $ORBITDOCK_HOME or ~/.orbitdock).")
@click.option("--read-only", is_flag=True, help="Offer only the read tools.")
@click.version_option(__version__)
def main(data_dir: str | None, read_only: bool) -> None:
    """Serve orbitdock's tools to an MCP client over stdio."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # stdout is the protocol
    cfg = load(None, overrides={"paths.data_dir": data_dir})
    build_server(cfg, read_only=read_only).run("stdio")


if __name__ == "__main__":
    main()
