"""The pure parts of the Claude integration: transcript lines and hook payloads to backend
events, approvals and hook decisions (shapes from claude 2.1.332, claude-code.md §5, §10)."""

from __future__ import annotations

import json

import pytest

from orbitdock.claude.hooks import (
    HookSession,
    approval_for_tool,
    parse_hook,
    permission_output,
)
from orbitdock.claude.transcript import TranscriptParser
from orbitdock.connectors import events as be
from orbitdock.protocol.errors import ProtocolError

SID = "8a3b1f8b-f771-4def-80a7-9e932e3039cc"


def line(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def assistant(uuid: str, msg_id: str, block: dict, out: int = 25) -> bytes:
    return line({"type": "assistant", "uuid": uuid, "timestamp": "2026-12-07T19:29:01.001Z",
                 "isSidechain": False,
                 "message": {"id": msg_id, "role": "assistant", "content": [block],
                             "usage": {"input_tokens": 100, "output_tokens": out,
                                       "cache_read_input_tokens": 10,
                                       "cache_creation_input_tokens": 5}}})


def test_transcript_rows_tools_and_usage():
    p = TranscriptParser(SID)
    events = []
    for raw in [
        line({"type": "queue-operation", "operation": "enqueue", "content": "x"}),
        line({"type": "user", "uuid": "u1", "message": {"role": "user", "content": "hi there"},
              "timestamp": "2026-12-07T19:29:00Z"}),
        line({"type": "attachment", "attachment": {"type": "user", "x": '"type":"user"'}}),
        assistant("a1", "msg1", {"type": "thinking", "thinking": "hmm", "signature": "s"}),
        assistant("a2", "msg1", {"type": "text", "text": "Running it."}),
        assistant("a3", "msg1", {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                 "input": {"command": "ls"}}),
        line({"type": "user", "uuid": "u2", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a\nb",
             "is_error": False}]}}),
        assistant("a4", "msg2", {"type": "text", "text": "Done."}, out=7),
        line({"type": "user", "uuid": "u3", "isMeta": True, "message": {"content": "meta"}}),
        line({"type": "user", "uuid": "u4", "isSidechain": True, "message": {"content": "sub"}}),
        b'{"type":"user", broken json',
    ]:
        events += [e for e, _ in p.feed(raw)]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["UserMessage", "Reasoning", "TokenUsageUpdated", "AgentMessage",
                     "ToolStarted", "ToolCompleted", "AgentMessage", "TokenUsageUpdated"]
    assert events[0].text == "hi there"
    assert events[4].tool_name == "Bash" and json.loads(events[4].tool_input) == {"command": "ls"}
    assert events[5].output == "a\nb" and not events[5].is_error
    usage = events[-1]
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (100, 32, 15)
    assert p.bad_lines == 1
    # the same bytes again name everything the same way
    again = TranscriptParser(SID)
    ids = [getattr(e, "item_id", None) for raw in [
        assistant("a2", "msg1", {"type": "text", "text": "Running it."})]
           for e, _ in again.feed(raw)]
    assert ids[0] == events[3].item_id


def test_hooks_turn_tools_approval_and_dedupe():
    s = HookSession(SID)
    base = {"session_id": SID, "cwd": "/p", "transcript_path": "/t.jsonl", "prompt_id": "p1"}
    tool = {"tool_name": "Bash", "tool_input": {"command": "rm x"}}

    def run(event: str, **extra) -> list:
        return s.dedupe(s.events_for(parse_hook(event, json.dumps(
            dict(base, hook_event_name=event, **extra)))))

    assert [type(e).__name__ for e in run("UserPromptSubmit", prompt="go")] == ["TurnStarted"]
    started = run("PreToolUse", **tool, tool_use_id="toolu_7")
    assert isinstance(started[0], be.ToolStarted) and started[0].item_id == "toolu_7"
    # the transcript's copy of the same start is dropped
    assert s.dedupe([be.ToolStarted("toolu_7", "Bash")]) == []
    approval = run("PermissionRequest", **tool, permission_suggestions=[])[0]
    assert isinstance(approval, be.ApprovalRequest) and approval.key == "toolu_7"
    assert approval.type == "exec" and approval.command == "rm x"
    done = run("PostToolUse", **tool, tool_use_id="toolu_7", tool_response={"stdout": "ok"})
    assert [type(e).__name__ for e in done] == ["ApprovalCleared", "ToolCompleted"]
    assert done[1].output == "ok"
    assert s.dedupe([be.ToolCompleted("toolu_7", "ok")]) == []
    stop = run("Stop", last_assistant_message="bye")
    assert [(type(e).__name__, e.status) for e in stop] == [("TurnCompleted", "completed")]
    assert isinstance(run("SessionEnd", reason="other")[-1], be.BackendEnded)


@pytest.mark.parametrize("raw,fragment", [
    ("", "empty"), ("nope", "not JSON"), ("[]", "not a JSON object"),
    ('{"session_id": "a/b"}', "session_id"),
    ('{"session_id": "a", "hook_event_name": "Stop"}', "does not match"),
])
def test_parse_hook_refuses_with_a_reason(raw, fragment):
    with pytest.raises(ProtocolError) as err:
        parse_hook("PreToolUse", raw)
    assert err.value.code == "invalid_argument" and fragment in err.value.message


