"""Fork and rollback of a direct Codex session: request -> new snapshot at the client.

For each conversation size (messages), a session gets that many messages from the scripted
model (one turn whose reply has many message items, then a short last turn), then:

- fork: ``fork_session`` sent -> its reply (the fork's snapshot, after codex made the
  thread and the parent's rows were copied) received by the client;
- rollback: ``rollback_session`` of the last turn sent -> a subscriber's mirror holds the
  fresh snapshot (session_reset, then the snapshot without the dropped messages).

Both run against the real ``codex app-server`` (pinned 0.169.0) and the scripted model on
127.0.0.1, with a throw-away daemon and CODEX_HOME (outside /tmp, as codex requires).

    .venv/bin/python bench/bench_thread_ops.py --messages 10,100,500 --runs 3 [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from common import (  # noqa: E402
    REPO, bench_daemon, DaemonProcess, command_line, exit_on_sigterm, fmt_ms, machine_line, median,
)

from orbitdock.client import Subscription
from orbitdock.codex.home import write_sim_codex_home
from orbitdock.protocol import messages as m
from orbitdock.sim.server import SimServer

TURN_TIMEOUT_S = 120.0


def _wait(predicate, timeout: float, poll=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        poll(0.005) if poll else time.sleep(0.01)
    raise TimeoutError("condition not met in time")


def _state(client, sid):
    return client.request(m.SubscribeSession(session_id=sid)).session


def build_session(client, sim: SimServer, workspace: Path, messages: int) -> str:
    """A session holding ``messages`` messages, the last turn a short one (2 messages)."""
    sid = client.request(m.CreateSession(
        provider="codex", cwd=str(workspace), model="gpt-5.5", approval_policy="never",
        sandbox_mode="workspace-write"), timeout=TURN_TIMEOUT_S).session.id
    big = messages - 2  # user prompt + (big - 1) assistant items
    turns = [("fill", [{"text": f"item {i}"} for i in range(big - 1)]), ("last", [{"text": "ok"}])]
    for prompt, output in turns:
        sim.set_script([{"output": output}])
        before = _state(client, sid).turn_count
        client.request(m.SendMessage(session_id=sid, content=prompt), timeout=TURN_TIMEOUT_S)
        _wait(lambda: (lambda st: st.turn_count > before and st.current_turn_id is None)(
            _state(client, sid)), TURN_TIMEOUT_S)
    got = _state(client, sid).total_message_count
    if got != messages:
        raise RuntimeError(f"built {got} messages, wanted {messages}")
    return sid


def time_fork(client, sid: str) -> float:
    started = time.perf_counter()
    reply = client.request(m.ForkSession(session_id=sid), timeout=TURN_TIMEOUT_S)
    took = time.perf_counter() - started
    if reply.session.total_message_count != _state(client, sid).total_message_count:
        raise RuntimeError("the fork's snapshot lacks the parent's messages")
    return took


def time_rollback(client, daemon: DaemonProcess, sid: str) -> float:
    sub = Subscription(daemon.endpoints, config=daemon.config)
    try:
        sub.watch_session(sid)
        if not sub.wait_synced(30):
            raise TimeoutError("subscriber did not sync")
        expected = sub.state(sid).total_message_count - 2
        started = time.perf_counter()
        client.send(m.RollbackSession(session_id=sid, turns=1))
        _wait(lambda: sub.state(sid) is not None
              and sub.state(sid).total_message_count == expected, 60, poll=sub.poll)
        return time.perf_counter() - started
    finally:
        sub.close()


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", default="10,100,500")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    sizes = [int(x) for x in args.messages.split(",")]
    print(machine_line())
    print(command_line())
    codex_home = REPO / ".orbitdock-test" / f"bench-ops-{uuid.uuid4().hex[:8]}"
    workspace = Path(codex_home) / "ws"
    results: dict[int, dict[str, list[float]]] = {}
    with SimServer() as sim:
        sim.start()
        env = write_sim_codex_home(codex_home, sim.url)
        workspace.mkdir(parents=True)
        daemon = bench_daemon(env=env).start()
        try:
            from orbitdock.client import Client

            client = Client(daemon.endpoints, timeout=30)
            for size in sizes:
                runs = results.setdefault(size, {"fork": [], "rollback": []})
                for _ in range(args.runs):
                    sid = build_session(client, sim, workspace, size)
                    runs["fork"].append(time_fork(client, sid))
                    runs["rollback"].append(time_rollback(client, daemon, sid))
                    client.request(m.EndSession(session_id=sid))
                print(f"{size:>5} messages: fork {' / '.join(fmt_ms(x) for x in runs['fork'])} ms"
                      f"; rollback {' / '.join(fmt_ms(x) for x in runs['rollback'])} ms",
                      flush=True)
            client.close()
        finally:
            daemon.stop()
            shutil.rmtree(codex_home, ignore_errors=True)
    print("\n| messages | fork, median ms (runs) | rollback, median ms (runs) |\n|---|---|---|")
    for size, runs in results.items():
        print(f"| {size} | {fmt_ms(median(runs['fork']))} "
              f"({', '.join(fmt_ms(x) for x in runs['fork'])}) | "
              f"{fmt_ms(median(runs['rollback']))} "
              f"({', '.join(fmt_ms(x) for x in runs['rollback'])}) |")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(
            {"load": os.getloadavg(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
