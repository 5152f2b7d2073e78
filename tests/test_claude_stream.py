"""orbitdock.claude.stream: claude's stream-json lines -> backend events, and the answers
orbitdock writes back. The line shapes are those claude 2.1.332 printed against the
scripted Messages API (tests/test_claude_direct.py runs the real thing)."""

from __future__ import annotations

import pytest

from orbitdock.claude import modes, stream
from orbitdock.connectors import events as be

SID = "0b5c3a52-1111-2222-3333-444455556666"
INIT = {"type": "system", "subtype": "init", "session_id": SID, "model": "claude-sim",
        "permissionMode": "default", "cwd": "/p"}


def delta(msg: str, index: int, kind: str, text: str) -> dict:
    field = "text" if kind == "text_delta" else "thinking"
    return {"type": "stream_event", "api_message_id": msg, "session_id": SID,
            "parent_tool_use_id": None,
            "event": {"type": "content_block_delta", "index": index,
                      "delta": {"type": kind, field: text}}}


def assistant(msg: str, block: dict, parent: str | None = None) -> dict:
    return {"type": "assistant", "session_id": SID, "parent_tool_use_id": parent,
            "message": {"id": msg, "role": "assistant", "content": [block],
                        "usage": {"input_tokens": 100, "output_tokens": 1}}}


def result(**fields) -> dict:
    line = {"type": "result", "subtype": "success", "is_error": False,
            "terminal_reason": "completed", "total_cost_usd": 0.0042,
            "usage": {"input_tokens": 200, "output_tokens": 50, "cache_read_input_tokens": 20,
                      "cache_creation_input_tokens": 10,
                      "output_tokens_details": {"thinking_tokens": 7}},
            "modelUsage": {"claude-sim": {"contextWindow": 200000}}}
    line.update(fields)
    return line


def feed_all(mapper: stream.StreamMapper, lines: list[dict]) -> list:
    return [event for line in lines for event in mapper.feed(line)]


def test_a_turn_streams_text_and_thinking_then_tools_and_the_outcome():
    mapper = stream.StreamMapper()
    mapper.begin_turn("t1")
    events = feed_all(mapper, [
        INIT,
        {"type": "stream_event", "event": {"type": "message_start",
                                           "message": {"id": "msg_1"}}},
        delta("msg_1", 0, "thinking_delta", "Think"),
        assistant("msg_1", {"type": "thinking", "thinking": "Think", "signature": "s"}),
        delta("msg_1", 1, "text_delta", "Hel"), delta("msg_1", 1, "text_delta", "lo"),
        assistant("msg_1", {"type": "text", "text": "Hello"}),
        assistant("msg_1", {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                            "input": {"command": "ls"}}),
        {"type": "user", "parent_tool_use_id": None, "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a\nb",
             "is_error": False}]}},
        assistant("msg_2", {"type": "text", "text": "sub-agent"}, parent="toolu_9"),
        result(),
    ])
    assert events == [
        be.ConfigApplied(model="claude-sim"), be.ConfigApplied(approval_policy="default"),
        be.ReasoningDelta("msg_1-0", "Think", "t1"), be.Reasoning("msg_1-0", "Think", "t1"),
        be.AgentMessageDelta("msg_1-1", "Hel", "t1"), be.AgentMessageDelta("msg_1-1", "lo", "t1"),
        be.AgentMessage("msg_1-1", "Hello", "t1"),
        be.ToolStarted("toolu_1", "Bash", '{"command": "ls"}', "t1"),
        be.ToolCompleted("toolu_1", output="a\nb", status="completed"),
        be.TokenUsageUpdated(input_tokens=200, output_tokens=50, cached_tokens=30,
                             reasoning_tokens=7, total_tokens=280, context_window=200000,
                             cost_usd=0.0042),
        be.TurnCompleted("t1", "completed", None),
    ]
    assert mapper.turn_id is None
    assert mapper.feed(INIT) == []  # init repeats every turn: only changes are news


