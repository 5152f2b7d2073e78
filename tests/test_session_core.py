"""The session state machine: statuses, the approval FIFO, naming, and mirror equality."""

from __future__ import annotations

import random

import msgspec
import pytest

from orbitdock.client import snapshot_bytes
from orbitdock.connectors import events as be
from orbitdock.protocol import codec
from orbitdock.protocol.models import SessionState
from orbitdock.session.display import display_name_of, prompt_name
from orbitdock.session.core import SessionCore
from orbitdock.store import commands as cmd
from orbitdock.session.reducer import apply_event


def new_core(**fields) -> SessionCore:
    clock = iter(range(1, 1_000_000)).__next__
    return SessionCore(SessionState(id="od-t", provider="scripted", **fields),
                       clock=lambda: float(clock()))


def feed(core, *events):
    for e in events:
        core.handle(e)
    return core.drain()


def test_turn_lifecycle_statuses():
    core = new_core()
    feed(core, be.TurnStarted("u1"))
    assert core.state.work_status == "working" and core.state.attention_reason == "none"
    feed(core, be.ApprovalRequest(key=1, type="exec", command="ls"))
    assert core.state.work_status == "permission"
    assert core.state.attention_reason == "awaitingPermission"
    feed(core, be.ApprovalRequest(key=2, type="question", questions=[{"id": "q", "question": "?"}]))
    assert core.state.work_status == "permission"  # the head of the FIFO decides
    feed(core, be.ApprovalCleared(1))
    assert core.state.work_status == "question"
    assert core.state.attention_reason == "awaitingQuestion"
    feed(core, be.ApprovalCleared(2))
    assert core.state.work_status == "working"
    feed(core, be.TurnCompleted("u1", "completed"))
    assert core.state.work_status == "reply" and core.state.current_turn_id is None
    feed(core, be.TurnStarted("u2"), be.TurnCompleted("u2", "interrupted"))
    assert core.state.work_status == "waiting"
    feed(core, be.TurnStarted("u3"), be.TurnCompleted("u3", "failed", "boom"))
    assert core.state.work_status == "waiting" and core.state.last_error == "boom"
    assert core.state.messages[-1].type == "error"


def test_approval_ids_decisions_and_stale():
    core = new_core()
    feed(core, be.TurnStarted("u"), be.ApprovalRequest(key="k1", type="exec"))
    approval_id = core.state.approvals[0].id
    assert approval_id == "od-t:a1"
    assert core.begin_decision(approval_id, "accept") == "k1"
    with pytest.raises(KeyError):
        core.begin_decision(approval_id, "decline")  # already being decided
    core.finish_decision(approval_id, accepted=False)  # backend refused: still pending
    assert core.approval(approval_id) is not None
    core.begin_decision(approval_id, "decline")
    events, commands = feed(core, be.ApprovalCleared("k1"))
    assert [e.decision for e in events if type(e).__name__ == "ApprovalResolved"] == ["decline"]
    assert any(isinstance(c, cmd.DecideApproval) and c.decision == "decline" for c in commands)
    with pytest.raises(KeyError):
        core.begin_decision(approval_id, "accept")


def test_turn_end_and_backend_loss_never_leave_hanging_state():
    core = new_core()
    feed(core, be.TurnStarted("u"), be.AgentMessageDelta("i", "par"),
         be.ApprovalRequest(key=9, type="patch"))
    feed(core, be.BackendLost("app-server exited"))
    st = core.state
    assert st.current_turn_id is None and not st.approvals
    assert st.work_status == "waiting" and "backend lost" in st.last_error
    assert not any(msg.is_in_progress for msg in st.messages)


def test_restart_reset_settles_a_running_turn():
    core = new_core()
    feed(core, be.TurnStarted("u"), be.ApprovalRequest(key=1, type="exec"))
    core.reset_after_restart("orbitdockd restarted")
    assert core.state.work_status == "waiting" and not core.state.approvals
    assert core.state.last_error == "orbitdockd restarted"


def test_streaming_and_completion_make_one_message():
    core = new_core()
    feed(core, be.TurnStarted("u"), be.AgentMessageDelta("i", "Hel"),
         be.AgentMessageDelta("i", "lo"))
    assert core.state.messages[-1].content == "Hello" and core.state.messages[-1].is_in_progress
    feed(core, be.AgentMessage("i", "Hello!"))
    assert [x.content for x in core.state.messages] == ["Hello!"]
    assert not core.state.messages[-1].is_in_progress
    feed(core, be.ToolStarted("c", "Shell", "ls"), be.ToolOutputDelta("c", "a\n"),
         be.ToolOutputDelta("c", "b\n"), be.ToolCompleted("c", "a\nb\n", duration_ms=5))
    tool = core.state.messages[-1]
    assert tool.tool_output == "a\nb\n" and tool.duration_ms == 5 and core.state.tool_count == 1


