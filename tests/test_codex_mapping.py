"""app-server JSON -> BackendEvents, on literal messages recorded from codex 0.169.0.

Fast and binary-free: the dicts below are trimmed copies of what the pinned
codex sent against the sim (ids shortened); the few marked "schema" follow the
generated JSON schema for paths the sim cannot reach (MCP, permissions).
"""

from __future__ import annotations

import logging

from orbitdock.codex import jsonrpc as rpc
from orbitdock.codex.mapping import (ThreadMapper, build_reply, model_options, patch_diff,
                                     thread_started)
from orbitdock.codex.prompts import OpenTurn, PromptLedger
from orbitdock.connectors import events as ev

T, U = "01a212cf-d5ea", "01a212cf-d6ea"


def one(mapper: ThreadMapper, method: str, params: dict):
    (event,) = mapper.notification(method, params)
    return event


def test_turn_lifecycle_and_failure_text():
    m = ThreadMapper()
    started = {"threadId": T, "turn": {"id": U, "items": [], "status": "inProgress", "error": None}}
    assert one(m, "turn/started", started) == ev.TurnStarted(turn_id=U)
    assert m.turn_id == U
    failed = {"threadId": T, "turn": {"id": U, "items": [], "status": "failed", "error": {
        "message": "We\u2019re currently experiencing high demand, which may cause temporary "
                   "errors.",
        "codexErrorInfo": "internalServerError", "additionalDetails": None}, "durationMs": 30}}
    done = one(m, "turn/completed", failed)
    assert (done.turn_id, done.status) == (U, "failed") and "high demand" in done.error
    assert m.turn_id is None
    error = one(m, "error", {"error": {"message": "boom", "codexErrorInfo": "internalServerError"},
                             "willRetry": False, "threadId": T, "turnId": U})
    assert error == ev.BackendError(message="boom")


def test_messages_reasoning_and_user_text():
    m = ThreadMapper()
    delta = {"threadId": T, "turnId": U, "itemId": "msg_1", "delta": "Hel"}
    assert one(m, "item/agentMessage/delta", delta) == ev.AgentMessageDelta("msg_1", "Hel", U)
    agent = {"item": {"type": "agentMessage", "id": "msg_1", "text": "Hello", "phase": None},
             "threadId": T, "turnId": U}
    assert one(m, "item/completed", agent) == ev.AgentMessage("msg_1", "Hello", U)
    user = {"item": {"type": "userMessage", "id": "u1", "clientId": None, "content": [
        {"type": "text", "text": "reason", "text_elements": []}]}, "threadId": T, "turnId": U}
    assert one(m, "item/completed", user) == ev.UserMessage(text="reason", item_id="u1", turn_id=U)
    assert m.notification("item/reasoning/summaryPartAdded",
                          {"threadId": T, "turnId": U, "itemId": "rs_1", "summaryIndex": 0}) == []
    assert one(m, "item/reasoning/summaryTextDelta", {
        "threadId": T, "turnId": U, "itemId": "rs_1", "delta": "Think one", "summaryIndex": 0}
    ) == ev.ReasoningDelta("rs_1", "Think one", U)
    assert one(m, "item/reasoning/summaryPartAdded", {
        "threadId": T, "turnId": U, "itemId": "rs_1", "summaryIndex": 1}).delta == "\n\n"
    reasoning = {"item": {"type": "reasoning", "id": "rs_1", "summary": ["Think one", "Two"],
                          "content": []}, "threadId": T, "turnId": U}
    assert one(m, "item/completed", reasoning) == ev.Reasoning("rs_1", "Think one\n\nTwo", U)
    # item/started for messages is not a tool and yields nothing
    assert m.notification("item/started", {"item": {"type": "agentMessage", "id": "m", "text": ""},
                                           "threadId": T, "turnId": U}) == []


