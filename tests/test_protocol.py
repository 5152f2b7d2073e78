"""Wire protocol: every message round-trips; every kind of bad frame gets its own code."""

from __future__ import annotations

import msgspec
import pytest
from msgspec import UNSET

from orbitdock import PROTOCOL_VERSION
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import (
    ApprovalRequest,
    Message,
    MessageChanges,
    Question,
    SessionState,
    SessionSummary,
    StateChanges,
    TokenUsage,
)
from orbitdock.protocol.topics import LIST, session_id_of, session_topic, split_frame

SID = "od-1234"
STATE = SessionState(
    id=SID, provider="codex", messages=[Message(id=f"{SID}:m1", seq=1, type="user", content="hi")],
    approvals=[ApprovalRequest(id=f"{SID}:a1", session_id=SID, type="question",
                               questions=[Question(id="q", question="Which?")])],
    token_usage=TokenUsage(input_tokens=5), current_plan=[{"step": "a", "status": "pending"}])

EXAMPLES = [
    m.GetStatus(id="1"), m.SubscribeList(id="2"), m.SubscribeSession(id="3", session_id=SID),
    m.GetMessages(session_id=SID, before_seq=10, limit=5),
    m.ListSessions(status="ended", since=1.5, provider="codex", project="/w", search="fix",
                   limit=20, before_activity=9.5, before_id=SID),
    m.CreateSession(provider="codex", cwd="/w", model="gpt-5.5", approval_policy="untrusted",
                    sandbox_mode="workspace-write", script=[{"text": "x"}]),
    m.SendMessage(session_id=SID, content="hello"), m.SteerTurn(session_id=SID, content="s"),
    m.ApproveTool(approval_id=f"{SID}:a1", decision="accept"),
    m.AnswerQuestion(approval_id=f"{SID}:a1", answers={"q": ["Blue"]}),
    m.InterruptSession(session_id=SID), m.EndSession(session_id=SID),
    m.ResumeSession(session_id=SID), m.RenameSession(session_id=SID, name=None),
    m.UpdateSessionConfig(session_id=SID, approval_policy="never"), m.ListModels(),
    m.GetCodexStatus(), m.ClaudeHook(event="Stop", payload="{}", event_id="1-2", spool=True),
    m.RolloutsStatus(), m.ImportRollouts(since=12.5),
    m.BackupDatabase(path="/tmp/b.db"), m.CheckDatabase(), m.SetPageLimit(pages=10),
    m.CodexStatus(report={"processes": [{"proc_id": 1, "state": "spare"}], "login_shell": None}),
    m.RolloutsReport(report={"files_followed": 2, "files": [{"path": "/x", "lag": 0}]}),
    m.Ack(id="1", session_id=SID, result={"turn_id": "t"}),
    m.Error(id="1", code="not_found", message="no", session_id=None),
    m.ServerStatus(epoch="e", version="0", pid=1, uptime_s=1.0, actors=3, sessions=1,
                   sessions_active=1, sessions_needing_attention=0, subscribers=0,
                   frames_rejected=0),
    m.SessionsList(epoch="e", revision=3, sessions=[SessionSummary(id=SID, provider="codex")]),
    m.SessionSnapshot(epoch="e", session=STATE),
    m.SessionsPage(sessions=[SessionSummary(id=SID, provider="codex")], has_more=True),
    m.MessagesPage(session_id=SID, messages=STATE.messages, has_more_before=False),
    m.ApprovalDecisionResult(session_id=SID, approval_id=f"{SID}:a1", outcome="applied"),
    m.ModelsList(models=[]),
    m.SessionDelta(session_id=SID, rev=2, ts=1.5, changes=StateChanges(custom_name=None)),
    m.MessageAppended(session_id=SID, rev=3, message=STATE.messages[0]),
    m.MessageUpdated(session_id=SID, rev=4, message_id=f"{SID}:m1",
                     changes=MessageChanges(content_append="!")),
    m.ApprovalRequested(session_id=SID, rev=5, request=STATE.approvals[0]),
    m.ApprovalResolved(session_id=SID, rev=6, approval_id=f"{SID}:a1", decision="accept"),
    m.SessionEnded(session_id=SID, rev=7, reason="user"),
    m.SessionReset(session_id=SID, rev=7, reason="restart"),
    m.SessionTail(session_id=SID, rev=9),
    m.SessionCreated(epoch="e", lrev=1, session=SessionSummary(id=SID, provider="codex")),
    m.Heartbeat(epoch="e", seq=1, ts=2.0), m.Welcome(topic="s|x|"),
]



def _built_from_class(cls: type) -> m.Wire | None:
    """A request whose one required field is its session id is its own example: a new
    session command (e.g. a forwarded one) needs no hand-written line here."""
    required = [f.name for f in msgspec.structs.fields(cls) if f.required]
    return cls(session_id=SID) if required == ["session_id"] else None


