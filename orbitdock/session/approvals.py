"""One session's approval bookkeeping: ids, backend keys, decisions in flight.

Split from ``session_core``. The FIFO queue itself is ``SessionState.approvals``
(kept by the reducer); this numbers the requests and remembers, for each pending
one, the backend key that answers it and a client decision on its way.

Ids are ``<session id>:a<n>-<life>``. ``n`` counts the session's requests and goes
on across restarts after the highest ``n`` in the approvals table
(``last_number``). ``<life>`` is the daemon's epoch: a request published in the
last commit window before a ``kill -9`` is not in that table, so the next life
hands out its ``n`` again, and only the life part keeps the two ids apart. A
reused id would be refused by the approvals upsert, which keeps the earlier
life's row, and a late decision for that earlier request would answer the new one.
"""

from __future__ import annotations

from typing import Hashable, Iterable

import msgspec

from orbitdock.connectors import events as be
from orbitdock.protocol.models import ApprovalRequest, Question

ID_SEPARATOR = ":a"  # approval id = session id + ID_SEPARATOR + number [+ LIFE_SEPARATOR + life]
LIFE_SEPARATOR = "-"
LIFE_CHARS = 8  # of the daemon's hex epoch: 2**32 lives before two may look alike


def approval_number(approval_id: str) -> int:
    """The ``n`` of ``<session id>:a<n>[-<life>]``; 0 for an id not of that form."""
    _, sep, rest = approval_id.rpartition(ID_SEPARATOR)
    number = rest.partition(LIFE_SEPARATOR)[0]
    return int(number) if sep and number.isdigit() else 0


def approval_session(approval_id: str) -> str:
    """The session id an approval id belongs to ("" for an id not of that form)."""
    return approval_id.rpartition(ID_SEPARATOR)[0]


class ApprovalBook:
    def __init__(self, session_id: str, pending: Iterable[ApprovalRequest] = (),
                 last_number: int = 0, life: str = ""):
        """``life``: the daemon epoch (tests may leave it out: ids without a life part)."""
        self._session_id = session_id
        self._life = f"{LIFE_SEPARATOR}{life[:LIFE_CHARS]}" if life else ""
        self._last = max([last_number, *(approval_number(a.id) for a in pending)])
        self._keys: dict[str, Hashable] = {}  # approval id -> backend key
        self._ids: dict[Hashable, str] = {}  # backend key -> approval id
        self._deciding: dict[str, str] = {}  # approval id -> decision sent, not yet confirmed

    def open(self, ev: be.ApprovalRequest, turn_id: str | None, now: float) -> ApprovalRequest:
        """The client-facing request for a backend's, under the session's next id."""
        self._last += 1
        approval_id = f"{self._session_id}{ID_SEPARATOR}{self._last}{self._life}"
        self._keys[approval_id] = ev.key
        self._ids[ev.key] = approval_id
        return ApprovalRequest(
            id=approval_id, session_id=self._session_id, type=ev.type, method=ev.method,
            turn_id=ev.turn_id or turn_id, command=ev.command, cwd=ev.cwd,
            file_path=ev.file_path, diff=ev.diff, reason=ev.reason,
            questions=[msgspec.convert(q, Question) for q in ev.questions],
            available_decisions=list(ev.available_decisions), payload=dict(ev.payload),
            created_at=now)

    def id_for(self, key: Hashable) -> str | None:
        return self._ids.get(key)

    def close(self, approval_id: str) -> None:
        """Forget a resolved approval."""
        self._deciding.pop(approval_id, None)
        key = self._keys.pop(approval_id, None)
        self._ids.pop(key, None)

    def begin(self, approval_id: str, decision: str) -> Hashable:
        """Note a decision on its way; returns the backend key to answer.

        Raises KeyError when a decision for it is already on its way.
        """
        if approval_id in self._deciding:
            raise KeyError(approval_id)
        self._deciding[approval_id] = decision
        return self._keys.get(approval_id)

    def end(self, approval_id: str) -> str | None:
        """The decision that was on its way (None if none was): the backend answered."""
        return self._deciding.pop(approval_id, None)