def test_unknown_event_is_refused():
    with pytest.raises(ProtocolError) as err:
        parse_hook("Teleport", '{"session_id": "a"}')
    assert "unknown hook event" in err.value.message


def test_approval_kinds_and_decisions():
    edit = approval_for_tool("k", "Edit", {"file_path": "/p/a.txt", "old_string": "hello\n",
                                           "new_string": "hello world\n"}, cwd="/p",
                             suggestions=[])
    assert edit.type == "patch" and edit.file_path == "/p/a.txt"
    assert "-hello\n+hello world" in edit.diff
    question = approval_for_tool("q", "AskUserQuestion", {"questions": [
        {"question": "Which?", "header": "Pick", "options": [{"label": "A"}, {"label": "B"}],
         "multiSelect": False}]}, cwd="/p", suggestions=None)
    assert question.type == "question" and question.questions[0]["id"] == "q0"
    suggestions = [{"type": "addDirectories", "directories": ["/p"], "destination": "session"},
                   {"type": "addRules", "rules": [], "destination": "localSettings"}]
    allow = permission_output("accept_for_session", tool_name="Bash", tool_input={},
                              suggestions=suggestions)["hookSpecificOutput"]
    assert allow["hookEventName"] == "PermissionRequest"
    assert allow["decision"]["behavior"] == "allow"
    assert allow["decision"]["updatedPermissions"] == suggestions[:1]
    deny = permission_output("cancel", tool_name="Bash", tool_input={})
    assert deny["hookSpecificOutput"]["decision"] == {
        "behavior": "deny", "message": "Denied from orbitdock", "interrupt": True}
    answered = permission_output("answered", tool_name="AskUserQuestion",
                                 tool_input={"questions": [{"question": "Which?"}]},
                                 answers={"q0": ["B"]})["hookSpecificOutput"]["decision"]
    assert answered["updatedInput"]["answers"] == {"Which?": "B"}
    assert answered["behavior"] == "allow"
    several = permission_output("answered", tool_name="AskUserQuestion", tool_input={
        "questions": [{"question": "Which?", "multiSelect": True}, {"question": "Why?"}]},
        answers={"q0": ["A", "B"], "q1": ["x", "y"]})["hookSpecificOutput"]["decision"]
    assert several["updatedInput"]["answers"] == {"Which?": ["A", "B"], "Why?": "x, y"}


def test_stop_asks_when_the_last_text_asks_or_a_question_is_unanswered():
    base = {"session_id": SID, "cwd": "/p", "transcript_path": "/t.jsonl", "prompt_id": "p1"}

    def turn(last_text: str | None, *hooks: tuple[str, dict],
             transcript: tuple = ()) -> be.TurnCompleted:
        s = HookSession(SID)

        def run(event: str, **extra) -> list:
            return s.dedupe(s.events_for(parse_hook(event, json.dumps(
                dict(base, hook_event_name=event, **extra)))))

        run("UserPromptSubmit", prompt="go")
        for event, extra in hooks:
            run(event, **extra)
        s.dedupe(list(transcript))
        stop = run("Stop", **({} if last_text is None else {"last_assistant_message": last_text}))
        assert [type(e).__name__ for e in stop] == ["TurnCompleted"]
        return stop[0]

    ask = {"tool_name": "AskUserQuestion", "tool_use_id": "toolu_q",
           "tool_input": {"questions": [{"question": "Which?"}]}}
    assert turn("Which file should I edit?").asks
    assert turn("Shall I go on with **A**?\n").asks
    assert not turn("Is it fine? It is. Done.").asks
    assert not turn("Done.").asks
    # no text in the payload (an oversized one loses it): the transcript's last text decides
    assert turn(None, transcript=(be.AgentMessage("a1", "Ready to delete them?"),)).asks
    assert not turn(None, transcript=(be.AgentMessage("a1", "Deleted."),)).asks
    # upstream's rule: an AskUserQuestion the person did not answer still asks
    assert turn("I could not ask.", ("PreToolUse", ask),
                ("PostToolUseFailure", dict(ask, error="denied"))).asks
    # idle_prompt ends a turn whose Stop was lost, by the same rule
    s = HookSession(SID)
    s.events_for(parse_hook("UserPromptSubmit", json.dumps(
        dict(base, hook_event_name="UserPromptSubmit", prompt="go"))))
    s.dedupe([be.AgentMessage("a1", "Which one?")])
    (idle,) = s.events_for(parse_hook("Notification", json.dumps(
        dict(base, hook_event_name="Notification", notification_type="idle_prompt"))))
    assert idle.asks
    # answered, then the model went on: a plain reply
    assert not turn("Used B.", ("PreToolUse", ask),
                    ("PostToolUse", dict(ask, tool_response="B"))).asks


