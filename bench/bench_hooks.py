"""Claude hooks: what ``orbitdock-hook`` costs claude, and hook -> client latency at scale.

1. **Forwarder cost**: ``orbitdock-hook Stop`` with a real payload against a running
   daemon (a real ack), process start to exit, against a bare ``python -c pass`` of the
   same interpreter, interleaved in the same run (the floor). Target: p99 <= 100 ms and
   <= 3x the bare start.
2. **Concurrent sessions**: ``--sessions`` real ``claude -p`` (2.1.332) at once against the
   scripted Messages API, each with one Bash tool call, orbitdock's hooks installed. Hook
   -> client latency: from the forwarder's start (``ORBITDOCK_HOOK_TRACE``) to a subscriber
   (a SUB on every session topic) receiving what the hook caused: UserPromptSubmit ->
   ``working``, Stop -> ``reply``, SessionEnd -> ``session_ended``. Lost: a session that
   does not end with its 4 messages (user, assistant, tool, assistant: each once) and 1
   turn; rows in another order are counted apart (see docs/PERFORMANCE.md).
3. **Spool**: ``--spool`` events forwarded while no daemon runs (spooled), then a daemon
   started: time to replay them all, and that each session has its messages once.

    .venv/bin/python bench/bench_hooks.py --runs 200 --sessions 50 --spool 500
    .venv/bin/python bench/bench_hooks.py --quick   # 40 samples, 10 sessions, 60 spooled
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import (  # noqa: E402
    percentile as _percentile,
    REPO,
    bench_daemon,
    command_line,
    exit_on_sigterm,
    fmt_ms,
    machine_line,
    markdown_table,

)

HOOK = str(Path(sys.executable).parent / "orbitdock-hook")  # the console script


def installed_command() -> list[str]:
    """What ``orbitdockctl hooks install`` writes (python -S forward.py)."""
    import shlex

    from orbitdock.claude.settings import default_command

    return shlex.split(default_command())


def percentile(values, q: float) -> float:
    return _percentile(sorted(values), q)


def _payload(session_id: str, event: str, **extra) -> bytes:
    return json.dumps({"session_id": session_id, "transcript_path": "/nonexistent.jsonl",
                       "cwd": "/tmp", "hook_event_name": event, **extra}).encode()


def _timed(cmd: list[str], data: bytes, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, input=data, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30, check=False)
    return time.perf_counter() - started


def forwarder_cost(runs: int) -> dict:
    with bench_daemon() as daemon:
        env = dict(os.environ, ORBITDOCK_HOME=str(daemon.home))
        data = _payload("bench-cost", "Stop", last_assistant_message="done", prompt_id="p")
        fast = installed_command()
        _timed([HOOK, "Stop"], data, env)  # warm the page cache
        hook, console, bare = [], [], []
        for _ in range(runs):
            hook.append(_timed([*fast, "Stop"], data, env))
            console.append(_timed([HOOK, "Stop"], data, env))
            bare.append(_timed([sys.executable, "-c", "pass"], b"", env))
        spooled = list((daemon.home / "spool").glob("*.json")) \
            if (daemon.home / "spool").exists() else []
    result = {"runs": runs, "hook_p50": percentile(hook, 50), "hook_p99": percentile(hook, 99),
              "bare_p50": percentile(bare, 50), "bare_p99": percentile(bare, 99),
              "console_p50": percentile(console, 50), "console_p99": percentile(console, 99),
              "spooled": len(spooled)}
    result["ratio_p50"] = result["hook_p50"] / result["bare_p50"]
    result["ratio_p99"] = result["hook_p99"] / result["bare_p99"]
    return result


def concurrent_sessions(count: int) -> dict:
    from claude_env import CLAUDE, claude_env, make_box
    from orbitdock.protocol import codec
    from orbitdock.protocol import messages as m
    from orbitdock.protocol.topics import split_frame
    from orbitdock.sim.server import SimServer
    import zmq

    root = Path(tempfile.mkdtemp(prefix="orbitdock-bench-claude-"))
    trace = root / "trace.jsonl"
    script = []
    for k in range(count):
        script.append({"match": f"job-{k:03d}-", "call": "Bash",
                       "args": {"command": f"echo out-{k}", "description": "echo"},
                       "text": "Running it."})
        script.append({"match": f"job-{k:03d}-", "text": f"Done {k}."})
    received: list[tuple[float, object]] = []
    with bench_daemon() as daemon, SimServer(script) as sim:
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"s|")
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.connect(daemon.endpoints.events)
        stop = threading.Event()

        def listen() -> None:
            while not stop.is_set():
                if sub.poll(50):
                    while sub.poll(0):
                        frame = sub.recv()
                        try:
                            received.append((time.time(), codec.decode_inbound(
                                split_frame(frame)[1])))
                        except Exception:  # noqa: BLE001 - the XPUB welcome
                            pass

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(0.5)
        boxes = [make_box(root / f"box{k}") for k in range(count)]
        procs = []
        started = time.monotonic()
        for k, box in enumerate(boxes):
            env = claude_env(box, sim, daemon.home)
            env["ORBITDOCK_HOOK_TRACE"] = str(trace)
            procs.append(subprocess.Popen(
                [str(CLAUDE), "-p", f"job-{k:03d}- please echo", "--output-format", "json",
                 "--permission-prompts", "none"], cwd=box.project, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        sids, failed = [], 0
        for proc in procs:
            out, _ = proc.communicate(timeout=600)
            try:
                sids.append(json.loads(out)["session_id"])
            except (ValueError, KeyError):
                failed += 1
        wall = time.monotonic() - started
        time.sleep(2.0)
        stop.set()
        listener.join(5)
        from orbitdock.client import Client

        lost = reordered = 0
        wrong: list = []
        expected = ["user", "assistant", "tool", "assistant"]
        with Client(daemon.endpoints, timeout=10) as client:
            for sid in sids:
                st = client.request(m.SubscribeSession(session_id=sid)).session
                kinds = [x.type for x in st.messages]
                if sorted(kinds) != sorted(expected) or st.turn_count != 1 \
                        or st.status != "ended":
                    lost += 1  # a message missing or doubled, or the session not ended
                    wrong.append((sid, kinds, st.turn_count, st.status, st.work_status))
                elif kinds != expected:
                    reordered += 1  # rows in the order orbitdock learnt of them
                    wrong.append((sid, kinds, "reordered"))
        for item in wrong[:5]:
            print("bench: session not as expected:", item, file=sys.stderr)
        spooled = len(list((daemon.home / "spool").glob("*.json"))) \
            if (daemon.home / "spool").exists() else 0
    hooks = [json.loads(line) for line in trace.read_text().splitlines()]
    import shutil

    shutil.rmtree(root, ignore_errors=True)  # 50 claude config dirs and transcripts
    first_seen: dict[tuple[str, str], float] = {}
    for at, event in received:
        sid = getattr(event, "session_id", None)
        kind = None
        if isinstance(event, m.SessionDelta) and isinstance(event.changes.work_status, str):
            kind = {"working": "UserPromptSubmit", "reply": "Stop"}.get(event.changes.work_status)
        elif isinstance(event, m.SessionEnded):
            kind = "SessionEnd"
        if kind and (sid, kind) not in first_seen:
            first_seen[(sid, kind)] = at
    latencies = {"UserPromptSubmit": [], "Stop": [], "SessionEnd": []}
    for h in hooks:
        key = (h["session_id"], h["event"])
        if h["event"] in latencies and key in first_seen:
            latencies[h["event"]].append(first_seen[key] - h["t"])
    every = [v for values in latencies.values() for v in values]
    return {"sessions": count, "ended_ok": len(sids) - lost, "lost": lost + failed,
            "reordered": reordered,
            "spooled": spooled, "wall_s": wall, "hooks_traced": len(hooks),
            "p50": percentile(every, 50), "p99": percentile(every, 99),
            "by_event": {k: (percentile(v, 50), percentile(v, 99), len(v))
                         for k, v in latencies.items() if v}}


def spool_replay(events: int) -> dict:
    """``events`` hooks over ``events // 6`` sessions forwarded with no daemon, then replayed."""
    from orbitdock.client import Client
    from orbitdock.protocol import messages as m

    home = Path(tempfile.mkdtemp(prefix="orbitdock-bench-spool-"))
    env = dict(os.environ, ORBITDOCK_HOME=str(home))
    sessions = max(1, events // 6)
    cost = []
    for k in range(sessions):
        sid = f"spool-{k}"
        steps = [("UserPromptSubmit", {"prompt": f"p{k}", "prompt_id": f"t{k}"}),
                 ("PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "ls"},
                                 "tool_use_id": f"toolu_{k}"}),
                 ("PostToolUse", {"tool_name": "Bash", "tool_input": {"command": "ls"},
                                  "tool_use_id": f"toolu_{k}", "tool_response": {"stdout": "x"}}),
                 ("Stop", {"last_assistant_message": "ok"}),
                 ("UserPromptSubmit", {"prompt": "again", "prompt_id": f"u{k}"}),
                 ("Stop", {"last_assistant_message": "ok"})]
        for event, extra in steps:
            cost.append(_timed([*installed_command(), event], _payload(sid, event, **extra),
                               env))
    files = len(list((home / "spool").glob("*.json")))
    daemon = bench_daemon()
    daemon.home = home
    started = time.monotonic()
    daemon.start()
    try:
        with Client(daemon.endpoints, timeout=10) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and list((home / "spool").glob("*.json")):
                time.sleep(0.01)
            replay_s = time.monotonic() - started
            wrong = 0
            for k in range(sessions):
                st = client.request(m.SubscribeSession(session_id=f"spool-{k}")).session
                if st.turn_count != 2 or st.tool_count != 1 or st.work_status != "reply":
                    wrong += 1
    finally:
        daemon.stop()
    return {"events": files, "sessions": sessions, "spool_p50": percentile(cost, 50),
            "spool_p99": percentile(cost, 99), "replay_s": replay_s, "wrong_sessions": wrong}


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short run: --runs 40 --sessions 10 --spool 60 unless given")
    parser.add_argument("--runs", type=int, default=None,
                        help="forwarder cost samples (default 200; quick 40)")
    parser.add_argument("--sessions", type=int, default=None,
                        help="concurrent claude -p (0: skip; default 50; quick 10)")
    parser.add_argument("--spool", type=int, default=None,
                        help="spooled events (0: skip; default 300; quick 60)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    for name, full, quick in (("runs", 200, 40), ("sessions", 50, 10), ("spool", 300, 60)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    print(machine_line())
    print(command_line())
    results: dict = {}
    if args.runs:
        c = results["cost"] = forwarder_cost(args.runs)
        print(markdown_table(["", "p50 ms", "p99 ms"], [
            ["installed hook (python -S forward.py Stop), acked", fmt_ms(c["hook_p50"]),
             fmt_ms(c["hook_p99"])],
            ["orbitdock-hook console script, acked", fmt_ms(c["console_p50"]),
             fmt_ms(c["console_p99"])],
            ["python -c pass (floor)", fmt_ms(c["bare_p50"]), fmt_ms(c["bare_p99"])],
            ["ratio", f"{c['ratio_p50']:.2f}x", f"{c['ratio_p99']:.2f}x"]]))
        print(f"runs {c['runs']}, spooled (no ack in time) {c['spooled']}")
    if args.sessions:
        s = results["sessions"] = concurrent_sessions(args.sessions)
        print(f"{s['sessions']} concurrent claude -p: wall {s['wall_s']:.1f}s, "
              f"ended with all messages {s['ended_ok']}, lost {s['lost']} (a message missing or "
              f"doubled), rows out of order {s['reordered']}, spooled {s['spooled']},"
              f" hooks traced {s['hooks_traced']}")
        print(markdown_table(["hook -> client", "p50 ms", "p99 ms", "n"], [
            [k, fmt_ms(v[0]), fmt_ms(v[1]), v[2]] for k, v in s["by_event"].items()]
            + [["all", fmt_ms(s["p50"]), fmt_ms(s["p99"]), ""]]))
    if args.spool:
        r = results["spool"] = spool_replay(args.spool)
        print(f"spool: {r['events']} events of {r['sessions']} sessions written with no daemon "
              f"(p50 {fmt_ms(r['spool_p50'])} ms, p99 {fmt_ms(r['spool_p99'])} ms per hook); "
              f"replayed in {r['replay_s']:.2f}s from daemon start; sessions wrong "
              f"{r['wrong_sessions']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
