"""Where the watcher sends a passive session's messages: straight to its actor once known.

The supervisor creates passive sessions, so a session's first batch goes through
it. Right after, the watcher asks the supervisor for the session's actor
(``ask``) and holds that session's later messages until the answer comes. The
supervisor handles the watcher's messages in order, so when it answers it has
already passed on every batch sent before the question; messages sent straight
to the actor from then on cannot overtake one still passing through the
supervisor. That saves one thread hop on the append -> client path.

A route whose actor died (crash) is dropped and asked for again, with the
session's messages held meanwhile: the supervisor answers only once the
successor runs and has been given what the dead actor had queued, so order holds
across a restart too. Sessions the supervisor says are not passive (a direct
session's thread) keep going through it. No locks: only the watcher's thread
touches an instance.
"""

from __future__ import annotations

from typing import Any, Callable

import pykka

# The route of a thread that belongs to a direct session: through the supervisor, for good.
VIA_SUPERVISOR = object()


class SessionRoutes:
    def __init__(self, via_supervisor: Callable[[Any], None], ask: Callable[[str], None]):
        self._via_supervisor = via_supervisor
        self._ask = ask
        self._refs: dict[str, Any] = {}  # session id -> its actor ref, or VIA_SUPERVISOR
        self._waiting: dict[str, list[Any]] = {}  # an answer is out: messages held in order
        self.asked = 0
        self.direct = 0

    def send(self, session_id: str, message: Any) -> None:
        held = self._waiting.get(session_id)
        if held is not None:
            held.append(message)
            return
        ref = self._refs.get(session_id)
        if ref is VIA_SUPERVISOR:
            self._via_supervisor(message)
            return
        if ref is not None:
            if self._tell(session_id, ref, message):
                return
            # Crashed: hold this and what follows until the successor is known.
            self._wait(session_id, [message])
            return
        self._via_supervisor(message)  # first contact: the supervisor creates the session
        self._wait(session_id, [])

    def answer(self, session_id: str, ref: Any | None, *, passive: bool = True) -> None:
        """The supervisor's answer: the session's actor, or None (no such session)."""
        held = self._waiting.pop(session_id, [])
        if not passive:
            self._refs[session_id] = VIA_SUPERVISOR
        elif ref is None:
            self._refs.pop(session_id, None)  # asked again on the next message
        else:
            self._refs[session_id] = ref
        for index, message in enumerate(held):
            if ref is None or not passive:
                self._via_supervisor(message)
            elif not self._tell(session_id, ref, message):
                self._wait(session_id, held[index:])  # died again meanwhile
                return

    def backlogged(self, limit: int) -> bool:
        return any(ref is not VIA_SUPERVISOR and ref.actor_inbox.qsize() > limit
                   for ref in self._refs.values())

    def _tell(self, session_id: str, ref: Any, message: Any) -> bool:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            self._refs.pop(session_id, None)
            return False
        self.direct += 1
        return True

    def _wait(self, session_id: str, held: list[Any]) -> None:
        self._waiting[session_id] = held
        self.asked += 1
        self._ask(session_id)
