"""What `orbitdockctl watch` prints: one timestamped line per meaningful change.

``SessionLog`` turns one session's events into lines: streamed text is shown once,
when its message is complete; a tool's output is cut to its first line; a delta
becomes "work waiting -> working", never a dict. ``ListLines`` prints a row of the
session list when what it shows changed. ``ListTable`` is the terminal form of the
list: a table redrawn in place (rich). Colors are click styles, which click.echo
drops when stdout is not a terminal.
"""

from __future__ import annotations

import time
from typing import Any

import click
from msgspec import UNSET

from orbitdock.cli.approval import summary
from orbitdock.cli.common import ago
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import Message, SessionState, SessionSummary

TEXT_WIDTH = 100  # characters of a message or tool output shown on its line
ATTENTION_MARK = {"awaitingPermission": "!", "awaitingQuestion": "?", "awaitingReply": "*"}
ATTENTION_COLOR = {"awaitingPermission": "yellow", "awaitingQuestion": "yellow",
                   "awaitingReply": "green"}
WORK_COLOR = {"working": "cyan", "permission": "yellow", "question": "yellow", "reply": "green",
              "ended": "bright_black"}
# Session fields whose change is worth a line ("label", field); the rest (activity
# times, token counts, revision bookkeeping) change all the time and say little.
SHOWN_FIELDS = (("status", "status"), ("work", "work_status"), ("name", "display_name"),
                ("model", "model"), ("branch", "git_branch"),
                ("approval policy", "approval_policy"),
                ("sandbox", "sandbox_mode"), ("error", "last_error"))
ROLE_COLOR = {"user": "blue", "assistant": "white", "tool": "magenta", "error": "red",
              "steer": "blue", "thinking": "bright_black"}


def clock(ts: float | None = None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts or time.time()))


