"""A codex connector driven like a session actor would, for the pool and connector tests.

``Session`` wraps a ``CodexConnector`` and the queue its events land in; every wait is
a bounded ``queue.get``. CODEX_HOME and work dirs live under ``conftest.TEST_ROOT``
(codex refuses helper binaries under /tmp).
"""

from __future__ import annotations

import queue
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import TEST_ROOT
from orbitdock.codex.connector import CodexConnector
from orbitdock.connectors import events as ev

WAIT_S = 15.0  # any single expected event; codex answers in well under a second


def make_base_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under TEST_ROOT for a test module (a fixture's body)."""
    base = TEST_ROOT / f"{prefix}-{uuid.uuid4().hex[:8]}"
    base.mkdir(parents=True)
    yield base
    shutil.rmtree(base, ignore_errors=True)


class Session:
    """A connector plus the queue its events land in, with bounded waits."""

    def __init__(self, pool, workspace: Path, **settings: Any):
        settings.setdefault("approval_policy", "untrusted")
        settings.setdefault("sandbox_mode", "workspace-write")
        self.events: queue.Queue[ev.BackendEvent] = queue.Queue()
        self.seen: list[ev.BackendEvent] = []
        self.connector = CodexConnector(pool, cwd=str(workspace), **settings)
        self._tokens = iter(range(1, 10_000))

    def start(self, **kwargs: Any) -> ev.ThreadStarted:
        self.connector.start(self.events.put, **kwargs)
        return self.wait(ev.ThreadStarted)

    def wait(self, kind: type, pred=lambda e: True, timeout: float = WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(0.01, remaining))
            except queue.Empty:
                raise AssertionError(f"no {kind.__name__} within {timeout}s; saw "
                                     f"{[type(e).__name__ for e in self.seen[-15:]]}") from None
            self.seen.append(event)
            if isinstance(event, ev.BackendLost) and event.fatal and kind is not ev.BackendLost:
                raise AssertionError(f"session failed: {event.reason}")
            if isinstance(event, kind) and pred(event):
                return event

    def result(self, token: Any) -> ev.CommandResult:
        return self.wait(ev.CommandResult, lambda e: e.token == token)

    def send(self, text: str) -> ev.CommandResult:
        token = next(self._tokens)
        self.connector.call("send_message", token, content=text)
        return self.result(token)

    def turn(self, text: str) -> ev.TurnCompleted:
        assert self.send(text).ok
        return self.wait(ev.TurnCompleted)

    def respond(self, key: Any, decision: str | None = None, answers=None) -> ev.CommandResult:
        token = next(self._tokens)
        self.connector.respond(token, key, decision=decision, answers=answers)
        return self.result(token)

    def since(self, kind: type) -> list:
        return [e for e in self.seen if isinstance(e, kind)]
