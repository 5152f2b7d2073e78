"""The upstream <-> daemon mapping of orbitdock-ws, on recorded upstream-shaped frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import (
    ApprovalRequest,
    Message,
    MessageChanges,
    Question,
    SessionState,
    StateChanges,
    TokenUsage,
)
from orbitdock.ws import inbound, outbound

FIXTURES = Path(__file__).parent / "fixtures" / "ws"
SID = "od-1b7c0e6e-3c55-4b54-9d8e-0d4f2f0a1a11"


def _frames(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


@pytest.mark.parametrize("line", _frames("upstream_client_frames.jsonl"))
def test_every_recorded_upstream_client_frame_parses_and_maps(line):
    msg = inbound.parse(line)
    assert msg.__struct_config__.tag == json.loads(line)["type"]
    if isinstance(msg, (inbound.SubscribeList, inbound.SubscribeSession,
                        inbound.UnsubscribeSession)):
        return  # the link's own business, no daemon request
    request = inbound.to_request(msg)
    # the daemon's codec accepts what the bridge sends
    assert isinstance(codec.decode_request(codec.encode(request), 1 << 20), type(request))


@pytest.mark.parametrize("line", _frames("upstream_unserved_frames.jsonl"))
def test_upstream_messages_not_served_get_unsupported(line):
    with pytest.raises(inbound.Refused) as info:
        inbound.parse(line)
    assert info.value.code == "unsupported"


@pytest.mark.parametrize("text,code", [
    ("{not json", "parse_error"),
    ("[1, 2]", "parse_error"),
    ('{"session_id": "x"}', "parse_error"),
    ('{"type": "make_coffee"}', "parse_error"),
    ('{"type": "send_message", "session_id": "x"}', "parse_error"),  # content missing
    ('{"type": "subscribe_session", "session_id": 7}', "parse_error"),
])
def test_bad_frames_get_parse_error(text, code):
    with pytest.raises(inbound.Refused) as info:
        inbound.parse(text)
    assert info.value.code == code


def test_decisions_map_to_the_daemons():
    def decided(decision, **extra):
        msg = inbound.parse(json.dumps({"type": "approve_tool", "session_id": SID,
                                        "request_id": f"{SID}:a1", "decision": decision,
                                        **extra}))
        return inbound.to_request(msg).decision

    assert decided("approved") == "accept"
    assert decided("approved_for_session") == "accept_for_session"
    assert decided("denied") == "decline"
    assert decided("deny") == "decline"
    assert decided("abort") == "cancel"
    assert decided("denied", interrupt=True) == "cancel"
    with pytest.raises(inbound.Refused) as info:
        decided("maybe")
    assert info.value.code == "invalid_argument"


def test_options_the_daemon_cannot_honour_are_refused_not_dropped():
    for frame in ({"type": "create_session", "provider": "codex", "cwd": "/w", "effort": "high"},
                  {"type": "send_message", "session_id": SID, "content": "x",
                   "images": [{"input_type": "url", "value": "http://x/y.png"}]},
                  {"type": "create_session", "provider": "codex", "cwd": "/w",
                   "permission_mode": "plan"},
                  {"type": "fork_session", "source_session_id": SID, "nth_user_message": 2}):
        with pytest.raises(inbound.Refused) as info:
            inbound.to_request(inbound.parse(json.dumps(frame)))
        assert info.value.code == "unsupported"
    for frame in ({"type": "update_session_config", "session_id": SID,
                   "permission_mode": "plan"},
                  {"type": "fork_session", "source_session_id": SID,
                   "permission_mode": "plan"}):
        with pytest.raises(inbound.Refused) as info:
            inbound.to_request(inbound.parse(json.dumps(frame)), provider="codex")
        assert info.value.code == "unsupported" and "Claude's" in info.value.message
        assert info.value.session_id == SID


def test_permission_mode_is_a_claude_sessions_approval_policy():
    def policy(frame, provider=None):
        return inbound.to_request(inbound.parse(json.dumps(frame)),
                                  provider=provider).approval_policy

    create = {"type": "create_session", "provider": "claude", "cwd": "/w"}
    assert policy(dict(create, permission_mode="acceptEdits")) == "acceptEdits"
    assert policy(dict(create, approval_policy="never")) == "never"  # mapped by the daemon
    assert policy(dict(create, permission_mode="plan", approval_policy="plan")) == "plan"
    update = {"type": "update_session_config", "session_id": SID}
    assert policy(dict(update, permission_mode="bypassPermissions"), "claude") \
        == "bypassPermissions"
    assert policy(dict(update, permission_mode="dontAsk")) == "dontAsk"  # the daemon checks
    fork = {"type": "fork_session", "source_session_id": SID}
    assert policy(dict(fork, permission_mode="plan"), "claude") == "plan"
    assert policy(fork, "codex") is None
    for bad in (dict(create, permission_mode="never"),  # a Codex value is not a mode
                dict(create, permission_mode="plan", approval_policy="default")):
        with pytest.raises(inbound.Refused) as info:
            inbound.to_request(inbound.parse(json.dumps(bad)))
        assert info.value.code == "invalid_argument"


def _hook_frames() -> list[dict]:
    return [json.loads(line) for line in _frames("upstream_client_frames.jsonl")
            if json.loads(line)["type"].startswith("claude_")]


@pytest.mark.parametrize("frame", _hook_frames(), ids=lambda f: f.get("hook_event_name")
                         or f["type"])
def test_claude_hook_messages_become_the_hook_payload_claude_would_send(frame):
    """What orbitdock's own hook parser takes: the message less ``type``, upstream's
    terminal fields and nulls, with hook_event_name set; the mapping maps it."""
    from orbitdock.claude.hooks import HookSession, parse_hook

    request = inbound.to_request(inbound.parse(json.dumps(frame)))
    assert isinstance(request, m.ClaudeHook)
    assert isinstance(codec.decode_request(codec.encode(request), 1 << 20), m.ClaudeHook)
    hook = parse_hook(request.event, request.payload)
    payload = json.loads(request.payload)
    assert hook.session_id == frame["session_id"]
    assert payload["hook_event_name"] == request.event
    assert "type" not in payload and "terminal_app" not in payload
    assert None not in payload.values()
    for name, value in frame.items():
        if name not in ("type", "terminal_app", "terminal_session_id") and value is not None:
            assert payload[name] == value, name
    HookSession(hook.session_id).events_for(hook, answerable=False)


def test_claude_hook_events_and_the_ones_upstream_ignores():
    start = inbound.parse(json.dumps({"type": "claude_session_start", "session_id": "c1",
                                      "cwd": "/w"}))
    assert inbound.to_request(start).event == "SessionStart"
    end = inbound.parse(json.dumps({"type": "claude_session_end", "session_id": "c1"}))
    assert inbound.to_request(end).event == "SessionEnd"
    codex_own = inbound.parse(json.dumps({"type": "claude_session_start", "session_id": "c1",
                                          "cwd": "/w", "context_label": "codex_cli_rs"}))
    assert inbound.to_request(codex_own) is None
    for ignored in ("TeammateIdle", "TaskCompleted", "ConfigChange"):
        msg = inbound.parse(json.dumps({"type": "claude_status_event", "session_id": "c1",
                                        "hook_event_name": ignored}))
        assert inbound.to_request(msg) is None
    for frame in ({"type": "claude_status_event", "session_id": "c1",
                   "hook_event_name": "PreToolUse"},  # a tool event's, on the wrong message
                  {"type": "claude_tool_event", "session_id": "c1", "cwd": "/w",
                   "tool_name": "Bash", "hook_event_name": "Stop"},
                  {"type": "claude_subagent_event", "session_id": "c1", "agent_id": "a",
                   "hook_event_name": "Launch"}):
        with pytest.raises(inbound.Refused) as info:
            inbound.to_request(inbound.parse(json.dumps(frame)))
        assert info.value.code == "invalid_argument" and info.value.session_id == "c1"
    for text in ('{"type":"claude_tool_event","session_id":"c1","hook_event_name":"PreToolUse",'
                 '"cwd":"/w"}',  # tool_name missing
                 '{"type":"claude_session_start","session_id":"c1"}',  # cwd missing
                 '{"type":"claude_subagent_event","session_id":"c1",'
                 '"hook_event_name":"SubagentStart"}',  # agent_id missing
                 '{"type":"claude_session_end","session_id":7}'):
        with pytest.raises(inbound.Refused) as info:
            inbound.parse(text)
        assert info.value.code == "parse_error"


def test_bare_answer_needs_a_known_single_question():
    msg = inbound.parse(json.dumps({"type": "answer_question", "session_id": SID,
                                    "request_id": f"{SID}:a1", "answer": "yes"}))
    assert inbound.to_request(msg, question_ids=["q7"]).answers == {"q7": ["yes"]}
    with pytest.raises(inbound.Refused) as info:
        inbound.to_request(msg, question_ids=[])
    assert info.value.code == "invalid_answer_payload"


def _state() -> SessionState:
    return SessionState(
        id=SID, provider="codex", project_path="/w/app", project_name="app",
        started_at=1739180000.5, last_activity_at=1739180100.9, revision=7,
        token_usage=TokenUsage(input_tokens=1000, output_tokens=20, context_window=200_000),
        current_plan=[{"step": "read", "status": "completed"}],
        messages=[Message(id=f"{SID}:m1", seq=1, type="user", content="hi", timestamp=1.0),
                  Message(id=f"{SID}:m2", seq=2, type="error", content="boom", timestamp=2.0)],
        total_message_count=5,
        approvals=[ApprovalRequest(id=f"{SID}:a1", session_id=SID, type="question",
                                   questions=[Question(id="q1", question="Go?",
                                                       options=[{"label": "yes"}])])],
        pending_approvals=1, work_status="question", attention_reason="awaitingQuestion")


def test_claude_sessions_carry_permission_and_integration_modes():
    direct = SessionState(id=SID, provider="claude", approval_policy="on-failure")
    s = outbound.session_state(direct)
    assert s["provider"] == "claude" and s["claude_integration_mode"] == "direct"
    assert s["permission_mode"] == "acceptEdits"  # a Codex-style value, as claude runs it
    assert "codex_integration_mode" not in s
    assert outbound.session_state(SessionState(id=SID, provider="claude"))[
        "permission_mode"] == "default"
    passive = outbound.session_state(SessionState(id=SID, provider="claude",
                                                  integration_mode="passive"))
    assert passive["claude_integration_mode"] == "passive" and passive["permission_mode"] is None
    assert "permission_mode" not in outbound.session_state(_state())  # codex: none
    [delta] = outbound.session_event(m.SessionDelta(
        session_id=SID, rev=3, changes=StateChanges(approval_policy="plan")), direct)
    assert delta["changes"] == {"approval_policy": "plan", "permission_mode": "plan"}
    [codex_delta] = outbound.session_event(m.SessionDelta(
        session_id=SID, rev=8, changes=StateChanges(approval_policy="never")), _state())
    assert codex_delta["changes"] == {"approval_policy": "never"}


def test_snapshot_has_upstream_shape():
    s = outbound.session_state(_state())
    assert s["provider"] == "codex" and s["codex_integration_mode"] == "direct"
    assert s["started_at"] == "1739180000Z" and s["last_activity_at"] == "1739180100Z"
    assert s["token_usage"]["context_window"] == 200_000
    assert s["token_usage_snapshot_kind"] == "context_turn"
    assert json.loads(s["current_plan"]) == [{"step": "read", "status": "completed"}]
    assert s["has_pending_approval"] is True and s["pending_approval_id"] == f"{SID}:a1"
    assert s["pending_approval"]["type"] == "question"
    assert s["pending_approval"]["question_prompts"][0]["options"][0]["label"] == "yes"
    assert s["pending_question"] == "Go?"
    assert [x["message_type"] for x in s["messages"]] == ["user", "assistant"]
    assert s["messages"][1]["is_error"] is True
    assert "is_in_progress" not in s["messages"][0]  # omitted when false, as upstream
    assert s["messages"][0]["tool_output"] is None  # always emitted
    assert s["oldest_sequence"] == 1 and s["newest_sequence"] == 2
    assert s["has_more_before"] is True and s["revision"] == 7
    assert s["current_cwd"] == "/w/app"


def _big_state(messages: int, chars: int) -> SessionState:
    return SessionState(id=SID, provider="claude", messages=[
        Message(id=f"m{i}", seq=i + 1, type="tool", tool_name="Bash",
                tool_output=f"{i}:" + "x" * chars) for i in range(messages)],
        total_message_count=messages)


def _size(frame: dict) -> int:
    return len(json.dumps(frame, separators=(",", ":")))


def test_a_small_snapshot_is_left_whole():
    frame = outbound.session_snapshot(_big_state(5, 1000), "e1")
    assert [len(x["tool_output"]) for x in frame["session"]["messages"]] == [1002] * 5
    assert frame["session"]["has_more_before"] is False


def test_a_big_snapshot_cuts_text_before_it_drops_messages():
    # 200 messages of 16 kB (3 MB as is): cutting each to 1 000 chars fits 256 KiB
    frame = outbound.session_snapshot(_big_state(200, 16_000), "e1", target_bytes=262_144)
    messages = frame["session"]["messages"]
    assert _size(frame) <= 262_144
    assert len(messages) == 200 and frame["session"]["has_more_before"] is False
    assert all(x["tool_output"].endswith(outbound.TRUNCATED) for x in messages)
    assert max(len(x["tool_output"]) for x in messages) < 1_100


def test_a_huge_snapshot_keeps_the_newest_messages_and_says_more_are_before():
    frame = outbound.session_snapshot(_big_state(200, 16_000), "e1", target_bytes=20_000)
    session = frame["session"]
    assert _size(frame) <= 20_000
    seqs = [x["sequence"] for x in session["messages"]]
    assert seqs == list(range(200 - len(seqs) + 1, 201))  # the newest, in order, no gap
    assert len(seqs) >= outbound.SNAPSHOT_MIN_MESSAGES
    assert session["has_more_before"] is True and session["oldest_sequence"] == seqs[0]
    # never fewer than the minimum, even over the target
    tiny = outbound.session_snapshot(_big_state(200, 16_000), "e1", target_bytes=100)
    assert len(tiny["session"]["messages"]) == outbound.SNAPSHOT_MIN_MESSAGES


def test_delta_keeps_the_tri_state_rule_and_splits_tokens():
    state = _state()
    changes = StateChanges(custom_name=None, work_status="working",
                           token_usage=TokenUsage(input_tokens=5, context_window=9))
    frames = outbound.session_event(
        m.SessionDelta(session_id=SID, rev=8, ts=1739180200.0, changes=changes), state)
    delta, tokens = frames
    assert delta["type"] == "session_delta" and delta["revision"] == 8
    assert delta["changes"] == {"custom_name": None, "work_status": "working"}
    assert "summary" not in delta["changes"]  # absent = unchanged
    assert tokens["type"] == "tokens_updated" and tokens["usage"]["input_tokens"] == 5
    assert tokens["snapshot_kind"] == "context_turn"


def test_streamed_text_is_resent_whole():
    state = _state()
    state.messages[0].content = "hi there"  # the mirror after the append
    [frame] = outbound.session_event(m.MessageUpdated(
        session_id=SID, rev=8, message_id=f"{SID}:m1",
        changes=MessageChanges(content_append=" there")), state)
    assert frame["changes"] == {"content": "hi there"}


def test_origin_rules():
    from orbitdock.config import Config
    from orbitdock.ws import access

    local = Config()
    local.ws.port = 4000
    assert access.origin_ok(None, "127.0.0.1:4000", local)  # native apps send none
    assert access.origin_ok("null", "127.0.0.1:4000", local)
    assert access.origin_ok("http://localhost:4000", "localhost:4000", local)
    assert not access.origin_ok("http://evil.example", "127.0.0.1:4000", local)
    # DNS rebinding: the Host matches the Origin, but on loopback only the list counts
    assert not access.origin_ok("http://evil.example:4000", "evil.example:4000", local)
    lan = Config()
    lan.ws.address, lan.ws.port = "0.0.0.0", 4000
    assert access.origin_ok("http://studio.local:4000", "studio.local:4000", lan)
    assert not access.origin_ok("http://evil.example", "studio.local:4000", lan)
    lan.ws.allowed_origins = "https://dock.example.org"
    assert access.origin_ok("https://dock.example.org", "studio.local:4000", lan)


def test_daemon_replies_are_told_in_upstream_terms():
    """orbitdock.ws.answers: the daemon's error codes become upstream's, per request; a
    decision's result names the queue's head; a plain acknowledgement tells nothing."""
    from orbitdock.protocol.errors import ErrorCode
    from orbitdock.protocol.models import ModelOption
    from orbitdock.ws import answers

    send = inbound.SendMessage(session_id=SID, content="hi")
    assert answers.upstream_error(ErrorCode.NOT_FOUND.value, send) == "not_found"
    assert answers.upstream_error(ErrorCode.BAD_FRAME.value, None) == "parse_error"
    assert answers.upstream_error(ErrorCode.INVALID_STATE.value,
                                  inbound.ResumeSession(session_id=SID)) == "already_active"
    assert answers.upstream_error(ErrorCode.BACKEND_ERROR.value,
                                  inbound.InterruptSession(session_id=SID)) == "interrupt_failed"
    assert answers.upstream_error(ErrorCode.BACKEND_ERROR.value, send) == "codex_error"
    assert answers.upstream_error(ErrorCode.BACKEND_ERROR.value, send, "claude") == "claude_error"
    hook = inbound.ClaudeSessionEnd(session_id="c1")
    assert answers.upstream_error(ErrorCode.INVALID_ARGUMENT.value, hook) == "invalid_argument"
    assert answers.upstream_error(ErrorCode.UNAVAILABLE.value, hook) == "claude_error"
    assert answers.upstream_error(ErrorCode.BACKEND_ERROR.value,
                                  inbound.ForkSession(source_session_id=SID)) == "fork_failed"
    assert answers.upstream_error(
        ErrorCode.WRONG_VERB.value,
        inbound.AnswerQuestion(session_id=SID, request_id="r")) == "invalid_answer_payload"

    state = _state()
    approve = inbound.ApproveTool(session_id=SID, request_id="old", decision="approved")
    stale = answers.reply_frame(approve, m.Error(code=ErrorCode.STALE_APPROVAL.value,
                                                 message="gone"), state, "codex")
    assert stale == {"type": "approval_decision_result", "session_id": SID,
                     "request_id": "old", "outcome": "stale",
                     "active_request_id": f"{SID}:a1", "approval_version": 7}
    applied = answers.reply_frame(approve, m.Ack(session_id=SID), None, "codex")
    assert applied["outcome"] == "applied" and applied["active_request_id"] is None
    failed = answers.reply_frame(send, m.Error(code=ErrorCode.BACKEND_ERROR.value,
                                               message="down", session_id=SID),
                                 state, "claude")
    assert failed["type"] == "error" and failed["code"] == "claude_error"
    assert failed["orbitdock_code"] == "backend_error" and failed["session_id"] == SID
    models = answers.reply_frame(inbound.ListModels(), m.ModelsList(
        models=[ModelOption(id="gpt-5.5", model="gpt-5.5")]), None, "codex")
    assert models["type"] == "models_list"
    assert models["models"][0]["id"] == "gpt-5.5"
    assert models["models"][0]["supports_reasoning_summaries"] is False
    assert answers.reply_frame(send, m.Ack(session_id=SID), state, "codex") is None
    assert answers.question_ids(state, f"{SID}:a1") == ["q1"]
    assert answers.question_ids(None, f"{SID}:a1") == []


def test_session_operations_map_to_the_daemons_requests():
    """compact / rollback / undo (upstream's) and archive / unarchive / review (ours) are
    the daemon's own session requests, with their fields."""
    def request(frame):
        return inbound.to_request(inbound.parse(json.dumps(frame)))

    assert request({"type": "compact_context", "session_id": SID}) == \
        m.CompactSession(session_id=SID)
    assert request({"type": "rollback_turns", "session_id": SID, "num_turns": 3}) == \
        m.RollbackSession(session_id=SID, turns=3)
    assert request({"type": "undo_last_turn", "session_id": SID}) == \
        m.RollbackSession(session_id=SID, turns=1)
    assert request({"type": "archive_session", "session_id": SID}) == \
        m.ArchiveSession(session_id=SID)
    assert request({"type": "unarchive_session", "session_id": SID}) == \
        m.UnarchiveSession(session_id=SID)
    assert request({"type": "review_session", "session_id": SID}) == \
        m.ReviewSession(session_id=SID, target="uncommitted")
    assert request({"type": "review_session", "session_id": SID, "target": "commit",
                    "value": "abc123"}) == \
        m.ReviewSession(session_id=SID, target="commit", value="abc123")


@pytest.mark.parametrize("frame,code", [
    ({"type": "rollback_turns", "session_id": SID, "num_turns": 0}, "invalid_argument"),
    ({"type": "rollback_turns", "session_id": SID, "num_turns": -2}, "invalid_argument"),
    ({"type": "rollback_turns", "session_id": SID, "num_turns": "2"}, "parse_error"),
    ({"type": "rollback_turns", "session_id": SID, "num_turns": 1.5}, "parse_error"),
    ({"type": "rollback_turns", "session_id": SID}, "parse_error"),
    ({"type": "compact_context"}, "parse_error"),
    ({"type": "review_session", "session_id": SID, "target": "everything"}, "invalid_argument"),
])
def test_bad_session_operations_are_refused_before_anything_is_sent(frame, code):
    with pytest.raises(inbound.Refused) as info:
        inbound.to_request(inbound.parse(json.dumps(frame)))
    assert info.value.code == code
    if "session_id" in frame:
        assert info.value.session_id == SID


def test_rollback_replies_are_told_as_upstream_tells_them():
    from orbitdock.protocol.errors import ErrorCode
    from orbitdock.ws import answers

    rollback = inbound.RollbackTurns(session_id=SID, num_turns=2)
    undo = inbound.UndoLastTurn(session_id=SID)
    for msg in (rollback, undo):
        assert answers.upstream_error(ErrorCode.BACKEND_ERROR.value, msg) == "rollback_failed"
        assert answers.upstream_error(ErrorCode.INVALID_STATE.value, msg) == "rollback_failed"
        assert answers.upstream_error(ErrorCode.NOT_FOUND.value, msg) == "not_found"
    claude = answers.reply_frame(inbound.CompactContext(session_id=SID), m.Error(
        code=ErrorCode.UNSUPPORTED.value, message="claude sessions do not support compact",
        session_id=SID), None, "claude")
    assert claude["code"] == "unsupported" and claude["session_id"] == SID
    compact = answers.reply_frame(inbound.CompactContext(session_id=SID), m.Error(
        code=ErrorCode.INVALID_STATE.value, message="a turn is running"), None, "codex")
    assert compact["code"] == "codex_error" and compact["orbitdock_code"] == "invalid_state"
    done = answers.reply_frame(rollback, m.Ack(session_id=SID, result={
        "turns_dropped": 2, "messages_dropped": 5, "files_reverted": False}), None, "codex")
    assert done == {"type": "thread_rolled_back", "session_id": SID, "num_turns": 2,
                    "messages_dropped": 5, "files_reverted": False}
    assert answers.reply_frame(inbound.ArchiveSession(session_id=SID), m.Ack(session_id=SID),
                               None, "codex") is None