EXAMPLES += [e for cls in m.REQUEST_TYPES if cls not in {type(x) for x in EXAMPLES}
             and (e := _built_from_class(cls)) is not None]


def test_every_message_type_has_an_example():
    assert {type(e) for e in EXAMPLES} == set(m.ALL_TYPES)


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip(msg):
    frame = codec.encode(msg)
    env = msgspec.msgpack.decode(frame)
    assert env["v"] == PROTOCOL_VERSION and env["type"] == msg.__struct_config__.tag
    decoded = codec.decode_any(frame)
    assert decoded == msg
    if msg.kind == "request":
        assert codec.decode_request(frame, 1 << 20) == msg
    else:
        assert codec.decode_inbound(frame) == msg


def test_delta_fields_are_tri_state():
    frame = codec.encode(m.SessionDelta(session_id=SID, rev=1,
                                        changes=StateChanges(custom_name=None, model="m")))
    raw = msgspec.msgpack.decode(frame)["changes"]
    assert raw == {"custom_name": None, "model": "m"}  # absent = unchanged, nil = cleared
    changes = codec.decode_inbound(frame).changes
    assert changes.custom_name is None and changes.model == "m" and changes.summary is UNSET


def enc(obj) -> bytes:
    return msgspec.msgpack.encode(obj)


@pytest.mark.parametrize("frame,code", [
    (b"\xc1", ErrorCode.BAD_FRAME),
    (b"", ErrorCode.BAD_FRAME),
    (enc([1, 2]), ErrorCode.BAD_FRAME),
    (enc({"v": 1}), ErrorCode.BAD_FRAME),
    (enc({"v": 2, "type": "get_status"}), ErrorCode.UNSUPPORTED_VERSION),
    (enc({"type": "get_status"}), ErrorCode.UNSUPPORTED_VERSION),
    (enc({"v": 1, "type": "fly_to_moon"}), ErrorCode.UNKNOWN_TYPE),
    (enc({"v": 1, "type": "session_delta"}), ErrorCode.UNKNOWN_TYPE),  # events are not requests
    (enc({"v": 1, "type": "subscribe_session"}), ErrorCode.INVALID_FIELD),
    (enc({"v": 1, "type": "subscribe_session", "session_id": 5}), ErrorCode.INVALID_FIELD),
    (enc({"v": 1, "type": "subscribe_session", "session_id": "a/b"}), ErrorCode.INVALID_FIELD),
    (enc({"v": 1, "type": "send_message", "session_id": "a", "content": ""}),
     ErrorCode.INVALID_FIELD),
    (enc({"v": 1, "type": "get_status", "x": "y" * 200}), ErrorCode.TOO_LARGE),
])
def test_decode_errors_are_coded(frame, code):
    with pytest.raises(ProtocolError) as info:
        codec.decode_request(frame, 128)
    assert info.value.code == code


def test_unknown_fields_are_ignored_for_forward_compatibility():
    frame = enc({"v": 1, "type": "get_status", "id": "9", "future": [1, 2]})
    assert codec.decode_request(frame, 1024) == m.GetStatus(id="9")


def test_error_reply_echoes_request_id():
    frame = enc({"v": 1, "type": "nope", "id": "abc"})
    with pytest.raises(ProtocolError) as info:
        codec.decode_request(frame, 1024)
    reply = codec.decode_inbound(codec.error_reply(info.value, codec.peek_id(frame)))
    assert reply == m.Error(id="abc", code="unknown_type", message=info.value.message)


def test_topics_are_delimited():
    # A subscriber to session "ab" must not receive session "abc" (prefix matching).
    assert not session_topic("abc").startswith(session_topic("ab"))
    frame = session_topic("od-1") + b"\x81\xa1a\x01"
    assert split_frame(frame) == (b"s|od-1|", b"\x81\xa1a\x01")
    assert split_frame(LIST + b"\x80") == (LIST, b"\x80")
    assert session_id_of(b"s|od-1|") == "od-1" and session_id_of(LIST) is None


@pytest.mark.parametrize("field, value", [("status", "paused"), ("work_status", "idle"),
                                          ("attention_reason", "awaitingNothing")])
def test_a_status_outside_its_type_does_not_decode(field, value):
    frame = msgspec.msgpack.encode({"id": SID, "provider": "codex", field: value})
    with pytest.raises(msgspec.ValidationError, match=field):
        msgspec.msgpack.decode(frame, type=SessionSummary)
    delta = msgspec.msgpack.encode({field: value})
    with pytest.raises(msgspec.ValidationError, match=field):
        msgspec.msgpack.decode(delta, type=StateChanges)


def test_every_work_status_asks_a_known_attention():
    from orbitdock.protocol.models import ATTENTION_REASONS, WORK_STATUSES, attention_for
    assert {attention_for(w) for w in WORK_STATUSES} <= set(ATTENTION_REASONS)
    assert SessionSummary(id=SID, provider="codex").attention_reason == attention_for("waiting")