def test_compaction_starts_with_precompact_and_ends_once():
    base = {"session_id": SID, "cwd": "/p", "transcript_path": "/t.jsonl"}
    boundary = line({"type": "system", "subtype": "compact_boundary", "uuid": "b1",
                     "compactMetadata": {"trigger": "manual", "preTokens": 900},
                     "timestamp": "2026-12-07T19:29:00Z"})

    def run(s: HookSession, event: str, **extra) -> list:
        return s.dedupe(s.events_for(parse_hook(event, json.dumps(
            dict(base, hook_event_name=event, **extra)))))

    def read(s: HookSession) -> list:
        return s.dedupe([e for e, _ in TranscriptParser(SID).feed(boundary)])

    # the boundary line ends the compaction PreCompact started, under its id
    s = HookSession(SID)
    (start,) = run(s, "PreCompact", trigger="manual")
    assert isinstance(start, be.ContextCompaction) and not start.completed
    assert run(s, "PreCompact", trigger="auto") == []  # one at a time
    assert run(s, "SubagentStop", agent_id="c1", agent_type="") == []  # the summary agent
    assert run(s, "SessionStart", source="compact") == []
    assert read(s) == [be.ContextCompaction(start.item_id, completed=True)]
    # the session's next work ends it when the transcript did not show the boundary yet;
    # the boundary read later is then dropped
    s = HookSession(SID)
    (start,) = run(s, "PreCompact", trigger="auto")
    ended = run(s, "UserPromptSubmit", prompt="next", prompt_id="p2")
    assert ended[0] == be.ContextCompaction(start.item_id, completed=True)
    assert read(s) == []
    # a boundary with no PreCompact seen (hooks lost) is a finished compaction of its own
    assert read(HookSession(SID)) == [be.ContextCompaction("compact-b1", completed=True)]


def test_row_order_waits_for_the_transcript_and_lets_approvals_through():
    from orbitdock.claude.order import RowOrder

    shown: set[str] = set()
    order = RowOrder(max_wait_s=5.0)
    start = be.ToolStarted("toolu_1", "Bash")
    approval = be.ApprovalRequest(key="toolu_1", type="exec")
    done = be.ToolCompleted("toolu_1", "ok")
    turn_end = be.TurnCompleted("t1", "completed")
    agent = be.ToolStarted("agent-a1", "Agent:x")
    # the hook's start waits, and so does what comes after it, except the approval
    assert order.admit([start, approval], shown.__contains__, now=0.0) == [approval]
    assert order.admit([done, agent, turn_end], shown.__contains__, now=1.0) == []
    assert order.release(shown.__contains__, now=4.9) == []
    shown.add("toolu_1")  # the transcript shows the call: everything behind it goes
    assert order.release(shown.__contains__, now=5.0) == [start, done, agent, turn_end]
    assert len(order) == 0
    # a sub-agent row has no transcript twin: it never waits
    assert order.admit([agent], shown.__contains__, now=6.0) == [agent]
    # never shown: it goes when its wait is over, or at once when forced
    late = be.ToolStarted("toolu_2", "Bash")
    assert order.admit([late, turn_end], shown.__contains__, now=10.0) == []
    assert order.release(shown.__contains__, now=14.0) == []
    assert order.release(shown.__contains__, now=15.0) == [late, turn_end]
    order.admit([late], shown.__contains__, now=20.0)
    assert order.release(shown.__contains__, now=20.0, force=True) == [late]


def test_slash_command_rows_are_the_command_line_and_its_output_is_left_out():
    p = TranscriptParser(SID)

    def user(uuid: str, content: str) -> list:
        return [e for e, _ in p.feed(line({"type": "user", "uuid": uuid, "message": {
            "role": "user", "content": content}}))]

    (prompt,) = user("c1", "<command-name>/compact</command-name>\n            <command-message>"
                           "compact</command-message>\n            <command-args>keep it short"
                           "</command-args>")
    assert prompt.text == "/compact keep it short"
    assert user("c2", "<command-name>/help</command-name>")[0].text == "/help"
    assert user("c3", "<local-command-stdout>Compacted (ctrl+o to see full summary)"
                      "</local-command-stdout>") == []
    assert user("c4", "<b>not a command</b>")[0].text == "<b>not a command</b>"


def test_the_terminals_permission_mode_is_the_sessions_approval_policy():
    s = HookSession(SID)
    base = {"session_id": SID, "cwd": "/p", "transcript_path": "/t.jsonl"}

    def modes(event: str, **extra) -> list:
        return [e.approval_policy for e in s.events_for(parse_hook(event, json.dumps(
            dict(base, hook_event_name=event, **extra)))) if isinstance(e, be.ConfigApplied)]

    assert modes("UserPromptSubmit", prompt="go", permission_mode="default") == ["default"]
    assert modes("Stop", permission_mode="default") == []  # told once, not per hook
    assert modes("UserPromptSubmit", prompt="again", permission_mode="plan") == ["plan"]
    assert modes("Stop", permission_mode="no-such-mode") == []  # not a mode: ignored
    assert modes("Stop") == []
