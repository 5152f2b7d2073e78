"""orbitdock-mcp through the SDK's own client over stdio, against a real daemon."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from conftest import REPO, wait_until
from orbitdock.protocol import messages as m
from watcher_env import codex_home, fixture_lines, rollout_path, start_daemon  # noqa: F401

CALL_TIMEOUT_S = 20


def _server(home: Path, *args: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBITDOCK_")}
    env["ORBITDOCK_HOME"] = str(home)
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "orbitdock.mcp.server", *args], env=env, cwd=REPO)


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 90))


async def _call(client: Client, tool: str, **arguments):  # noqa: ANN202
    result = await asyncio.wait_for(client.call_tool(tool, arguments), CALL_TIMEOUT_S)
    text = result.content[0].text if result.content else ""
    return result.is_error, text


async def _ok(client: Client, tool: str, **arguments):  # noqa: ANN202
    is_error, text = await _call(client, tool, **arguments)
    assert not is_error, f"{tool}: {text}"
    return json.loads(text)


def test_every_tool_against_a_live_daemon(daemon, tmp_path):
    client0 = daemon.client()
    passive_free = tmp_path / "work"
    passive_free.mkdir()

    async def scenario() -> None:
        async with Client(_server(daemon.home)) as mcp:
            tools = {t.name: t for t in (await mcp.list_tools()).tools}
            assert {"list_sessions", "get_session", "get_messages", "list_models",
                    "send_message", "steer_turn", "interrupt_turn", "create_session",
                    "end_session", "resume_session", "rename_session", "approve",
                    "answer_question", "fork_session", "rollback_turns", "compact_session",
                    "review"} <= set(tools)
            assert "session_id" in tools["send_message"].input_schema["properties"]

            created = await _ok(mcp, "create_session", provider="scripted",
                                cwd=str(passive_free), name="via mcp")
            sid = created["session_id"]
            listed = await _ok(mcp, "list_sessions", controllable_only=True)
            assert [row["session_id"] for row in listed] == [sid]

            await _ok(mcp, "send_message", session_id=sid, message="hello there")
            assert wait_until(lambda: client0.request(m.SubscribeSession(session_id=sid))
                              .session.work_status == "reply", 10)
            session = await _ok(mcp, "get_session", session_id=sid)
            assert session["work_status"] == "reply"
            assert [x["type"] for x in session["messages"]][:2] == ["user", "assistant"]
            page = await _ok(mcp, "get_messages", session_id=sid, limit=1)
            assert page["has_more_before"] and len(page["messages"]) == 1

            # An approval: the oldest pending one is decided when no request_id is given.
            await _ok(mcp, "send_message", session_id=sid, message="/approve echo hi")
            assert wait_until(lambda: client0.request(m.SubscribeSession(session_id=sid))
                              .session.approvals, 10)
            waiting = await _ok(mcp, "list_sessions", needs_attention=True)
            assert waiting and waiting[0]["session_id"] == sid
            pending = (await _ok(mcp, "get_session", session_id=sid))["pending_approvals"]
            is_error, text = await _call(mcp, "approve", session_id=sid,
                                         request_id=f"{sid}:a999-x")
            assert is_error and pending[0]["request_id"] in text  # stale: names the current
            decided = await _ok(mcp, "approve", session_id=sid, decision="approved")
            assert decided["approval_id"] == pending[0]["request_id"]
            assert decided["outcome"] == "applied"

            # A question is answered, not approved.
            await _ok(mcp, "send_message", session_id=sid, message="/ask Which color?")
            assert wait_until(lambda: client0.request(m.SubscribeSession(session_id=sid))
                              .session.approvals, 10)
            is_error, text = await _call(mcp, "approve", session_id=sid)
            assert is_error and "answer_question" in text and "Which color?" in text
            answered = await _ok(mcp, "answer_question", session_id=sid, answer="blue")
            assert answered["outcome"] == "applied"

            await _ok(mcp, "send_message", session_id=sid, message="/hold")
            assert wait_until(lambda: client0.request(m.SubscribeSession(session_id=sid))
                              .session.work_status == "working", 10)
            steered = await _ok(mcp, "steer_turn", session_id=sid, message="and also this")
            assert steered["steered"] and steered["turn_id"]
            assert "and also this" in [x["content"] for x in
                                       (await _ok(mcp, "get_session", session_id=sid))["messages"]]
            await _ok(mcp, "interrupt_turn", session_id=sid)
            await _ok(mcp, "rename_session", session_id=sid, name="renamed")
            await _ok(mcp, "end_session", session_id=sid)
            resumed = await _ok(mcp, "resume_session", session_id=sid)
            assert resumed["status"] == "active" and resumed["name"] == "renamed"

            # Codex-only operations on a scripted session: coded refusals, passed through.
            for tool, args in (("compact_session", {}), ("rollback_turns", {"turns": 1}),
                               ("review", {"target": "custom", "value": "look"})):
                is_error, text = await _call(mcp, tool, session_id=sid, **args)
                assert is_error and "unsupported" in text, (tool, text)
            is_error, text = await _call(mcp, "fork_session", session_id=sid)
            assert is_error and ("unsupported" in text or "cannot be forked" in text
                                 or "invalid_state" in text), text

            # Errors are tool errors, and the server keeps serving.
            is_error, text = await _call(mcp, "get_session", session_id="od-nope")
            assert is_error and "not_found" in text
            is_error, text = await _call(mcp, "create_session", provider="nope", cwd="/")
            assert is_error and "invalid_argument" in text
            is_error, text = await _call(mcp, "list_models", provider="codex")
            assert is_error or json.loads(text)  # codex may be unavailable in this daemon
            assert (await _ok(mcp, "list_sessions"))[0]["session_id"] == sid

    run(scenario())
    logged = [line for line in daemon.log_lines() if "orbitdock-mcp" in line]
    assert any("send_message" in line for line in logged), logged[-5:]


def test_passive_sessions_are_watched_only(start_daemon, codex_home):
    """A terminal session (imported by the watcher from a real rollout) can be read, but no
    action is taken on it."""
    from test_watcher_files import FIXTURE_THREAD

    d = start_daemon()
    rollout_path(codex_home, FIXTURE_THREAD).write_bytes(b"".join(fixture_lines()))
    client0 = d.client()
    assert wait_until(lambda: client0.request(m.SubscribeList()).sessions, 15)
    sid = client0.request(m.SubscribeList()).sessions[0].id

    async def scenario() -> None:
        async with Client(_server(d.home)) as mcp:
            rows = await _ok(mcp, "list_sessions")
            assert rows[0]["session_id"] == sid and rows[0]["controllable"] is False
            assert await _ok(mcp, "list_sessions", controllable_only=True) == []
            for tool, args in (("send_message", {"message": "hi"}), ("interrupt_turn", {}),
                               ("end_session", {}), ("rename_session", {"name": "x"})):
                is_error, text = await _call(mcp, tool, session_id=sid, **args)
                assert is_error and "terminal" in text, (tool, text)
            assert (await _ok(mcp, "get_session", session_id=sid))["controllable"] is False

    run(scenario())


def test_read_only_offers_only_read_tools(daemon):
    async def scenario() -> None:
        async with Client(_server(daemon.home, "--read-only")) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            assert names == {"list_sessions", "get_session", "get_messages", "list_models"}

    run(scenario())


def test_daemon_down_is_a_tool_error_not_a_crash(tmp_path):
    async def scenario() -> None:
        async with Client(_server(tmp_path / "no-daemon")) as mcp:
            for _ in range(2):  # the server survives it and answers again
                is_error, text = await _call(mcp, "list_sessions")
                assert is_error and "not running" in text

    run(scenario())


def test_sessions_are_resources_that_notify(daemon, tmp_path):
    client0 = daemon.client()
    sid = client0.request(m.CreateSession(provider="scripted", cwd="/")).session.id

    async def scenario() -> None:
        async with Client(_server(daemon.home)) as mcp:
            uri = f"orbitdock://session/{sid}"
            async with mcp.listen(resources_list_changed=True,
                                  resource_subscriptions=[uri]) as events:
                async def resources() -> list[str]:
                    return [str(r.uri) for r in (await mcp.list_resources()).resources]

                for _ in range(50):
                    if uri in await resources():
                        break
                    await asyncio.sleep(0.1)
                assert uri in await resources()
                content = await mcp.read_resource(uri)
                assert json.loads(content.contents[0].text)["session_id"] == sid
                client0.request(m.RenameSession(session_id=sid, name="watched"))
                seen = []
                async for event in events:
                    seen.append(event)
                    if getattr(event, "uri", None) == uri:
                        break
                content = await mcp.read_resource(uri)
                assert json.loads(content.contents[0].text)["name"] == "watched"

    run(scenario())


@pytest.mark.parametrize("agent", ["codex", "claude"])
def test_config_snippets_point_at_this_server(agent, tmp_path):
    from orbitdock.mcp.snippets import snippet

    text = snippet(agent, home=str(tmp_path))
    assert "orbitdock-mcp" in text and str(tmp_path) in text
    if agent == "codex":
        import tomllib

        server = tomllib.loads(text)["mcp_servers"]["orbitdock"]
        assert server["env"]["ORBITDOCK_HOME"] == str(tmp_path)
    else:
        server = json.loads(text)["mcpServers"]["orbitdock"]
        assert server["env"]["ORBITDOCK_HOME"] == str(tmp_path)
    assert Path(server["command"]).name.startswith("orbitdock-mcp") or \
        "orbitdock.mcp.server" in " ".join(server.get("args", []))
