"""Which acknowledged prompts codex has not echoed yet, per open turn (pure, no I/O).

codex answers ``turn/start`` (and ``turn/steer``) with the turn id *before* it sends
``turn/started`` and the ``userMessage`` item that echoes the text, and the session
records a prompt only from that echo. When the app-server dies in between, the
client already holds the turn id, yet the turn would never be closed and the
prompt would be in no message. The ledger remembers, for every open turn, whether
``turn/started`` arrived and which acknowledged texts codex has not echoed, so the
sink can, on loss, close that turn and append exactly the missing prompts — never
one codex did echo, whichever order the echo and the acknowledgement come in.

Owned by its sink (so by whichever thread owns the sink; see ``orbitdock.codex.sink``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

# Completed turn ids remembered, so that an acknowledgement read after its turn
# already completed does not reopen it. One thread has one turn at a time; a few
# are plenty.
RECENT_TURNS = 8


@dataclass(slots=True)
class Pending:
    """A turn/start or turn/steer request in flight."""

    text: str
    echoed: bool = False  # codex echoed it before we read its acknowledgement


@dataclass(slots=True)
class OpenTurn:
    """A turn codex acknowledged or started and has not completed."""

    turn_id: str
    started: bool = False  # turn/started arrived
    prompts: list[str] = field(default_factory=list)  # acknowledged, not echoed
    echoes: list[str] = field(default_factory=list)  # echoed, not matched to an ack yet


class PromptLedger:
    def __init__(self) -> None:
        self._in_flight: list[Pending] = []
        self._open: dict[str, OpenTurn] = {}  # insertion order = order of first sight
        self._done: collections.deque[str] = collections.deque(maxlen=RECENT_TURNS)

    def __repr__(self) -> str:
        return f"<PromptLedger in_flight={len(self._in_flight)} open={list(self._open)}>"

    # ------------------------------------------------------------ requests
    def sent(self, text: str) -> Pending:
        pending = Pending(text)
        self._in_flight.append(pending)
        return pending

    def acked(self, pending: Pending, turn_id: str | None) -> None:
        self._forget(pending)
        if not turn_id or turn_id in self._done:
            return
        turn = self._turn(turn_id)
        if pending.echoed:
            return
        if pending.text in turn.echoes:
            turn.echoes.remove(pending.text)
        elif turn.echoes:  # echoed under a text we did not send verbatim
            turn.echoes.pop(0)
        else:
            turn.prompts.append(pending.text)

    def dropped(self, pending: Pending) -> None:
        """The request failed: codex took no prompt (the client was told)."""
        self._forget(pending)

    # ------------------------------------------------------------ notifications
    def started(self, turn_id: str | None) -> None:
        if turn_id and turn_id not in self._done:
            self._turn(turn_id).started = True

    def echoed(self, turn_id: str | None, text: str) -> None:
        turn = self._open.get(turn_id) if turn_id else None
        if turn is not None and text in turn.prompts:
            turn.prompts.remove(text)
            return
        for pending in self._in_flight:
            if not pending.echoed and pending.text == text:
                pending.echoed = True
                return
        if turn is not None and turn.prompts:  # codex normalised the text
            turn.prompts.pop(0)
        elif turn_id and turn_id not in self._done:
            self._turn(turn_id).echoes.append(text)

    def completed(self, turn_id: str | None) -> None:
        if turn_id:
            self._open.pop(turn_id, None)
            self._done.append(turn_id)

    # ------------------------------------------------------------ loss
    def lost(self) -> list[OpenTurn]:
        """The process died: the open turns (to close) with their unechoed prompts."""
        turns = list(self._open.values())
        self._open.clear()
        self._in_flight.clear()
        return turns

    def _turn(self, turn_id: str) -> OpenTurn:
        turn = self._open.get(turn_id)
        if turn is None:
            turn = self._open[turn_id] = OpenTurn(turn_id)
        return turn

    def _forget(self, pending: Pending) -> None:
        for index, candidate in enumerate(self._in_flight):
            if candidate is pending:
                del self._in_flight[index]
                return
