"""orbitdock-load in small configurations: every scenario ends with nothing lost or duplicated.

Each test runs the tool as a user would (``python -m orbitdock.load``, its own
daemon on a throw-away home) and asserts its exit code and the JSON results.
The big configurations (50-200 sessions, 20 kill cycles, 100k frames) are
benchmarks recorded in docs/RELIABILITY.md and docs/PERFORMANCE.md, not tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from orbitdock.codex.install import CodexNotFound, find_codex
from orbitdock.load.children import start_child
from orbitdock.load.faults import kill_codex_summary
from orbitdock.load.model import ModelParams, plan_reply, prompt_for, reply_text, tag_for
from orbitdock.load.verify import (DbMessages, Kill, Verdict, check_duplicates, check_seen,
                                  explain_timeouts)

RUN_TIMEOUT_S = 110  # the tool bounds itself; this only catches a hang

try:
    find_codex()
    HAVE_CODEX = True
except CodexNotFound:  # pragma: no cover - bin/setup installs it
    HAVE_CODEX = False


def load(tmp_path, *args: str, expect_rc: int = 0) -> dict:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "orbitdock.load", "--quiet", "--no-floor", "--json", str(out),
         *args], cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == expect_rc, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["lost"] == 0 and res["duplicated"] == 0, (res["examples"], proc.stdout[-2000:])
    assert res["mismatched"] == 0
    return res


# ---------------------------------------------------------------- unit: model and check
def test_model_reply_follows_the_turn():
    p = ModelParams(reply_chars=80)
    tag = tag_for(3, 7, "exec")
    user = {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": prompt_for(tag)}]}
    old = {"type": "message", "role": "user",
           "content": [{"type": "input_text", "text": prompt_for(tag_for(3, 6, "exec"))}]}
    assert plan_reply({"input": [old, user]}, p)[:2] == (tag, "call")
    out = {"type": "function_call_output", "call_id": "c", "output": "ok"}
    got_tag, step, reply = plan_reply({"input": [old, user, {"type": "function_call"}, out]}, p)
    assert (got_tag, step, reply["text"]) == (tag, "final", reply_text(tag, 80))
    assert plan_reply({"input": []}, p)[1] == "untagged"


def test_loss_check_allows_only_uncommitted_at_a_kill():
    def db(*rows):
        out = DbMessages()
        for mid, d in rows:
            sid, _, seq = mid.rpartition(":m")
            out.digests[mid] = d
            out.rows.setdefault(sid, []).append((mid, int(seq), "assistant", "", None, None))
        return out

    final = db(("s:m1", 1), ("s:m2", 9), ("s:m3", 3))
    at_kill = db(("s:m1", 1), ("s:m3", 3), ("t:m1", 5))
    seen = {"seen": {"s:m1": (1, 100.0),  # committed: fine
                     "t:m2": (6, 109.5),  # not committed 0.5 s before the kill: allowed
                     "s:m2": (2, 100.0),  # not committed though s:m3 was: a dropped write
                     "u:m1": (7, 120.0)},  # seen after the last kill, missing at the end
            "conflicts": []}
    v = Verdict()
    check_seen(v, [seen], final, [Kill(110.0, at_kill)], grace_s=1.0)
    assert (v.uncommitted_at_kill, v.uncommitted_late, v.lost) == (1, 0, 2), v.examples


def test_a_reply_the_model_generated_twice_is_not_a_duplicate():
    tag = tag_for(1, 2, "steer")
    working = f"Working on {tag}. filler"
    rows = DbMessages()
    rows.rows["s"] = [(f"s:m{i}", i, "assistant", working, None, None) for i in (1, 2)]
    rows.rows["s"].append(("s:m3", 3, "user", f"{tag} prompt", None, None))
    rows.rows["s"].append(("s:m4", 4, "user", f"{tag} prompt", None, None))
    v = Verdict()
    check_duplicates(v, rows, [], {tag: ["slow", "slow", "steered"]})  # sampled twice
    assert v.duplicated == 1  # only the prompt
    v = Verdict()
    check_duplicates(v, rows, [], {tag: ["slow", "steered"]})
    assert v.duplicated == 2


def db_rows(*texts: tuple[str, str]) -> list[tuple]:
    """(id, seq, type, content, tool_input, turn) rows, one per (type, content)."""
    return [(f"m{i}", i, mtype, content, None, f"t{i}") for i, (mtype, content) in enumerate(texts)]


def test_replies_cut_inside_their_tag_are_not_duplicates():
    # three interrupted turns whose replies all stopped at the same character
    db = DbMessages(rows={"s1": db_rows(*[("assistant", "Done [LOAD:s")] * 3)})
    v = Verdict()
    check_duplicates(v, db, [{"dup_ids": 0}])
    assert v.duplicated == 0


def test_a_whole_tagged_reply_stored_twice_is_a_duplicate():
    text = "Done [LOAD:s0001:t00002:text]. the quick"
    db = DbMessages(rows={"s1": db_rows(("assistant", text), ("assistant", text))})
    v = Verdict()
    check_duplicates(v, db, [{"dup_ids": 0}], {"[LOAD:s0001:t00002:text]": ["final"]})
    assert v.duplicated == 1
    assert "duplicated in s1" in v.examples[0]


def test_passive_prompts_count_only_with_their_whole_tag():
    db = DbMessages(rows={"s1": db_rows(("user", "[PASSIVE:p0001:t00002] keep going"),
                                        ("user", "[PASSIVE:p0001:t00002] keep going"),
                                        ("user", "[PASSIVE:p00"), ("user", "[PASSIVE:p00"))})
    v = Verdict()
    check_duplicates(v, db, [{"dup_ids": 0}])
    assert v.duplicated == 1


def test_timed_out_turns_name_what_the_model_served():
    outcomes = [("s1", "[LOAD:s0001:t00002:exec]", "exec", "timeout", 0.0, 1.0, "t"),
                ("s1", "[LOAD:s0001:t00003:text]", "text", "completed", 1.0, 2.0, "u")]
    notes = explain_timeouts(outcomes, {"[LOAD:s0001:t00002:exec]": ["call"]})
    assert notes == ["[LOAD:s0001:t00002:exec] (s1) timed out; the model served ['call']"]


# ---------------------------------------------------------------- scenarios
def test_a_recovery_cut_by_the_next_kill_is_judged_under_that_kill():
    kills = [(100.0, 1), (110.0, 2)]
    events = [("a", "lost", 100.1), ("a", "cleared", 100.6),  # resumed in 0.6 s
              ("b", "lost", 100.1), ("b", "lost", 110.1),  # still resuming when kill 2 came
              ("b", "cleared", 111.0),  # then resumed 1.0 s after kill 2
              ("c", "lost", 110.2)]  # never cleared
    summary = kill_codex_summary(kills, events, {}, resume_limit_s=2.0)
    assert summary["cut_by_next_kill"] == 1 and summary["not_resumed"] == 1
    assert summary["resume_s"] == [0.6, 1.0] and summary["affected"] == 3


def _report_session(conn) -> None:
    conn.send(os.getsid(0))
    conn.close()


@pytest.mark.parametrize("own_session", [False, True])
def test_helpers_run_in_the_tools_session_unless_separated(own_session):
    proc, conn = start_child(_report_session, own_session=own_session)
    try:
        assert conn.poll(30), "the child sent nothing"
        child_sid = conn.recv()
    finally:
        proc.join(10)
    assert (child_sid != os.getsid(0)) is own_session
    assert (child_sid == proc.pid) is own_session  # setsid: it leads its own session


def test_scripted_fast_mode(tmp_path):
    res = load(tmp_path, "--provider", "scripted", "--sessions", "5", "--duration", "5",
               "--separate-sessions")  # the model and subscribers in sessions of their own
    assert res["turns_completed"] > 20 and res["turns_other"] == 0
    assert res["approval_to_client"]["n"] > 0
    assert res["config"]["separate_sessions"] is True
    assert res["login_shell"] is None  # no codex in this run


@pytest.mark.codex
@pytest.mark.skipif(not HAVE_CODEX, reason="codex binary not installed")
def test_codex_turns_with_approvals_steers_and_interrupts(tmp_path):
    res = load(tmp_path, "--sessions", "5", "--duration", "10", "--subscribers", "2",
               "--steer-every", "4", "--interrupt-every", "5")
    outcomes = res["turn_outcomes"]
    assert outcomes.get("completed", 0) >= 10, outcomes
    assert set(outcomes) <= {"completed", "interrupted"}, outcomes
    assert res["approval_to_client"]["n"] >= 5 and res["gaps"] == 0
    assert res["checked_turns"] == outcomes["completed"]  # every reply matched the model's
    shell = res["login_shell"]  # recorded: codex pays it per command and per resume
    assert shell["shell"] and (shell["seconds"] is not None or shell["error"])


@pytest.mark.codex
@pytest.mark.skipif(not HAVE_CODEX, reason="codex binary not installed")
def test_two_daemon_kill_cycles_lose_nothing(tmp_path):
    res = load(tmp_path, "--sessions", "5", "--duration", "13", "--kill-daemon", "5")
    kd = res["kill_daemon"]
    assert kd["cycles"] == 2 and kd["status_mismatch"] == 0 and kd["message_mismatch"] == 0
    assert res["turns_completed"] > 0


@pytest.mark.codex
@pytest.mark.skipif(not HAVE_CODEX, reason="codex binary not installed")
def test_app_server_kill_resumes_its_sessions_only(tmp_path):
    res = load(tmp_path, "--sessions", "5", "--duration", "10", "--kill-codex", "5",
               "--threads-per-process", "3")
    kc = res["kill_codex"]
    assert kc["kills"] >= 1 and kc["affected"] >= 1 and kc["not_resumed"] == 0
    assert kc["other_gaps"] == 0
    account = kc["daemon_account"]  # the daemon's own count agrees
    assert 1 <= account["processes_lost"] <= kc["kills"] and account["resumed"] >= 1
    assert account["failed"] == 0 and account["resuming"] == 0


def test_slow_subscriber_resyncs_by_snapshot(tmp_path):
    # A small per-subscriber queue so the stopped client really overflows it.
    res = load(tmp_path, "--provider", "scripted", "--sessions", "5", "--duration", "8",
               "--slow-subscriber", "--slow-pause", "4", "--chunk", "2",
               "--daemon-env", "ORBITDOCK_GATEWAY__SUBSCRIBER_HWM=300")
    slow = res["slow"]
    assert slow["slow_synced"] and slow["slow_gaps"] >= 1 and slow["slow_resyncs"] >= 1


def test_fuzzed_frames_all_get_coded_errors(tmp_path):
    res = load(tmp_path, "--provider", "scripted", "--sessions", "3", "--duration", "4",
               "--fuzz", "1000")
    fz = res["fuzz"]
    assert fz["sent"] == 1000 and fz["errors"] == 1000 and fz["unanswered"] == 0
    assert {"bad_frame", "invalid_field", "unknown_type", "not_found"} <= set(fz["codes"])
    assert res["daemon_log"]["crashes"] == 0


def test_passive_rollouts_imported_exactly_once_across_kill9(tmp_path):
    res = load(tmp_path, "--provider", "scripted", "--sessions", "2", "--passive", "3",
               "--passive-interval", "0.3", "--duration", "10", "--kill-daemon", "4")
    assert res["passive_check"]["turns"] >= 30 and res["passive_check"]["missing_sessions"] == 0
    assert res["kill_daemon"]["cycles"] == 2