def test_command_execution_started_output_completed():
    m = ThreadMapper()
    item = {"type": "commandExecution", "id": "call_16", "command":
            "/bin/bash -c 'for i in 1 2 3; do echo line$i; sleep 0.2; done; exit 3'",
            "cwd": "/ws", "processId": "11638", "source": "unifiedExecStartup",
            "status": "inProgress", "aggregatedOutput": None, "exitCode": None, "durationMs": None}
    started = one(m, "item/started", {"item": item, "threadId": T, "turnId": U})
    assert (started.tool_name, started.item_id, started.turn_id) == ("Shell", "call_16", U)
    assert started.tool_input.startswith("/bin/bash -c")
    assert one(m, "item/commandExecution/outputDelta", {
        "threadId": T, "turnId": U, "itemId": "call_16", "delta": "line2\n"}
    ) == ev.ToolOutputDelta("call_16", "line2\n")
    done = one(m, "item/completed", {"item": {**item, "status": "failed", "exitCode": 3,
                                              "aggregatedOutput": "line1\nline2\nline3\n",
                                              "durationMs": 480}, "threadId": T, "turnId": U})
    assert (done.status, done.is_error, done.duration_ms) == ("failed", True, 480)
    assert done.output == "line1\nline2\nline3\n" and done.tool_name == "Shell"
    declined = one(m, "item/completed", {"item": {**item, "status": "declined", "exitCode": None},
                                         "threadId": T, "turnId": U})
    assert (declined.status, declined.is_error) == ("declined", False)
    ok = one(m, "item/completed", {"item": {**item, "status": "completed", "exitCode": 0},
                                   "threadId": T, "turnId": U})
    assert (ok.status, ok.is_error) == ("completed", False)


def test_file_change_feeds_the_patch_approval_diff():
    m = ThreadMapper()
    change = {"path": "/ws/hello.py", "kind": {"type": "add"}, "diff": "print('hi')\n"}
    item = {"type": "fileChange", "id": "call_p", "changes": [change], "status": "inProgress"}
    started = one(m, "item/started", {"item": item, "threadId": T, "turnId": U})
    assert started.tool_name == "Edit" and "/ws/hello.py" in started.tool_input
    request = m.server_request(1, "item/fileChange/requestApproval", {
        "threadId": T, "turnId": U, "itemId": "call_p", "reason": None, "grantRoot": None,
        "startedAtMs": 1})
    assert (request.key, request.type, request.file_path) == (1, "patch", "/ws/hello.py")
    assert request.diff == "--- /dev/null\n+++ /ws/hello.py\n+print('hi')\n"
    done = one(m, "item/completed", {"item": {**item, "status": "completed"},
                                     "threadId": T, "turnId": U})
    assert (done.status, done.output) == ("completed", "Applied successfully")
    update = {"path": "a.py", "kind": {"type": "update", "move_path": None},
              "diff": "@@ -1 +1 @@\n-a\n+b\n"}
    assert patch_diff([update]) == "--- a.py\n+++ a.py\n@@ -1 +1 @@\n-a\n+b\n"


def test_mcp_tool_call_schema():
    m = ThreadMapper()
    item = {"type": "mcpToolCall", "id": "call_mcp", "server": "echo", "tool": "echo",
            "arguments": {"text": "ping"}, "status": "inProgress", "result": None, "error": None}
    started = one(m, "item/started", {"item": item, "threadId": T, "turnId": U})
    assert (started.tool_name, started.tool_input) == ("MCP:echo/echo", '{"text":"ping"}')
    result = {"content": [{"type": "text", "text": "pong"}]}
    done = one(m, "item/completed", {"item": {**item, "status": "completed", "durationMs": 3,
                                              "result": result}, "threadId": T, "turnId": U})
    assert "pong" in done.output and not done.is_error
    failed = one(m, "item/completed", {"item": {**item, "status": "failed",
                                                "error": {"message": "server gone"}},
                                       "threadId": T, "turnId": U})
    assert (failed.output, failed.is_error) == ("server gone", True)


