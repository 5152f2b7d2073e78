#!/usr/bin/env python3
"""Tool call round trip through orbitdock-mcp, beside a direct ZeroMQ request, same run.

One daemon (scripted sessions), one ``orbitdock-mcp`` over stdio driven by the SDK's own
client. Per run: N ``get_session`` tool calls (MCP client -> orbitdock-mcp -> daemon ->
back) and N direct ``subscribe_session`` requests over ZeroMQ (the floor the tool call
stands on), interleaved so both see the same machine. Prints p50/p99 of each and their
ratio; medians over the runs.

    .venv/bin/python bench/bench_mcp.py [--calls 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

from bench.common import bench_daemon  # noqa: E402
from orbitdock.protocol import messages as m  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_run(home: Path, sid: str, direct, calls: int) -> dict[str, float]:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBITDOCK_")}
    env["ORBITDOCK_HOME"] = str(home)
    params = StdioServerParameters(command=sys.executable, args=["-m", "orbitdock.mcp.server"],
                                   env=env)
    via_mcp: list[float] = []
    via_zmq: list[float] = []
    async with Client(params) as client:
        await client.call_tool("get_session", {"session_id": sid, "messages": 5})  # warm up
        for _ in range(calls):
            started = time.perf_counter()
            result = await client.call_tool("get_session", {"session_id": sid, "messages": 5})
            via_mcp.append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result
            started = time.perf_counter()
            direct.request(m.SubscribeSession(session_id=sid))
            via_zmq.append((time.perf_counter() - started) * 1000)
    return {"mcp_p50": pct(via_mcp, 0.5), "mcp_p99": pct(via_mcp, 0.99),
            "zmq_p50": pct(via_zmq, 0.5), "zmq_p99": pct(via_zmq, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    daemon = bench_daemon().start()
    try:
        direct = daemon.client()
        sid = direct.request(m.CreateSession(provider="scripted", cwd="/")).session.id
        direct.request(m.SendMessage(session_id=sid, content="something to read"))
        time.sleep(0.5)
        runs = [asyncio.run(one_run(daemon.home, sid, direct, args.calls))
                for _ in range(args.runs)]
    finally:
        daemon.stop()
        daemon.cleanup()
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"tool call round trip, {args.calls} calls x {args.runs} runs (medians of runs)")
    print(f"| path | p50 ms | p99 ms |\n|---|---|---|")
    print(f"| MCP get_session (client -> orbitdock-mcp -> daemon) | {med['mcp_p50']:.2f} | "
          f"{med['mcp_p99']:.2f} |")
    print(f"| ZeroMQ subscribe_session (the floor) | {med['zmq_p50']:.2f} | "
          f"{med['zmq_p99']:.2f} |")
    print(f"| ratio | {med['mcp_p50'] / med['zmq_p50']:.1f}x | "
          f"{med['mcp_p99'] / med['zmq_p99']:.1f}x |")


if __name__ == "__main__":
    main()
