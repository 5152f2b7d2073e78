"""Crashed app-servers end to end: a real codex app-server killed under the real daemon,
its sessions resumed and the others untouched, and a prompt acknowledged just before the
death kept exactly once. Shared fixtures in ``codex_daemon_env.py``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from codex_daemon_env import (  # noqa: F401  (fixtures are found by name)
    CODEX_MARKS,
    TURN_TIMEOUT_S,
    app_servers,
    codex_daemon,
    create,
    state,
    user_texts,
    wait_status,
    wait_turn_done,
)
from conftest import wait_until
from test_cli import ctl
from orbitdock.codex.install import find_codex
from orbitdock.protocol import messages as m

pytestmark = CODEX_MARKS


def host_pid(d, sid: str) -> int:
    """The app-server process hosting ``sid``, from the daemon's own account."""
    report = json.loads(ctl(d.home, "--json", "codex").stdout)
    (pid,) = [p["pid"] for p in report["processes"] if sid in p["sessions"]]
    return pid


def test_app_server_killed_sessions_resume_and_others_stay_isolated(codex_daemon, sim):
    """4 sessions on the killed process (4 per process) come back with their context;
    the 5th, on the other process, sees nothing. Prints the time from kill to resumed."""
    d = codex_daemon(ORBITDOCK_CODEX__THREADS_PER_PROCESS="4")
    client = d.client(timeout=10)
    victims = [create(client, codex_daemon.workspace, policy="never") for _ in range(4)]
    (victim,) = {host_pid(d, sid) for sid in victims}  # the four share one app-server
    bystander = create(client, codex_daemon.workspace, policy="never")  # on a second one
    ids = [*victims, bystander]
    for i, sid in enumerate(ids):
        sim.append([{"match": f"MARK{i}", "text": f"reply {i}"}])
        client.request(m.SendMessage(session_id=sid, content=f"MARK{i}"))
    for i, sid in enumerate(ids):
        assert wait_status(client, sid, "reply").messages[-1].content == f"reply {i}"
    # The victim and the bystander's process; the pool's idle spare may have joined them
    # (creates are answered once codex has each thread, which takes longer than its delay).
    assert victim in app_servers(d.proc.pid) and 2 <= len(app_servers(d.proc.pid)) <= 3
    revs = {sid: state(client, sid).revision for sid in ids}
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    recovered: dict[str, float] = {}

    def all_recovered() -> bool:
        for sid in victims:
            st = state(client, sid)
            if sid not in recovered and st.revision > revs[sid] and st.last_error is None:
                recovered[sid] = time.monotonic() - killed_at
        return len(recovered) == len(victims)
    assert wait_until(all_recovered, 20), (recovered, [state(client, s).last_error for s in ids])
    print(f"\napp-server kill -> resumed, per session: "
          f"{sorted(round(t, 2) for t in recovered.values())} s")
    st = state(client, bystander)  # untouched (later turns' rate limits reach it, so look now)
    assert st.revision == revs[bystander] and st.last_error is None
    report = json.loads(ctl(d.home, "--json", "codex").stdout)  # the daemon's own account
    assert {k: report["recoveries"][k] for k in ("processes_lost", "resumed", "failed")} == \
        {"processes_lost": 1, "resumed": 4, "failed": 0}
    assert report["recoveries"]["slowest_s"] <= max(recovered.values())  # seen after it
    hosted = {p["pid"]: set(p["sessions"]) for p in report["processes"]}
    assert victim not in hosted and set(ids) == set().union(*hosted.values())
    text = ctl(d.home, "codex", "--sessions").stdout
    assert "1 app-server(s) lost; sessions resumed 4, failed 0" in text and victims[0] in text
    for i, sid in enumerate(victims):
        sim.append([{"match": f"AGAIN{i}", "text": f"back again {i}"}])
        before = state(client, sid).turn_count
        client.request(m.SendMessage(session_id=sid, content=f"AGAIN{i}"))
        st = wait_turn_done(client, sid, before)
        assert st.messages[-1].content == f"back again {i}"
        assert f"MARK{i}" in str(sim.requests()[-1]["input"])  # resumed with its context
        assert [x.content for x in st.messages if x.type == "user"] == [f"MARK{i}", f"AGAIN{i}"]
    st = state(client, bystander)
    assert st.last_error is None and not [x for x in st.messages if x.is_error]
    assert [x.content for x in st.messages if x.type == "assistant"] == ["reply 4"]


