"""Direct Claude sessions at scale: N ``claude`` stream-json processes, each turn one approval.

    .venv/bin/python bench/bench_claude_direct.py [--sessions 20] [--turns 5] [--runs 3]
        [--idle-stop-s 5] [--json FILE] [--quick]

Each run starts its own daemon on a throw-away home, a Messages API model on
127.0.0.1 whose reply is computed from the request (a tagged prompt gets a
``Bash`` tool call that writes a file (so claude asks), its tool result gets the final text, so a turn always waits
on one approval), and drives N sessions created with ``--provider claude`` from
one ZeroMQ client: each session sends ``--turns`` prompts one after another and
the client accepts every approval as soon as it sees it.

Reported per variant (median over ``--runs``, per-run values beside it):
approval → client latency p50/p99 (the daemon's ``created_at`` of the approval to
the client receiving it), approval round trip (accept sent → the turn's final
text seen), turn completion rate, daemon RSS, claude processes and their RSS
while the sessions are live, and the marginal RSS per session (daemon plus
claude processes, divided by N). The idle-stop variant sets
``claude.idle_stop_s`` and measures the same after the sessions have been idle
that long: what stopping idle processes saves.
Not a test: nothing is asserted; markdown goes to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psutil  # noqa: E402
import zmq  # noqa: E402
from common import (bench_daemon, command_line, fmt_ms, machine_line,  # noqa: E402
                    markdown_table, median)

from orbitdock.harness import child_pids  # noqa: E402
from orbitdock.protocol import messages as m  # noqa: E402
from orbitdock.sim.server import SimServer  # noqa: E402

TAG_RE = re.compile(r"\[CB:s(\d+):t(\d+)\]")
API_KEY = "sk-ant-bench-0000000000"
TURN_TIMEOUT_S = 120.0  # one turn (two model requests, one approval) on a loaded host
CREATE_TIMEOUT_S = 60.0  # a create is answered once claude reported its session id
THINK_S = 0.2  # pause between a turn's end and the session's next prompt
POLL_MS = 50  # the driver's longest wait for a frame (then it sends due prompts)
SETTLE_S = 3.0  # after idle_stop_s, time for the processes to be gone


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class BenchModel(SimServer):
    """Replies computed from the request (no queued script, so any number of sessions
    share it): the newest ``[CB:sNNN:tNNN]`` tag decides the turn; a request whose last
    message carries a tool result gets the turn's final text, one without gets a Bash
    call; untagged requests (model probes, titles) a short text."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = {"call": 0, "final": 0, "untagged": 0}
        self._count_lock = threading.Lock()  # handler threads count

    def take_reply(self, body: bytes) -> dict:
        text = body.decode("utf-8", errors="replace")
        tags = TAG_RE.findall(text)
        try:
            messages = json.loads(text).get("messages") or []
        except (ValueError, AttributeError):
            messages = []
        last = messages[-1] if messages else {}
        content = last.get("content") if isinstance(last, dict) else None
        after_tool = isinstance(content, list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in content)
        if not tags:
            kind, reply = "untagged", {"text": "ok"}
        else:
            sidx, turn = tags[-1]
            word = f"cb-s{sidx}-t{turn}"
            if after_tool:
                kind, reply = "final", {"text": f"Done {word}: the command ran.", "chunk": 8}
            else:
                kind, reply = "call", {"call": "Bash", "args": {
                    "command": f"touch {word}.txt && echo {word}",
                    "description": "Mark the turn"}}
        with self._count_lock:
            self.counts[kind] += 1
        return reply


def claude_box(root: Path, project: Path) -> dict[str, str]:
    """A private CLAUDE_CONFIG_DIR and HOME for the daemon's claude processes (onboarding
    answered, the project trusted), and the model's address: the daemon's environment."""
    config, home = root / "config", root / "home"
    for d in (config, home, project):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    (config / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark",
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(project): {"hasTrustDialogAccepted": True}}}))
    return {"CLAUDE_CONFIG_DIR": str(config), "HOME": str(home)}


def memory(daemon_pid: int) -> dict[str, float]:
    pids = child_pids(daemon_pid, "stream-json")  # the claude processes
    claude_rss = 0
    for pid in pids:
        try:
            claude_rss += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            pass
    try:
        daemon_rss = psutil.Process(daemon_pid).memory_info().rss
    except psutil.Error:
        daemon_rss = 0
    return {"daemon_rss": daemon_rss, "claude_procs": len(pids), "claude_rss": claude_rss}


