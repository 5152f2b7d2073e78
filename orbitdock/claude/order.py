"""Rows in transcript order, though hooks arrive first (pure; no clock of its own).

A ``PreToolUse`` hook fires as soon as claude has the tool call; the transcript lines of
the text before that call and of the call itself may be written later (a loaded claude
writes them seconds late). Were the hook's tool row shown at once, the text would come
after it. So a hook's tool start or completion whose tool the transcript has not shown
yet waits here, with every hook event behind it (a turn's end after its tools), until
the transcript shows the tool (its own start then makes the row, after the text, and
the hook's copy is a duplicate) or the wait is over (``max_wait_s``: rows in the order
orbitdock learned of them, none lost). Approvals are no rows and never wait: a
forwarder blocks on them.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from orbitdock.connectors import events as be

SUBAGENT_PREFIX = "agent-"  # sub-agent rows (SubagentStart/Stop) have no transcript twin
PASS_THROUGH = (be.ApprovalRequest, be.ApprovalCleared)


class RowOrder:
    """The hook events of one session that wait for its transcript, in arrival order."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self._queue: deque[tuple[Any, float]] = deque()  # (event, when it started waiting)

    def __len__(self) -> int:
        return len(self._queue)

    @staticmethod
    def _needs_transcript(event: Any, shown: Callable[[str], bool]) -> bool:
        return (isinstance(event, (be.ToolStarted, be.ToolCompleted))
                and not event.item_id.startswith(SUBAGENT_PREFIX) and not shown(event.item_id))

    def admit(self, events: list[Any], shown: Callable[[str], bool], now: float) -> list[Any]:
        """The events of a hook that can go now; the others wait behind what waits.
        ``shown(tool_id)``: the transcript (or an earlier event) started that tool."""
        out = []
        for event in events:
            if isinstance(event, PASS_THROUGH):
                out.append(event)
            elif self._queue or self._needs_transcript(event, shown):
                self._queue.append((event, now))
            else:
                out.append(event)
        return out

    def release(self, shown: Callable[[str], bool], now: float, *,
                force: bool = False) -> list[Any]:
        """The waiting events that can go now, in order: up to the first one whose tool
        the transcript still does not show and whose wait is not over (all of them
        when ``force``: the turn or session is over)."""
        out = []
        while self._queue:
            event, since = self._queue[0]
            if (not force and now - since < self.max_wait_s
                    and self._needs_transcript(event, shown)):
                break
            self._queue.popleft()
            out.append(event)
        return out