def test_naming_precedence():
    core = new_core()
    feed(core, be.ThreadStarted("t", cwd="/home/me/proj"))
    assert core.state.display_name == "proj"
    feed(core, be.UserMessage("  fix   the\nflaky test " + "x" * 100))
    assert core.state.display_name == prompt_name("fix the flaky test " + "x" * 100)
    assert core.state.display_name.endswith("…") and len(core.state.display_name) == 73
    core.state.summary = "Summary"
    assert display_name_of(core.state) == "Summary"
    core.rename("Mine")
    assert core.state.display_name == "Mine"
    core.rename(None)
    assert core.state.display_name == "Summary"


def test_ended_session_reactivates_on_new_activity():
    core = new_core()
    core.end("timeout")
    core.drain()
    assert core.state.status == "ended"
    feed(core, be.UserMessage("hello again"))
    assert core.state.status == "active" and core.state.ended_at is None


def random_events(rng: random.Random, n: int):
    keys = iter(range(10_000))
    open_keys: list[int] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.1:
            yield be.TurnStarted(f"u{i}")
        elif roll < 0.4:
            yield be.AgentMessageDelta(f"i{i // 7}", rng.choice("abc") * rng.randint(1, 5))
        elif roll < 0.45:
            yield be.AgentMessage(f"i{i // 7}", "done")
        elif roll < 0.55:
            k = next(keys)
            open_keys.append(k)
            yield be.ApprovalRequest(key=k, type=rng.choice(["exec", "patch", "question"]))
        elif roll < 0.62 and open_keys:
            yield be.ApprovalCleared(open_keys.pop(rng.randrange(len(open_keys))))
        elif roll < 0.7:
            yield be.ToolStarted(f"c{i}", "Shell", "ls")
        elif roll < 0.75:
            yield be.TokenUsageUpdated(input_tokens=i, output_tokens=i // 2)
        elif roll < 0.8:
            yield be.PlanUpdated([{"step": f"s{i}", "status": "pending"}])
        elif roll < 0.85:
            yield be.UserMessage(f"prompt {i}")
        elif roll < 0.9:
            yield be.TurnCompleted(None, rng.choice(["completed", "interrupted", "failed"]), "e")
        else:
            yield be.NameUpdated(rng.choice([None, "n1", "n2"]))


@pytest.mark.parametrize("seed", range(5))
def test_client_mirror_equals_server_state(seed):
    """Replaying the encoded events onto the snapshot gives exactly the server state."""
    rng = random.Random(seed)
    core = new_core(message_limit=50)
    snapshot = msgspec.msgpack.decode(msgspec.msgpack.encode(core.state), type=SessionState)
    for event in random_events(rng, 2000):
        core.handle(event)
        for wire in core.drain()[0]:
            apply_event(snapshot, codec.decode_inbound(codec.encode(wire)))
    assert snapshot_bytes(snapshot) == snapshot_bytes(core.state)
    assert len(core.state.messages) <= 50
    assert core.state.revision > 1000


def test_tool_output_keeps_a_bounded_tail_and_mirrors_agree():
    core = SessionCore(SessionState(id="od-t", provider="scripted"), tool_output_max_chars=1000)
    mirror = msgspec.msgpack.decode(msgspec.msgpack.encode(core.state), type=SessionState)

    def play(*events):
        for event in events:
            core.handle(event)
            for wire in core.drain()[0]:
                apply_event(mirror, codec.decode_inbound(codec.encode(wire)))

    play(be.TurnStarted("u1"), be.ToolStarted("c", "Shell", "make"))
    lines = [f"line {n:05d}\n" for n in range(2000)]  # 22 000 characters
    play(*(be.ToolOutputDelta("c", line) for line in lines))
    tool = core.state.messages[-1]
    assert len(tool.tool_output) <= 1000 + 60
    assert tool.tool_output.endswith("line 01999\n") and "earlier characters not kept" in tool.tool_output
    assert snapshot_bytes(mirror) == snapshot_bytes(core.state)
    play(be.ToolCompleted("c", "".join(lines), duration_ms=5))
    tool = core.state.messages[-1]
    assert tool.tool_output.startswith("[… 21000 earlier characters not kept …]\n")
    assert tool.tool_output.endswith("".join(lines)[-1000:]) and not tool.is_in_progress
    assert snapshot_bytes(mirror) == snapshot_bytes(core.state)


def test_session_row_writes_only_what_changed():
    core = new_core()
    feed(core, be.TurnStarted("u1"))
    writes = [c for c in feed(core, be.AgentMessageDelta("i", "He"))[1]
              if isinstance(c, cmd.SaveSession)]
    assert writes and set(writes[-1].fields) <= {"revision", "last_activity_at",
                                                  "total_message_count"}
    fresh = SessionCore(core.state)  # a restored or restarted actor writes the whole row
    fresh.handle(be.AgentMessageDelta("i", "llo"))
    full = [c for c in fresh.drain()[1] if isinstance(c, cmd.SaveSession)][-1]
    assert {"provider", "status", "work_status", "token_usage"} <= set(full.fields)