class Driver:
    """Sends each session's prompts in turn, accepts approvals, classifies turn ends."""

    def __init__(self, daemon: Any, sids: list[str], turns: int):
        self.client = daemon.client(timeout=30.0)
        self.sub = daemon.subscription()
        self.sids, self.turns = sids, turns
        self.sent: dict[str, int] = {sid: 0 for sid in sids}  # prompts sent per session
        self.current: dict[str, tuple[str, float] | None] = {sid: None for sid in sids}
        self.accepted_at: dict[str, float] = {}  # sid -> when its approval was accepted
        self.next_at: dict[str, float] = {sid: 0.0 for sid in sids}
        self.approval_to_client: list[float] = []
        self.round_trip: list[float] = []
        self.outcomes: dict[str, int] = {}
        self.seen_approvals: set[str] = set()
        self.ready = zmq.Poller()
        self.ready.register(self.sub.sub, zmq.POLLIN)
        self.ready.register(self.sub.requests.sock, zmq.POLLIN)

    def _send(self, sid: str) -> None:
        index = self.sids.index(sid)
        turn = self.sent[sid]
        word = f"[CB:s{index:03d}:t{turn:03d}]"
        self.client.request(m.SendMessage(session_id=sid, content=f"{word} run the echo"))
        self.sent[sid] += 1
        self.current[sid] = (f"cb-s{index:03d}-t{turn:03d}", time.monotonic())

    def _end(self, sid: str, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.current[sid] = None
        self.next_at[sid] = time.monotonic() + THINK_S

    def run(self) -> None:
        for sid in self.sids:
            self.sub.watch_session(sid)
        self.sub.wait_synced(30.0)
        while True:
            now = time.monotonic()
            for sid in self.sids:
                if self.current[sid] is None and self.sent[sid] < self.turns \
                        and now >= self.next_at[sid]:
                    self._send(sid)
            if all(self.current[s] is None and self.sent[s] >= self.turns for s in self.sids):
                return
            # Wait for a frame, then apply what came (Subscription.poll itself always
            # waits its whole timeout, which would add up to that much to each latency).
            self.ready.poll(POLL_MS)
            for event in self.sub.poll(0):
                if isinstance(event, m.ApprovalRequested) \
                        and event.request.id not in self.seen_approvals:
                    self.seen_approvals.add(event.request.id)
                    self.approval_to_client.append(time.time() - event.request.created_at)
                    self.client.request(m.ApproveTool(approval_id=event.request.id,
                                                      decision="accept"))
                    self.accepted_at[event.session_id] = time.monotonic()
            self._classify()

    def _classify(self) -> None:
        now = time.monotonic()
        for sid in self.sids:
            cur = self.current[sid]
            if cur is None:
                continue
            word, started = cur
            state = self.sub.state(sid)
            if state is not None and state.current_turn_id is None \
                    and word in (state.last_message or ""):
                if sid in self.accepted_at:
                    self.round_trip.append(now - self.accepted_at.pop(sid))
                self._end(sid, "completed")
            elif state is not None and state.status == "ended":
                self._end(sid, "session_ended")
            elif now - started > TURN_TIMEOUT_S:
                self._end(sid, "timeout")


def one(sessions: int, turns: int, idle_stop_s: float | None) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="orbitdock-bench-claude-"))
    project = root / "proj"
    model = BenchModel().start()
    env = claude_box(root, project) | {
        "ANTHROPIC_BASE_URL": model.anthropic_url, "ANTHROPIC_API_KEY": API_KEY}
    if idle_stop_s is not None:
        env["ORBITDOCK_CLAUDE__IDLE_STOP_S"] = str(idle_stop_s)
    daemon = bench_daemon(env=env)
    t0 = time.monotonic()
    try:
        daemon.start()
        before = memory(daemon.pid)
        client = daemon.client(timeout=CREATE_TIMEOUT_S)
        sids = [client.request(m.CreateSession(provider="claude", cwd=str(project),
                                               name=f"bench {i}")).session.id
                for i in range(sessions)]
        driver = Driver(daemon, sids, turns)
        driver.run()
        live = memory(daemon.pid)
        idle = None
        if idle_stop_s is not None:
            time.sleep(idle_stop_s + SETTLE_S)
            idle = memory(daemon.pid)
        total = sum(driver.outcomes.values())
        return {
            "sessions": sessions, "idle_stop_s": idle_stop_s, "wall_s": time.monotonic() - t0,
            "appr_p50": percentile(driver.approval_to_client, 0.5),
            "appr_p99": percentile(driver.approval_to_client, 0.99),
            "rtt_p50": percentile(driver.round_trip, 0.5),
            "rtt_p99": percentile(driver.round_trip, 0.99),
            "completed": driver.outcomes.get("completed", 0), "turns": total,
            "completion": driver.outcomes.get("completed", 0) / total if total else 0.0,
            "outcomes": driver.outcomes, "model": dict(model.counts),
            "daemon_rss_before": before["daemon_rss"], **live,
            "marginal_mb": (live["daemon_rss"] + live["claude_rss"]
                            - before["daemon_rss"]) / sessions / 2**20,
            "idle": idle,
        }
    finally:
        daemon.stop()
        daemon.cleanup()
        model.stop()
        shutil.rmtree(root, ignore_errors=True)