def test_plan_diff_tokens_rate_limits_name_resolved():
    m = ThreadMapper()
    plan = one(m, "turn/plan/updated", {
        "threadId": T, "turnId": U, "explanation": "Plan A",
        "plan": [{"step": "one", "status": "inProgress"}, {"step": "two", "status": "pending"}]})
    assert plan.explanation == "Plan A" and plan.plan[0] == {"step": "one", "status": "inProgress"}
    assert one(m, "turn/diff/updated", {"threadId": T, "turnId": U, "diff": "diff --git a b"}
               ) == ev.DiffUpdated("diff --git a b", U)
    usage = one(m, "thread/tokenUsage/updated", {"threadId": T, "turnId": U, "tokenUsage": {
        "total": {"totalTokens": 300, "inputTokens": 240, "cachedInputTokens": 40,
                  "cacheWriteInputTokens": 0, "outputTokens": 60, "reasoningOutputTokens": 5},
        "last": {"totalTokens": 150, "inputTokens": 120, "cachedInputTokens": 20,
                 "outputTokens": 30, "reasoningOutputTokens": 0}, "modelContextWindow": 258400}})
    assert usage == ev.TokenUsageUpdated(
        input_tokens=240, output_tokens=60, cached_tokens=40, reasoning_tokens=5,
        total_tokens=300, context_window=258400)
    limits = {"limitId": "codex", "primary": None, "secondary": None, "credits": None}
    assert one(m, "account/rateLimits/updated", {"rateLimits": limits}).payload == limits
    assert one(m, "thread/name/updated", {"threadId": T, "threadName": "Recorded"}
               ) == ev.NameUpdated("Recorded")
    resolved = {"threadId": T, "requestId": 0}
    assert one(m, "serverRequest/resolved", resolved) == ev.ApprovalCleared(0)


def test_unknown_notifications_are_ignored(caplog):
    caplog.set_level(logging.DEBUG, logger="orbitdock.codex.mapping")
    m = ThreadMapper()
    for method in ("thread/status/changed", "thread/readState/changed", "configWarning",
                   "some/future/thing"):
        assert m.notification(method, {"threadId": T}) == []
    assert "some/future/thing" in caplog.text


def test_mcp_startup_status_and_list():
    from orbitdock.codex.mapping import mcp_servers

    got = ThreadMapper().notification("mcpServer/startupStatus/updated", {
        "threadId": T, "name": "echo", "status": "failed", "error": "boom"})
    assert got == [ev.McpServersUpdated(servers=[{"name": "echo", "state": "failed",
                                                  "error": "boom"}])]
    listed = {"data": [{"name": "echo", "tools": {"echo": {}, "ping": {}}, "toolsError": None},
                       {"name": "bad", "tools": {}, "toolsError": "no such file"}]}
    assert mcp_servers(listed, {"echo": "ready"}) == [
        {"name": "echo", "state": "ready", "error": None, "tools": ["echo", "ping"]},
        {"name": "bad", "state": "failed", "error": "no such file", "tools": []}]


def test_server_requests_become_approvals():
    m = ThreadMapper()
    exec_params = {"threadId": T, "turnId": U, "itemId": "call_5", "kind": "command",
                   "command": "/bin/bash -c 'echo hi > made.txt'", "cwd": "/ws", "reason": None,
                   "proposedExecpolicyAmendment": ["/bin/bash", "-c", "echo hi > made.txt"],
                   "availableDecisions": ["accept", {"acceptWithExecpolicyAmendment": {
                       "execpolicy_amendment": ["/bin/bash"]}}, "cancel"]}
    req = m.server_request(0, "item/commandExecution/requestApproval", exec_params)
    assert (req.key, req.type, req.cwd, req.turn_id) == (0, "exec", "/ws", U)
    assert req.command == "/bin/bash -c 'echo hi > made.txt'"
    assert req.available_decisions == ["accept", "acceptWithExecpolicyAmendment", "cancel"]
    question = {"threadId": T, "turnId": U, "itemId": "call_11", "isBlocking": False, "questions": [
        {"id": "color", "header": "Color", "question": "Which color?", "isOther": True,
         "options": [{"label": "Blue", "description": "cool"}]}]}
    req = m.server_request(2, "item/tool/requestUserInput", question)
    assert req.type == "question" and req.questions[0]["id"] == "color"
    perms = {"threadId": T, "turnId": U, "itemId": "i", "cwd": "/ws", "reason": "need net",
             "permissions": {"network": {"enabled": True}}, "startedAtMs": 1}  # schema
    req = m.server_request(3, "item/permissions/requestApproval", perms)
    assert (req.type, req.reason, req.payload["permissions"]) == (
        "permissions", "need net", {"network": {"enabled": True}})
    elicit = {"threadId": T, "turnId": U, "serverName": "echo", "mode": "form",
              "message": "Allow echo?", "requestedSchema": {"type": "object", "properties": {}}}
    req = m.server_request(4, "mcpServer/elicitation/request", elicit)
    assert (req.type, req.reason) == ("elicitation", "Allow echo?")
    req = m.server_request(5, "item/tool/call", {"threadId": T, "tool": "x", "arguments": {}})
    assert (req.type, req.method, req.payload["tool"]) == ("generic", "item/tool/call", "x")


