"""`--json` output: every field, defaults included, wherever the flag is placed."""

from __future__ import annotations

import json

from cli_env import create_scripted, ctl, ctl_json
from orbitdock.protocol.models import SessionState, SessionSummary


def test_json_carries_every_field_even_when_it_equals_the_default(daemon):
    home = daemon.home
    sid = create_scripted(daemon)  # a fresh session: active, waiting, awaitingReply (defaults)
    [row] = ctl_json(home, "session", "list")
    assert set(SessionSummary.__struct_fields__) <= set(row)
    assert (row["status"], row["work_status"], row["attention_reason"]) == (
        "active", "waiting", "awaitingReply")
    assert row["pending_approvals"] == 0 and row["token_usage"]["input_tokens"] == 0

    state = ctl_json(home, "session", "show", sid)
    assert set(SessionState.__struct_fields__) <= set(state)
    assert state["approvals"] == [] and state["current_turn_id"] is None

    created = json.loads(ctl(home, "--json", "session", "create", "--provider", "scripted").stdout)
    assert created["status"] == "active" and created["work_status"] == "waiting"