def report(recs: dict[str, list[dict]], started: str, wall: float, machine: str) -> str:
    rows = []
    for variant, rs in recs.items():
        med = lambda k: median(r[k] for r in rs if r[k] is not None)  # noqa: E731
        idle = [r["idle"] for r in rs if r["idle"]]
        idle_cell = "—" if not idle else (
            f"{median(i['claude_procs'] for i in idle):.0f} processes, "
            f"{median(i['claude_rss'] for i in idle) / 2**20:.0f} MB; daemon "
            f"{median(i['daemon_rss'] for i in idle) / 2**20:.0f} MB")
        rows.append([
            variant, rs[0]["sessions"], len(rs),
            f"{fmt_ms(med('appr_p50'))} / {fmt_ms(med('appr_p99'))}",
            f"{fmt_ms(med('rtt_p50'))} / {fmt_ms(med('rtt_p99'))}",
            f"{100 * med('completion'):.1f}% ({med('completed'):.0f}/{med('turns'):.0f}); "
            f"worst run {100 * min(r['completion'] for r in rs):.1f}%",
            f"{med('daemon_rss') / 2**20:.0f}",
            f"{med('claude_procs'):.0f} / {med('claude_rss') / 2**20:.0f}",
            f"{med('marginal_mb'):.0f}", idle_cell,
        ])
    header = ["variant", "sessions", "runs", "approval→client p50/p99 ms",
              "accept→turn done p50/p99 ms", "turns completed", "daemon RSS MB (live)",
              "claude processes / RSS MB (live)", "marginal MB/session (live)",
              "after idle_stop_s"]
    return "\n".join([f"Run {started}, {wall / 60:.1f} min: `{command_line()}`", "",
                      f"Machine: {machine}", "", markdown_table(header, rows), ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--turns", type=int, default=5, help="prompts per session")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle-stop-s", type=float, default=5.0,
                    help="claude.idle_stop_s of the idle-stop variant (0: skip the variant)")
    ap.add_argument("--json", help="write every run's record here")
    ap.add_argument("--quick", action="store_true", help="4 sessions, 2 turns, 1 run")
    args = ap.parse_args(argv)
    if args.quick:
        args.sessions, args.turns, args.runs = 4, 2, 1
    variants: list[tuple[str, float | None]] = [("processes kept", None)]
    if args.idle_stop_s > 0:
        variants.append((f"idle stop {args.idle_stop_s:g} s", args.idle_stop_s))
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = machine_line()
    t0 = time.monotonic()
    recs: dict[str, list[dict]] = {}
    for run_no in range(args.runs):
        for name, idle_stop in variants:
            rec = one(args.sessions, args.turns, idle_stop)
            recs.setdefault(name, []).append(rec)
            print(f"run {run_no + 1} {name}: appr p99 {fmt_ms(rec['appr_p99'])} ms, "
                  f"{rec['completed']}/{rec['turns']} turns {rec['outcomes']}, claude "
                  f"{rec['claude_procs']} procs {rec['claude_rss'] / 2**20:.0f} MB, "
                  f"idle {rec['idle']} [{rec['wall_s']:.0f}s]", file=sys.stderr, flush=True)
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump(recs, fh, indent=1, default=str)
    print(report(recs, started, time.monotonic() - t0, machine))
    return 0 if all(r["completion"] == 1.0 for rs in recs.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