def test_replies_are_shaped_per_request_kind():
    exec_params = {"availableDecisions": ["accept", {"acceptWithExecpolicyAmendment": {
        "execpolicy_amendment": ["ls"]}}, "cancel"]}
    method = "item/commandExecution/requestApproval"
    assert build_reply(method, exec_params, "accept", None) == {"decision": "accept"}
    assert build_reply(method, exec_params, "accept_for_session", None) == {
        "decision": "acceptForSession"}
    assert build_reply(method, exec_params, "decline", None) == {"decision": "decline"}
    assert build_reply(method, exec_params, "cancel", None) == {"decision": "cancel"}
    assert build_reply(method, exec_params, "acceptWithExecpolicyAmendment", None) == {
        "decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["ls"]}}}
    assert build_reply("item/fileChange/requestApproval", {}, "accept_for_session", None) == {
        "decision": "acceptForSession"}
    assert build_reply("item/tool/requestUserInput", {}, None, {"color": ["Blue"]}) == {
        "answers": {"color": {"answers": ["Blue"]}}}
    assert build_reply("item/tool/requestUserInput", {}, "answered", {"c": ["Red"]}) == {
        "answers": {"c": {"answers": ["Red"]}}}  # what the session actor sends for a question
    assert build_reply("item/tool/requestUserInput", {}, "cancel", {"c": ["x"]}) == {"answers": {}}
    perms = {"permissions": {"network": {"enabled": True}}}
    assert build_reply("item/permissions/requestApproval", perms, "accept_for_session", None) == {
        "permissions": {"network": {"enabled": True}}, "scope": "session"}
    assert build_reply("item/permissions/requestApproval", perms, "decline", None) == {
        "permissions": {}}
    assert build_reply("mcpServer/elicitation/request", {}, "accept", {"name": ["x"]}) == {
        "action": "accept", "content": {"name": "x"}}
    assert build_reply("mcpServer/elicitation/request", {}, "answered", {"n": ["1", "2"]}) == {
        "action": "accept", "content": {"n": ["1", "2"]}}
    assert build_reply("mcpServer/elicitation/request", {}, "decline", None) == {
        "action": "decline", "content": None}
    assert build_reply("execCommandApproval", {}, "accept", None) == {"decision": "approved"}
    assert build_reply("something/new", {}, "accept", None) == {"decision": "accept"}


def test_thread_started_and_models():
    result = {"thread": {"id": T, "path": "/home/sessions/rollout-x.jsonl", "name": None,
                         "createdAt": 1795611940, "gitInfo": None, "cwd": "/ws"},
              "model": "gpt-5.5", "modelProvider": "mock", "cwd": "/ws",
              "approvalPolicy": "untrusted",
              "sandbox": {"type": "workspaceWrite", "writableRoots": [], "networkAccess": False}}
    started = thread_started(result, fallback_cwd="/other")
    assert started == ev.ThreadStarted(thread_id=T, model="gpt-5.5", cwd="/ws",
                                       transcript_path="/home/sessions/rollout-x.jsonl",
                                       approval_policy="untrusted", sandbox_mode="workspace-write",
                                       started_at=1795611940)
    models = model_options([
        {"id": "gpt-5.5", "model": "gpt-5.5", "displayName": "GPT-5.5", "description": "d",
         "hidden": False, "isDefault": True, "defaultReasoningEffort": "medium",
         "supportedReasoningEfforts": [{"reasoningEffort": "low", "description": ""},
                                       {"reasoningEffort": "high", "description": ""}]},
        {"id": "secret", "model": "secret", "hidden": True}])
    assert [(o.id, o.is_default, o.supported_reasoning_efforts) for o in models] == [
        ("gpt-5.5", True, ["low", "high"])]


def test_jsonrpc_classification_and_garbage(caplog):
    assert rpc.parse_line(b'{"id":1,"result":{"ok":true}}') == rpc.Response(1, {"ok": True})
    err = rpc.parse_line(b'{"id":2,"error":{"code":-32600,"message":"no active turn to steer"}}')
    assert err.error == rpc.RpcError(-32600, "no active turn to steer")
    assert rpc.parse_line(b'{"method":"turn/started","params":{"threadId":"t"},"emittedAtMs":1}'
                          ) == rpc.Notification("turn/started", {"threadId": "t"})
    assert rpc.parse_line(b'{"method":"item/tool/requestUserInput","id":0,"params":{}}'
                          ) == rpc.ServerRequest(0, "item/tool/requestUserInput", {})
    caplog.set_level(logging.WARNING)
    junk = b"thread 'main' panicked at " + b"x" * 1000
    for line in (junk, b"[1,2]", b'{"id":3}', b'{"method":"m","params":[1]}', b'{"trunc'):
        assert rpc.parse_line(line) is None
    assert "panicked" in caplog.text and "(+" in caplog.text  # raw text logged, truncated
    assert rpc.parse_line(b"   ") is None
    buf = rpc.LineBuffer()
    assert buf.feed(b'{"a":') == [] and buf.feed(b'1}\n{"b"') == [b'{"a":1}']
    assert buf.feed(b":2}\n\n") == [b'{"b":2}', b""] and buf.flush() == b""
    assert rpc.encode_request(4, "turn/start", {"threadId": "t"}) == (
        b'{"id":4,"method":"turn/start","params":{"threadId":"t"}}\n')


# ---------------------------------------------------------------- PromptLedger (problem 3)
def test_ledger_acknowledged_prompt_never_started_is_reported_on_loss():
    ledger = PromptLedger()
    ledger.acked(ledger.sent("hello"), U)
    assert ledger.lost() == [OpenTurn(U, started=False, prompts=["hello"])]
    assert ledger.lost() == []  # reported once


def test_ledger_started_but_not_echoed_keeps_the_prompt():
    ledger = PromptLedger()
    ledger.acked(ledger.sent("hello"), U)
    ledger.started(U)
    assert ledger.lost() == [OpenTurn(U, started=True, prompts=["hello"])]


def test_ledger_echo_in_either_order_is_never_duplicated():
    after = PromptLedger()  # the usual order: answer, turn/started, echo
    after.acked(after.sent("hello"), U)
    after.started(U)
    after.echoed(U, "hello")
    assert after.lost() == [OpenTurn(U, started=True)]
    before = PromptLedger()  # echo read before the answer to turn/start
    pending = before.sent("hello")
    before.started(U)
    before.echoed(U, "hello")
    before.acked(pending, U)
    assert before.lost() == [OpenTurn(U, started=True)]
    reworded = PromptLedger()  # an echo under other text still accounts for the prompt
    pending = reworded.sent("hello")
    reworded.echoed(U, "hello (normalised)")
    reworded.acked(pending, U)
    assert reworded.lost() == [OpenTurn(U)]


def test_ledger_steers_completion_and_refusals():
    ledger = PromptLedger()
    ledger.acked(ledger.sent("start"), U)
    ledger.started(U)
    ledger.echoed(U, "start")
    ledger.acked(ledger.sent("steer it"), U)  # acknowledged steer, echo still to come
    assert ledger.lost() == [OpenTurn(U, started=True, prompts=["steer it"])]
    ledger.dropped(ledger.sent("refused"))  # codex answered with an error: no prompt taken
    late = ledger.sent("fast")
    ledger.started("U2")
    ledger.echoed("U2", "fast")
    ledger.completed("U2")
    ledger.acked(late, "U2")  # read after its turn completed: must not reopen it
    assert ledger.lost() == []
