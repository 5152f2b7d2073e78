"""RolloutParser over real codex 0.169 rollouts (tests/fixtures/rollouts) and the older vocabulary.

The 0.169 fixtures were written by the real codex 0.169.0 (``codex exec --json`` and
``codex app-server``) against a scripted model, then had paths and long texts trimmed.
``legacy_vocab.jsonl`` is hand-written in the pre-0.169 vocabulary upstream maps.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson
import pytest

from orbitdock.rollout.git import GitResolver
from orbitdock.rollout.naming import is_injected_context, name_from_first_prompt
from orbitdock.rollout.parser import RolloutParser

FIXTURES = Path(__file__).parent / "fixtures" / "rollouts"

_KEEP = {
    "ThreadStarted": ("thread_id", "model", "cwd", "git_branch"),
    "TurnStarted": ("turn_id",), "TurnCompleted": ("status", "error"),
    "UserMessage": ("text",), "AgentMessage": ("text",), "Reasoning": ("text",),
    "ToolStarted": ("item_id", "tool_name", "tool_input"),
    "ToolCompleted": ("item_id", "tool_name", "output", "is_error", "status"),
    "ApprovalRequest": ("type", "key"), "ApprovalCleared": ("key",),
    "TokenUsageUpdated": ("total_tokens",),
    "ConfigApplied": ("approval_policy", "sandbox_mode", "model"),
    "ProjectInfo": ("cwd", "model"), "PlanUpdated": ("explanation",), "NameUpdated": ("name",),
    "RateLimitsUpdated": (), "BackendError": ("message",),
}


def summary(ev) -> tuple:
    name = type(ev).__name__
    return (name,) + tuple(getattr(ev, k) for k in _KEEP[name])


def parse(name: str, start: int = 0):
    """Parse a fixture line by line (as the watcher does); returns (parser, events)."""
    path = FIXTURES / name
    parser, events, end = RolloutParser(str(path)), [], 0
    data = path.read_bytes()
    for raw in data.splitlines(keepends=True):
        end += len(raw)
        if end <= start:
            if end == len(data.splitlines(keepends=True)[0]):
                parser.prime(raw.rstrip(b"\n"))
            continue
        events.extend(parser.feed(raw.rstrip(b"\n"), end))
    return parser, events


def test_text_turn():
    parser, events = parse("text_turn.jsonl")
    assert [summary(e) for e in events] == [
        ("ThreadStarted", "01a212c9-8339-7d13-a385-a834fc49dc32", "gpt-5.5", "/home/dev/proj",
         None),
        ("TurnStarted", "01a212c9-835e-7f31-a4ba-5a71fc41fb2a"),
        ("ConfigApplied", "never", "workspace-write", "gpt-5.5"),
        ("UserMessage", "Say hello"),
        ("AgentMessage", "Hello from the mock"),
        ("TokenUsageUpdated", 150),
        ("TurnCompleted", "completed", None),
    ]
    assert (parser.originator, parser.source, parser.cli_version) == \
        ("codex_exec", "exec", "0.169.0")
    assert events[0].started_at == pytest.approx(1795611525.956)
    assert parser.malformed == 0 and not parser.unknown


def test_exec_patch_question_turn():
    _, events = parse("exec_patch_question.jsonl")
    assert [summary(e) for e in events] == [
        ("ThreadStarted", "01a212c9-9ba1-7b71-b548-9a68d68a9904", "gpt-5.5", "/home/dev/proj",
         None),
        ("TurnStarted", "01a212c9-9bb3-77a0-b548-022d72954c6a"),
        ("ConfigApplied", "never", "workspace-write", "gpt-5.5"),
        ("UserMessage", "Run a command and write a file"),
        ("ToolStarted", "call_exec1", "Shell", "echo hi; exit 3"),
        ("ToolCompleted", "call_exec1", "Shell", "hi\n", True, "failed"),
        ("TokenUsageUpdated", 150),
        ("ToolStarted", "call_patch1", "Edit",
         "*** Begin Patch\n*** Add File: hello.py\n+print('hi')\n*** End Patch\n"),
        ("ToolCompleted", "call_patch1", "Edit",
         "Success. Updated the following files:\nA hello.py\n", False, "completed"),
        ("TokenUsageUpdated", 300),
        ("ApprovalRequest", "question", ("rollout", "call_rui")),
        ("ApprovalCleared", ("rollout", "call_rui")),
        ("TokenUsageUpdated", 450),
        ("AgentMessage", "All done"),
        ("TokenUsageUpdated", 600),
        ("TurnCompleted", "completed", None),
    ]
    question = next(e for e in events if type(e).__name__ == "ApprovalRequest")
    assert question.questions[0]["id"] == "color"
    assert question.questions[0]["question"] == "Which color?"


def test_app_server_session_question_interrupt_and_failure():
    parser, events = parse("app_server_turns.jsonl")
    got = [summary(e) for e in events]
    assert got[17:] == [
        ("ApprovalRequest", "question", ("rollout", "call_rui")),
        ("ApprovalCleared", ("rollout", "call_rui")),  # from the retained_context answer
        ("TokenUsageUpdated", 600),
        ("AgentMessage", "Blue it is"),
        ("TokenUsageUpdated", 750),
        ("TurnCompleted", "completed", None),
        ("TurnStarted", "01a212ca-fdd3-75b1-b6c0-1bc59d4043d8"),
        ("UserMessage", "slow one"),  # the injected <turn_aborted> notice is not a message
        ("AgentMessage", "slow"),
        ("TurnCompleted", "interrupted", None),
        ("TurnStarted", "01a212cb-01c9-72a0-a230-e504007cca28"),
        ("UserMessage", "this one fails"),
        ("TurnCompleted", "failed", "stream disconnected before completion: boom"),
    ]
    assert parser.originator == "orbitdock"  # app-server threads carry the client's name


def test_mcp_tool_search_plan_and_a_call_after_speaking():
    _, events = parse("mcp_plan_search.jsonl")
    assert [summary(e) for e in events][4:] == [
        ("ToolStarted", "call_ts0", "ToolSearch", '{"query":"echo pong","limit":4}'),
        ("ToolCompleted", "call_ts0", "ToolSearch", "mcp__echo", False, "completed"),
        ("TokenUsageUpdated", 150),
        ("ToolStarted", "call_mcp", "MCP:echo/echo", '{"text": "ping"}'),
        ("ToolCompleted", "call_mcp", "MCP:echo/echo", "pong: ping", False, "completed"),
        ("TokenUsageUpdated", 300),
        ("PlanUpdated", "Mock plan"),
        ("AgentMessage", "Let me plan."),
        ("TokenUsageUpdated", 450),
        # The model spoke, then called a tool in the same turn: the gate reopens.
        ("ToolStarted", "call_ws", "WebSearch", '{"query": "x"}'),
        ("ToolCompleted", "call_ws", "WebSearch", "unsupported call: web_search", False,
         "completed"),
        ("TokenUsageUpdated", 600),
        ("AgentMessage", "finished"),
        ("TokenUsageUpdated", 750),
        ("TurnCompleted", "completed", None),
    ]


def test_older_vocabulary():
    parser, events = parse("legacy_vocab.jsonl")
    turn = "rollout-5973b6c0-94b8-487b-a530-2aeb6098ae0e-turn-b1236"
    assert [summary(e) for e in events] == [
        ("ThreadStarted", "5973b6c0-94b8-487b-a530-2aeb6098ae0e", None, "/home/dev/legacy",
         "feature/login"),
        ("ProjectInfo", "/home/dev/legacy", "gpt-5-codex"),
        ("ConfigApplied", "on-request", "workspace-write", "gpt-5-codex"),
        ("TurnStarted", turn),
        ("UserMessage", "Fix   the\nlogin   bug in auth.py"),
        ("Reasoning", "**Looking at auth.py**"),
        ("ToolStarted", "call_a1", "Shell", "cat auth.py"),  # function_call + exec_command_begin
        ("ToolCompleted", "call_a1", "Shell", "def login(): pass\n", False, "completed"),
        ("ApprovalRequest", "exec", ("rollout", "call_a2")),
        ("ApprovalCleared", ("rollout", "call_a2")),
        ("ToolStarted", "call_a2", "Shell", "rm -rf build"),
        ("ToolCompleted", "call_a2", "Shell", "rm: cannot remove 'build': Permission denied\n",
         True, "failed"),
        ("ToolStarted", "call_a3", "Edit",
         "*** Begin Patch\n*** Update File: auth.py\n@@\n-def login(): pass\n"
         "+def login(): return True\n*** End Patch\n"),
        ("ToolCompleted", "call_a3", "Edit", "Success. Updated the following files:\nM auth.py\n",
         False, "completed"),
        ("ToolStarted", "call_a4", "MCP:docs/search", '{"q":"login"}'),
        ("ToolCompleted", "call_a4", "MCP:docs/search", "login docs", False, "completed"),
        ("ApprovalRequest", "question", ("rollout", "call_a5")),
        ("AgentMessage", "Fixed the login bug."),
        # the trailing exec_command_end after the agent message is gated
        ("TokenUsageUpdated", 5300),
        ("RateLimitsUpdated",),
        ("TurnCompleted", "completed", None),
        ("NameUpdated", "Login fix"),
        ("TurnStarted", "rollout-5973b6c0-94b8-487b-a530-2aeb6098ae0e-turn-b6764"),
        ("UserMessage", "now stop"),
        ("TurnCompleted", "interrupted", None),
    ]
    assert parser.gated == 1
    assert parser.first_prompt_name == "Fix the login bug in auth.py"
    assert parser.codex_name == "Login fix"


@pytest.mark.parametrize("name", ["text_turn.jsonl", "exec_patch_question.jsonl",
                                  "app_server_turns.jsonl", "mcp_plan_search.jsonl"])
def test_every_prompt_and_reply_appears_exactly_once(name):
    raw = [orjson.loads(line) for line in (FIXTURES / name).read_bytes().splitlines()]
    completed = [r["payload"]["item"] for r in raw if r["payload"].get("type") == "item_completed"]
    _, events = parse(name)
    users = [e for e in events if type(e).__name__ == "UserMessage"]
    agents = [e for e in events if type(e).__name__ == "AgentMessage"]
    assert [e.item_id for e in users] == [i["id"] for i in completed if i["type"] == "UserMessage"]
    assert [e.item_id for e in agents] == \
        [i["id"] for i in completed if i["type"] == "AgentMessage"]
    assert not any(is_injected_context(e.text) for e in users)


def test_unknown_types_counted_and_malformed_lines_logged_and_skipped(caplog):
    caplog.set_level(logging.WARNING, logger="orbitdock.rollout.parser")
    parser, events = parse("malformed.jsonl")
    assert [summary(e) for e in events] == [
        ("ThreadStarted", "0b0b0b0b-0000-7000-8000-000000000001", None, "/home/dev/proj", None),
        ("TurnStarted", "t1"),
        ("UserMessage", "still parsed after garbage"),
        ("TurnCompleted", "failed", "model overloaded"),
    ]
    assert dict(parser.unknown) == {"future_line_type": 1, "event_msg:brand_new_event": 1,
                                    "item:HologramCall": 1}
    assert parser.malformed == 5 and parser.lines == 12
    assert all("malformed.jsonl" in r.getMessage() and "byte" in r.getMessage()
               for r in caplog.records)


def test_identities_are_stable_on_reparse_and_on_resume():
    def ids(events):
        return [getattr(e, "item_id", None) or getattr(e, "turn_id", None) for e in events]

    _, first = parse("legacy_vocab.jsonl")
    _, second = parse("legacy_vocab.jsonl")
    assert ids(first) == ids(second)
    # Resume after line 10, as the watcher does after a restart: same names for the rest.
    data = (FIXTURES / "legacy_vocab.jsonl").read_bytes()
    cut = sum(len(x) for x in data.splitlines(keepends=True)[:10])
    parser, resumed = parse("legacy_vocab.jsonl", start=cut)
    assert parser.thread_id == "5973b6c0-94b8-487b-a530-2aeb6098ae0e"  # primed from line 1
    tail = [i for i in ids(resumed) if i and i.startswith("rollout-")]
    assert tail and set(tail) <= set(ids(first))


def _feed(parser, *payloads):
    out = []
    for n, (ltype, payload) in enumerate(payloads):
        out += parser.feed(orjson.dumps({"type": ltype, "payload": payload}), 1000 + n)
    return [summary(e) for e in out]


def test_saw_agent_message_gate():
    p = RolloutParser("gate.jsonl")
    _feed(p, ("session_meta", {"id": "t", "cwd": "/w"}), ("event_msg", {"type": "task_started",
                                                                          "turn_id": "u1"}))
    call = {"type": "function_call", "name": "exec_command", "arguments": '{"cmd":"ls"}',
            "call_id": "c1"}
    assert _feed(p, ("response_item", call)) == [("ToolStarted", "c1", "Shell", "ls")]
    # An agent message closes the gate, but the open call may still complete.
    assert _feed(p, ("event_msg", {"type": "agent_message", "message": "done"}),
                 ("response_item", {"type": "function_call_output", "call_id": "c1",
                                    "output": "Exit code: 0\nOutput:\nx"}))[1] == \
        ("ToolCompleted", "c1", "Shell", "Exit code: 0\nOutput:\nx", False, "completed")
    # Trailing begin/end events of unknown calls are dropped...
    assert _feed(p, ("event_msg", {"type": "exec_command_begin", "call_id": "c2",
                                   "command": ["ls"]})) == []
    # ...and after the turn ended, even a model call is.
    _feed(p, ("event_msg", {"type": "task_complete", "turn_id": "u1"}))
    assert _feed(p, ("response_item", {**call, "call_id": "c3"})) == []
    assert p.gated == 2
    # A new turn reopens it.
    got = _feed(p, ("event_msg", {"type": "task_started", "turn_id": "u2"}),
                ("response_item", {**call, "call_id": "c4"}))
    assert got[1] == ("ToolStarted", "c4", "Shell", "ls")


def test_sniffed_skip_types_are_not_decoded():
    p = RolloutParser("s.jsonl")
    assert p.feed(b'{"timestamp":"x","ordinal":4,"type":"world_state","payload":{"huge":', 10) == []
    assert p.malformed == 0 and p.skipped == 1


# ---------------------------------------------------------------- naming and git helpers
def test_name_from_first_prompt():
    assert name_from_first_prompt("  fix\n\tthe   bug ") == "fix the bug"
    long = "word " * 40
    name = name_from_first_prompt(long)
    assert name is not None and len(name) == 73 and name.endswith("…")
    assert name_from_first_prompt("<environment_context>\n<cwd>/x</cwd>") is None
    assert name_from_first_prompt("The user interrupted the previous turn on purpose.") is None
    assert name_from_first_prompt("   ") is None
    assert is_injected_context("# AGENTS.md instructions for /repo\n...")
    assert not is_injected_context("please read <skill> docs")


def test_git_branch_root_and_worktree(tmp_path):
    main = tmp_path / "repo"
    (main / ".git" / "worktrees" / "wt").mkdir(parents=True)
    (main / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (main / "src" / "deep").mkdir(parents=True)
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / ".git").write_text(f"gitdir: {main}/.git/worktrees/wt\n")
    (main / ".git" / "worktrees" / "wt" / "HEAD").write_text("ref: refs/heads/feature/x\n")
    (main / ".git" / "worktrees" / "wt" / "commondir").write_text("../..\n")
    git = GitResolver()
    info = git.resolve(str(main / "src" / "deep"))
    assert (info.branch, info.repository_root, info.is_worktree) == ("main", str(main), False)
    linked = git.resolve(str(wt))
    assert (linked.branch, linked.repository_root, linked.toplevel, linked.is_worktree) == \
        ("feature/x", str(main), str(wt), True)
    assert linked.project_name == "repo"
    head = main / ".git" / "HEAD"
    head.write_text("0123456789abcdef\n")
    os.utime(head, ns=(1, 1))  # a different mtime: the cached branch is re-read
    detached = git.resolve(str(main))
    assert (detached.branch, detached.head) == (None, "0123456789abcdef")
    assert git.resolve(str(tmp_path)) is None