def short(text: str | None, width: int = TEXT_WIDTH) -> str:
    """The first non-empty line, cut to ``width``, saying how much was left out."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0].strip()
    cut = first if len(first) <= width else first[:width - 1] + "…"
    more = len(lines) - 1
    return cut + (click.style(f" (+{more} lines)", fg="bright_black") if more else "")


class SessionLog:
    """Lines for one session's events; remembers what it showed to print changes only."""

    def __init__(self, state: SessionState):
        self.session_id = state.id
        self.shown = {field: getattr(state, field) for _, field in SHOWN_FIELDS}
        self.in_turn = state.current_turn_id is not None

    def opening(self, state: SessionState) -> list[str]:
        waits = f", {len(state.approvals)} waiting on you" if state.approvals else ""
        lines = [self._line(None, f"{click.style(state.display_name or state.id, bold=True)} "
                                  f"({state.provider}): snapshot rev {state.revision}, "
                                  f"{self._work(state.work_status)}, "
                                  f"{state.total_message_count} messages{waits}")]
        lines += [self._line(None, self._approval(a)) for a in state.approvals]
        return lines

    def lines(self, event: m.Wire, state: SessionState | None) -> list[str]:
        ts = getattr(event, "ts", None)
        if isinstance(event, m.SessionSnapshot):
            return [self._line(None, f"resynced at rev {event.session.revision}")]
        if isinstance(event, m.SessionDelta):
            return [self._line(ts, text) for text in self._delta(event.changes)]
        if isinstance(event, m.MessageAppended):
            text = self._message(event.message, complete=not event.message.is_in_progress)
            return [self._line(ts, text)] if text else []
        if isinstance(event, m.MessageUpdated):
            if event.changes.is_in_progress is not False or state is None:
                return []  # a streamed piece: shown once the message is complete
            message = next((x for x in reversed(state.messages) if x.id == event.message_id),
                           None)
            text = self._message(message, complete=True) if message else ""
            return [self._line(ts, text)] if text else []
        if isinstance(event, m.ApprovalRequested):
            return [self._line(ts, self._approval(event.request))]
        if isinstance(event, m.ApprovalResolved):
            return [self._line(ts, f"approval {event.approval_id} -> {event.decision}")]
        if isinstance(event, m.SessionEnded):
            return [self._line(ts, click.style(f"ended: {event.reason}", fg="bright_black"))]
        if isinstance(event, m.Error):
            return [self._line(None, click.style(f"error {event.code}: {event.message}",
                                                 fg="red"))]
        return []

    def _line(self, ts: float | None, text: str) -> str:
        return f"{click.style(clock(ts), fg='bright_black')} {text}"

    @staticmethod
    def _work(work_status: str) -> str:
        return click.style(work_status, fg=WORK_COLOR.get(work_status))

    @staticmethod
    def _approval(a) -> str:
        return click.style(f"APPROVAL {a.id} {a.type}: {short(summary(a))}", fg="yellow",
                           bold=True)

    def _delta(self, changes) -> list[str]:
        out = []
        turn = changes.current_turn_id
        if turn is not UNSET and (turn is not None) != self.in_turn:
            self.in_turn = turn is not None
            out.append("turn started" if self.in_turn else "turn ended")
        for label, field in SHOWN_FIELDS:
            value = getattr(changes, field)
            if value is UNSET or value == self.shown[field]:
                continue
            before, self.shown[field] = self.shown[field], value
            if field == "work_status":
                out.append(f"work {before} -> {self._work(value)}")
            elif field == "last_error":
                if value:
                    out.append(click.style(f"error: {short(value)}", fg="red"))
            else:
                out.append(f"{label} {before or '-'} -> {value or '-'}")
        return out

    @staticmethod
    def _message(msg: Message, complete: bool) -> str:
        role = click.style(msg.type, fg=ROLE_COLOR.get(msg.type))
        if msg.type == "tool":
            if not complete:
                return f"{role} {msg.tool_name or '?'}: {short(msg.tool_input)}"
            status = click.style("failed", fg="red") if msg.is_error else "done"
            output = short(msg.tool_output, TEXT_WIDTH // 2)
            return f"{role} {msg.tool_name or '?'} {status}" + (f": {output}" if output else "")
        if not complete:
            return ""  # streaming: the whole message is shown when it completes
        return f"{role}: {short(msg.content)}" if msg.content.strip() else ""


def row_text(s: SessionSummary) -> tuple[Any, ...]:
    """What a list row shows (a row is printed again only when this changes)."""
    return (s.status, s.work_status, s.attention_reason, s.pending_approvals, s.display_name)


class ListLines:
    """The session list, line-oriented: a row each time what it shows changes."""

    def __init__(self) -> None:
        self.shown: dict[str, tuple[Any, ...]] = {}

    def lines(self, summaries: list[SessionSummary]) -> list[str]:
        out = []
        for s in summaries:
            row = row_text(s)
            if self.shown.get(s.id) == row:
                continue
            verb = "new" if s.id not in self.shown else "now"
            self.shown[s.id] = row
            mark = ATTENTION_MARK.get(s.attention_reason, " ")
            waits = f" {s.pending_approvals} waiting" if s.pending_approvals else ""
            out.append(f"{click.style(clock(s.last_activity_at or None), fg='bright_black')} "
                       f"{mark} {s.id} {verb} {s.status}/"
                       f"{click.style(s.work_status, fg=WORK_COLOR.get(s.work_status))}"
                       f"{waits}  {s.display_name}")
        return out


class ListTable:
    """The session list as a table redrawn in place (terminal only)."""

    def __init__(self, show_all: bool):
        from rich.console import Console
        from rich.live import Live

        self.show_all = show_all
        self.live = Live(console=Console(), auto_refresh=False, transient=False)

    def __enter__(self) -> "ListTable":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def draw(self, summaries: list[SessionSummary], note: str = "") -> None:
        from rich.table import Table
        from rich.text import Text

        order = {"awaitingPermission": 0, "awaitingQuestion": 1, "awaitingReply": 2}
        rows = sorted((s for s in summaries if self.show_all or s.status == "active"),
                      key=lambda s: (s.status != "active", order.get(s.attention_reason, 3),
                                     -s.last_activity_at))
        table = Table(title=f"orbitdock sessions  {clock()}{'  ' + note if note else ''}",
                      title_justify="left", box=None, header_style="bold")
        for column in ("", "ID", "PROVIDER", "WORK", "WAITING", "ACTIVE", "NAME"):
            table.add_column(column, no_wrap=column != "NAME")
        for s in rows:
            color = WORK_COLOR.get(s.work_status, "default")
            table.add_row(ATTENTION_MARK.get(s.attention_reason, ""), s.id, s.provider,
                          f"[{color}]{s.work_status}[/]",
                          str(s.pending_approvals or ""), ago(s.last_activity_at),
                          Text(s.display_name))  # a name is text, not rich markup
        if not rows:
            table.add_row("", "(no sessions)", "", "", "", "", "")
        self.live.update(table, refresh=True)
