"""Tool rows of a session: started, streaming output, completed (a part of SessionCore).

A tool call is one ``tool`` message row, opened when the tool starts and closed
with its output, error flag and duration when it completes. Output streamed in
between is kept up to ``sessions.tool_output_max_chars`` characters (then cut to its
tail). A completion whose start this core never saw (it began before a restart)
is matched to the row the restart left behind.

Composed into ``SessionCore``: it gets the core's state, its item map and the
row operations it may use (append, update, delta, message lookup), nothing else.
"""

from __future__ import annotations

from typing import Callable

from orbitdock.connectors import events as be
from orbitdock.protocol.models import Message, SessionState
from orbitdock.session.display import output_tail


class ToolRows:
    def __init__(self, state: SessionState, items: dict[str, str], *,
                 append: Callable[..., Message], update: Callable[..., None],
                 delta: Callable[..., None], message: Callable[[str], Message | None],
                 output_max: int):
        self.state = state
        self._items = items  # backend item id -> message id, shared with the core
        self._append, self._update, self._delta, self._message = append, update, delta, message
        self._output_max = output_max
        # Tool rows a restart closed while their tool still ran: after restoration
        # ``_items`` is empty, so these are where late completions belong.
        self._closed_by_restart: set[str] = set()

    def new_turn(self) -> None:
        self._closed_by_restart.clear()  # an older turn's tools complete before a new turn

    def closed_by_restart(self) -> None:
        """The restart is closing every open tool row: remember them for late completions."""
        self._closed_by_restart.update(msg.id for msg in self.state.messages
                                       if msg.type == "tool" and msg.is_in_progress)

    def started(self, ev: be.ToolStarted) -> None:
        self._append("tool", ev.tool_name, item_id=ev.item_id, tool_name=ev.tool_name,
                     tool_input=ev.tool_input, is_in_progress=True)
        self._delta(last_tool=ev.tool_name)

    def output(self, ev: be.ToolOutputDelta) -> None:
        message_id = self._items.get(ev.item_id)
        msg = self._message(message_id) if message_id is not None else None
        if msg is None:
            return
        kept = len(msg.tool_output or "")
        if kept + len(ev.delta) <= self._output_max:
            self._update(message_id, tool_output_append=ev.delta)
        else:  # cut to half, so the copies this costs stay linear in the output
            self._update(message_id, tool_output=output_tail(
                (msg.tool_output or "") + ev.delta, self._output_max // 2))

    def completed(self, ev: be.ToolCompleted) -> None:
        if ev.status in ("declined", "failed"):
            # A declined or failed tool is an error to show, whatever its exit code says.
            ev = be.ToolCompleted(ev.item_id, ev.output if ev.output else f"({ev.status})", True,
                                  ev.duration_ms, ev.status, ev.tool_name, ev.tool_input)
        message_id = self._items.get(ev.item_id)
        if message_id is None or self._message(message_id) is None:
            message_id = self._tool_started_before_restart(ev.tool_name, ev.tool_input)
            if message_id is not None:
                self._items[ev.item_id] = message_id
                self._closed_by_restart.discard(message_id)
        if message_id is None:
            name = ev.tool_name or "tool"
            self._append("tool", name, item_id=ev.item_id, tool_name=name,
                         tool_input=ev.tool_input,
                         tool_output=output_tail(ev.output, self._output_max),
                         is_error=ev.is_error, duration_ms=ev.duration_ms)
        else:
            self._update(message_id, tool_output=output_tail(ev.output, self._output_max),
                         is_error=ev.is_error,
                         duration_ms=ev.duration_ms, is_in_progress=False)
        self._delta(tool_count=self.state.tool_count + 1,
                    last_tool=ev.tool_name or self.state.last_tool)

    def _tool_started_before_restart(self, tool_name: str | None,
                                     tool_input: str | None) -> str | None:
        """The row of a tool whose start this core never saw: it began before a restart.

        Item ids live only in memory (messages have no item id column), so a
        completion arriving after restoration is matched to a tool row that is
        still open or that the restart closed, that no item id here has claimed,
        and that has the same tool name: the one with the same input if any
        (parallel calls), else the newest. Without one it gets a row of its own.
        """
        claimed = set(self._items.values())
        candidates = [msg for msg in reversed(self.state.messages)
                      if msg.type == "tool" and msg.id not in claimed
                      and (msg.is_in_progress or msg.id in self._closed_by_restart)
                      and (tool_name is None or msg.tool_name == tool_name)]
        same_input = [msg for msg in candidates
                      if tool_input is not None and msg.tool_input == tool_input]
        best = same_input or candidates
        return best[0].id if best else None
