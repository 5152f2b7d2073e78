"""The small interface a session actor uses to drive its backend.

Threading contract: every method is called on the session actor's thread and
must return quickly (no waiting on the backend). Results and everything the
backend does arrive later through ``emit`` — a thread-safe callable that hands
the event to the session actor's inbox. Commands that complete (or fail)
asynchronously report a ``CommandResult`` carrying the ``token`` they were given.
"""

from __future__ import annotations

import abc
from typing import Any, Callable

from orbitdock.connectors.events import BackendEvent

Emit = Callable[[BackendEvent], None]


class ConnectorError(Exception):
    """Raised synchronously when a command cannot even be attempted."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Connector(abc.ABC):
    provider: str = "abstract"

    @abc.abstractmethod
    def start(self, emit: Emit, *, resume_thread_id: str | None = None) -> None:
        """Create the backend thread, or resume ``resume_thread_id`` with its context."""

    @abc.abstractmethod
    def send_message(self, token: Any, text: str) -> None: ...

    def steer(self, token: Any, text: str) -> None:
        raise ConnectorError("invalid_state", f"{self.provider} sessions cannot be steered")

    @abc.abstractmethod
    def interrupt(self, token: Any) -> None: ...

    @abc.abstractmethod
    def respond(self, token: Any, key: Any, *, decision: str | None,
                answers: dict[str, list[str]] | None) -> None:
        """Answer approval request ``key``.

        ``decision`` is one of accept | accept_for_session | decline | cancel (or a
        backend-specific value the request offered); ``answers`` maps question id to
        the chosen answers for question-type requests. The connector shapes the reply.
        """

    def rename(self, token: Any, name: str | None) -> None:
        """Tell the backend the new name; by default names live only in orbitdock."""

    def set_config(self, token: Any, *, approval_policy: str | None,
                   sandbox_mode: str | None, model: str | None) -> None:
        """Apply from the next turn on; default: nothing to tell the backend."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Release the backend (thread unsubscribed / process returned to the pool)."""