def test_a_denied_tool_is_declined():
    line = {"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "Denied from orbitdock",
         "is_error": True}]},
        "tool_result_meta": [{"id": "toolu_2", "permission_decision": {"decision": "reject"}}]}
    (event,) = stream.StreamMapper().feed(line)
    assert event.status == "declined" and event.is_error


@pytest.mark.parametrize("fields, status, error", [
    ({"terminal_reason": "aborted_streaming", "is_error": True,
      "subtype": "error_during_execution"}, "interrupted", None),
    ({"is_error": True, "result": "API Error: 500", "api_error_status": 500,
      "terminal_reason": "api_error"}, "failed", "API error 500: API Error: 500"),
    ({"subtype": "error_max_turns", "is_error": True, "result": None, "errors": ["too many"]},
     "failed", "too many"),
])
def test_turn_outcomes(fields, status, error):
    mapper = stream.StreamMapper()
    mapper.begin_turn("t2")
    *_, done = mapper.feed(result(**fields))
    assert done == be.TurnCompleted("t2", status, error)


@pytest.mark.parametrize("raw", [b"not json {", b"[1, 2]", b'{"no": "type"}', b'"text"'])
def test_lines_that_are_not_stream_json_are_refused(raw):
    with pytest.raises(stream.BadLine):
        stream.parse_line(raw)


BASH = {"subtype": "can_use_tool", "tool_name": "Bash", "tool_use_id": "toolu_3",
        "input": {"command": "touch x", "description": "touch"},
        "permission_suggestions": [
            {"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "touch x"}],
             "behavior": "allow", "destination": "localSettings"},
            {"type": "setMode", "mode": "acceptEdits", "destination": "session"}]}


def test_decisions_become_can_use_tool_answers():
    assert stream.can_use_tool_answer(BASH, "accept") == {
        "behavior": "allow", "updatedInput": BASH["input"], "toolUseID": "toolu_3"}
    for_session = stream.can_use_tool_answer(BASH, "accept_for_session")
    assert for_session["behavior"] == "allow"
    assert [s["destination"] for s in for_session["updatedPermissions"]] == ["session"] * 2
    assert stream.can_use_tool_answer(BASH, "decline")["behavior"] == "deny"
    assert stream.can_use_tool_answer(BASH, "decline")["interrupt"] is False
    assert stream.can_use_tool_answer(BASH, "cancel")["interrupt"] is True


def test_a_question_is_answered_in_the_tool_input():
    ask = {"tool_name": "AskUserQuestion", "input": {"questions": [
        {"question": "Which color?", "options": [{"label": "red"}, {"label": "blue"}]}]}}
    approval = stream.approval_of("req-1", ask, "/p")
    assert approval.type == "question" and approval.key == "req-1"
    assert approval.questions[0]["id"] == "q0"
    answer = stream.can_use_tool_answer(ask, "answered", {"q0": ["blue"]})
    assert answer["behavior"] == "allow"
    assert answer["updatedInput"]["answers"] == {"Which color?": "blue"}


def test_edit_tools_are_patch_approvals_with_a_diff():
    edit = {"tool_name": "Edit", "input": {"file_path": "/p/a.txt", "old_string": "one",
                                            "new_string": "two"}}
    approval = stream.approval_of("req-2", edit, "/p")
    assert approval.type == "patch" and approval.file_path == "/p/a.txt"
    assert "-one" in approval.diff and "+two" in approval.diff


def test_autonomy_maps_to_permission_modes():
    assert modes.permission_mode_for(None) == "default"
    assert modes.permission_mode_for("untrusted") == "default"
    assert modes.permission_mode_for("on-request") == "default"
    assert modes.permission_mode_for("on-failure") == "acceptEdits"
    assert modes.permission_mode_for("never") == "bypassPermissions"
    assert modes.permission_mode_for("plan") == "plan"
    assert modes.permission_mode_for("sometimes") is None
