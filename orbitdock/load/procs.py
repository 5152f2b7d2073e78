"""The subscriber processes as a group (start, progress, commands, close)."""

from __future__ import annotations

import logging
import time
from typing import Any

from orbitdock.load.children import start_child
from orbitdock.load.subscribers import SubSetup, subscriber_main

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 180.0  # 200 sessions x K subscribers take a while to snapshot on 2 cores
JOIN_S = 10.0
PAUSE_ACK_S = 30.0


class SubscriberFailed(RuntimeError):
    pass


class Procs:
    def __init__(self) -> None:
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self.setups: list[SubSetup] = []
        self.latest: list[dict[str, Any]] = []

    def start(self, setups: list[SubSetup], own_session: bool = False) -> None:
        for setup in setups:
            proc, parent = start_child(subscriber_main, setup, own_session=own_session)
            self.procs.append(proc)
            self.conns.append(parent)
            self.setups.append(setup)
            self.latest.append({})
        for i, conn in enumerate(self.conns):
            kind, value = self._expect(i, "ready", READY_TIMEOUT_S)
            if not value:
                logger.warning("subscriber %d not fully synced at start", i)

    def _expect(self, i: int, what: str, timeout: float) -> tuple[str, Any]:
        conn = self.conns[i]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not conn.poll(left):
                raise SubscriberFailed(f"subscriber {i} sent no {what!r} within {timeout:.0f}s")
            kind, value = conn.recv()
            if kind == "error":
                raise SubscriberFailed(f"subscriber {i} ({self.setups[i].role}) failed:\n{value}")
            if kind == "progress":
                self.latest[i] = value
                continue
            if kind == what:
                return kind, value

    def collect(self) -> None:
        """Take the progress reports waiting in the pipes (no wait)."""
        for i, conn in enumerate(self.conns):
            if self.setups[i].role == "slow" and not self.procs[i].is_alive():
                continue
            while conn.poll(0):
                kind, value = conn.recv()
                if kind == "error":
                    raise SubscriberFailed(f"subscriber {i} failed:\n{value}")
                if kind == "progress":
                    self.latest[i] = value

    def aggregate(self) -> dict[str, Any]:
        normal = [p for p, s in zip(self.latest, self.setups) if p and s.role != "slow"]
        if not normal:
            return {}
        windows = [p["window"] for p in normal if p["window"].get("n")]
        driver = normal[0].get("driver") or {}
        return {"events": normal[0]["events"], "sessions": normal[0]["sessions"],
                "gaps": sum(p["gaps"] for p in normal),
                "resyncs": sum(p["resyncs"] for p in normal),
                "p50": max((w["p50"] for w in windows), default=None),
                "p99": max((w["p99"] for w in windows), default=None),
                "outcomes": driver.get("outcomes", {}), "in_flight": driver.get("in_flight", 0),
                "rtt_p99": driver.get("rtt_p99")}

    def tell_driver(self, cmd: str, arg: Any) -> None:
        self.conns[0].send((cmd, arg))
        if cmd == "pause":  # synchronous: nothing may be sent to the restarted daemon before
            self._expect(0, "paused", PAUSE_ACK_S)

    def drain(self, timeout: float) -> dict[str, Any]:
        self.conns[0].send(("drain", timeout))
        return self._expect(0, "drained", timeout + 30)[1]

    def final(self, server: dict[str, tuple[int, int]], timeout: float) -> list[dict[str, Any]]:
        for conn in self.conns:
            conn.send(("final", server))
        return [self._expect(i, "final", timeout)[1] for i in range(len(self.conns))]

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("quit", None))
            except (OSError, BrokenPipeError):
                pass
        for proc in self.procs:
            proc.join(JOIN_S)
            if proc.is_alive():
                proc.terminate()
                proc.join(JOIN_S)
        for conn in self.conns:
            conn.close()