# A stand-in for the app-server binary: runs the real one and passes its stdout through,
# except that once armed (GATE_ARM_FILE exists when a turn/start goes in; one turn, one
# process) it lets only the lines up to GATE_POINT out; codex itself runs on unaware. Killed
# then, it is an app-server that died right after answering turn/start ("response"),
# after turn/started ("started") or after echoing the prompt ("echoed").
GATE = r"""
import json, os, subprocess, sys, threading
real = os.environ["GATE_REAL_CODEX"]
if sys.argv[1:2] != ["app-server"]:
    os.execv(real, [real, *sys.argv[1:]])  # --version and friends
arm, point = os.environ["GATE_ARM_FILE"], os.environ["GATE_POINT"]
child = subprocess.Popen([real, *sys.argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
armed = {}
def pump():
    for line in sys.stdin.buffer:
        msg = json.loads(line) if line.strip() else {}
        if msg.get("method") == "turn/start" and not armed:
            try:
                os.rename(arm, arm + ".fired")
                armed["id"] = msg["id"]
            except OSError:
                pass
        child.stdin.write(line)
        child.stdin.flush()
    child.stdin.close()
threading.Thread(target=pump, daemon=True).start()
def passes(msg):
    if "method" not in msg:
        return msg.get("id") == armed["id"]
    if point in ("started", "echoed") and msg["method"] == "turn/started":
        return True
    item = (msg.get("params") or {}).get("item") or {}
    echo = msg["method"] == "item/completed" and item.get("type") == "userMessage"
    return point == "echoed" and echo
for line in child.stdout:
    if armed and not passes(json.loads(line)):
        continue
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
"""


@pytest.mark.parametrize("point", ["response", "started", "echoed"])
def test_acknowledged_prompt_survives_app_server_death(codex_daemon, sim, tmp_path, point):
    """Problem 3: killed right after turn/start returned, the prompt is kept exactly once.

    Whether codex's turn/started and its echo of the prompt got out before the death or
    not, the turn ends failed (not stuck "working"), the prompt is in the session's
    messages once, and after the resume (codex's resumed thread holds the prompt) the
    next turn does not add it again.
    """
    gate = tmp_path / "codex-gate"
    gate.write_text(f"#!{sys.executable}\n{GATE}")
    gate.chmod(0o755)
    arm = tmp_path / "gate-armed"
    d = codex_daemon(ORBITDOCK_CODEX__BINARY=str(gate), GATE_REAL_CODEX=str(find_codex()),
                     GATE_ARM_FILE=str(arm), GATE_POINT=point)
    client = d.client(timeout=10)
    sid = create(client, codex_daemon.workspace, policy="never")
    sim.set_script([{"match": "WARMUP", "text": "warm"},
                    {"match": "GATED", "text": "nobody reads this", "hold": 60}])
    client.request(m.SendMessage(session_id=sid, content="WARMUP"))
    wait_status(client, sid, "reply")
    gated = host_pid(d, sid)  # (the pool's idle spare may be running the gate too)
    arm.touch()
    reply = client.request(m.SendMessage(session_id=sid, content="GATED prompt"))
    turn_id = reply.result["turn_id"]  # acknowledged: the client holds this turn id
    if point == "started":
        wait_status(client, sid, "working")
    elif point == "echoed":
        assert wait_until(lambda: "GATED prompt" in user_texts(state(client, sid)),
                          TURN_TIMEOUT_S)
    assert wait_until(lambda: sim.state()["held"] >= 1, TURN_TIMEOUT_S)  # codex is mid-turn
    revision = state(client, sid).revision
    os.kill(gated, signal.SIGKILL)
    assert wait_until(lambda: (st := state(client, sid)).revision > revision
                      and st.last_error is None, TURN_TIMEOUT_S), state(client, sid).last_error
    st = state(client, sid)
    assert user_texts(st) == ["WARMUP", "GATED prompt"]
    assert st.work_status == "waiting" and st.current_turn_id is None and st.turn_count == 2
    (prompt,) = [x for x in st.messages if x.content == "GATED prompt"]
    assert prompt.turn_id == turn_id  # the acknowledged turn is the one that was closed
    assert any(x.is_error and "SIGKILL" in x.content for x in st.messages)
    sim.append([{"match": "AFTER", "text": "after the crash"}])
    client.request(m.SendMessage(session_id=sid, content="AFTER"))
    st = wait_turn_done(client, sid, 2)
    assert st.messages[-1].content == "after the crash"
    assert "GATED prompt" in str(sim.requests()[-1]["input"])  # codex's resumed thread has it
    assert user_texts(st) == ["WARMUP", "GATED prompt", "AFTER"]
