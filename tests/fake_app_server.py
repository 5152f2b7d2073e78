"""Fake ``codex app-server`` scripts for the pool tests: small Python programs a test can
hold, gate or refuse resumes with, and kill at an exact point."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

from actors.codex_pool import Describe
from codex_session import WAIT_S


def fake_codex(base_dir: Path, server_source: str) -> Path:
    """An executable that runs ``server_source`` (a fake app-server) with its arguments."""
    name = uuid.uuid4().hex[:6]
    script = base_dir / f"fake_server_{name}.py"
    script.write_text(server_source)
    binary = base_dir / f"fake-codex-{name}"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    binary.chmod(0o755)
    return binary



def describe_when(pool, loads: list[int]) -> list[dict[str, Any]]:
    """The pool's processes once their loads are ``loads`` (bounded wait)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        procs = pool.ask(Describe(), timeout=5)
        if [p["load"] for p in procs] == loads or time.monotonic() > deadline:
            assert [p["load"] for p in procs] == loads
            return procs
        time.sleep(0.02)



FAKE_RECOVERY_SERVER = r"""
import itertools, json, os, sys, threading, time
barrier = int(os.environ["FAKE_RESUME_BARRIER"])  # resumes held until this many arrived
gate = os.environ.get("FAKE_RESUME_GATE", "")  # and, if set, until this file exists
gates = os.environ.get("FAKE_RESUME_GATES", "")  # or each until <gates>/<thread id> exists
ids = itertools.count(1)
held = []
lock = threading.Lock()
def send(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
def answer_held():
    with lock:
        ready = len(held) >= barrier and (not gate or os.path.exists(gate))
        batch = held[:] if ready else []
        if ready:
            held.clear()
    for m in batch:
        send({"id": m["id"], "result": {"thread": {"id": m["params"]["threadId"]}}})
def gatekeeper():  # answers what the closed gate held once it opens
    while True:
        time.sleep(0.02)
        answer_held()
if gate:
    threading.Thread(target=gatekeeper, daemon=True).start()
def answer_when_open(m):
    while not os.path.exists(os.path.join(gates, m["params"]["threadId"])):
        time.sleep(0.02)
    send({"id": m["id"], "result": {"thread": {"id": m["params"]["threadId"]}}})
def item(tid, turn, text):
    return {"threadId": tid, "turnId": turn, "item": {
        "type": "userMessage", "id": f"item-{next(ids)}",
        "content": [{"type": "text", "text": text, "text_elements": []}]}}
for line in sys.stdin:
    msg = json.loads(line)
    method, params = msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        send({"id": msg["id"], "result": {"userAgent": "fake/0.169.0 (test)"}})
    elif method == "thread/start":
        send({"id": msg["id"], "result": {"thread": {"id": f"T{os.getpid()}-{next(ids)}",
                                                      "path": None}, "model": "m"}})
    elif method == "turn/start":
        # The prompt says what codex manages to send before it dies (the test kills it).
        tid, text = params["threadId"], params["input"][0]["text"]
        turn = f"U-{next(ids)}"
        if "ECHO-FIRST" in text:
            send({"method": "turn/started", "params": {"threadId": tid, "turn": {"id": turn}}})
            send({"method": "item/completed", "params": item(tid, turn, text)})
        send({"id": msg["id"], "result": {"turn": {"id": turn, "status": "inProgress"}}})
        if "STARTED" in text or "ECHOED" in text:
            send({"method": "turn/started", "params": {"threadId": tid, "turn": {"id": turn}}})
        if "ECHOED" in text:
            send({"method": "item/completed", "params": item(tid, turn, text)})
    elif method == "turn/steer":
        send({"id": msg["id"], "result": {"turnId": params["expectedTurnId"]}})
    elif method == "thread/resume":
        if os.path.exists(os.environ.get("FAKE_HOLD_RESUMES", "")):
            continue  # never answered: the test kills this process mid-resume
        if gates:
            threading.Thread(target=answer_when_open, args=(msg,), daemon=True).start()
            continue
        with lock:
            held.append(msg)
        answer_held()  # never answers if the client waited for each answer
"""
