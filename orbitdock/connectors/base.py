"""What a provider plugs in: a ``Provider`` by name, and a ``Connector`` per session.

A provider (``actors/providers.py`` lists them by name) supplies the connector for
a session — started new, resumed from a backend thread, or forked from another
thread — checks a ``create_session`` before anything is created, and answers the
provider-scope requests it marks with ``@answers`` (models, backend status).

Connector threading contract: every method is called on the session actor's thread
and must return quickly (no waiting on the backend). Results and everything the
backend does arrive later through ``emit`` — a thread-safe callable that hands
the event to the session actor's inbox. Commands that complete (or fail)
asynchronously report a ``CommandResult`` carrying the ``token`` they were given.
"""

from __future__ import annotations

import abc
import os
from typing import Any, Callable

from orbitdock.connectors.events import BackendEvent
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import SessionState
from orbitdock.protocol.routing import ClientRequest, marked_handlers

Emit = Callable[[BackendEvent], None]
Done = Callable[[m.Reply], None]  # hands a provider's reply back; callable from any thread
Checked = Callable[[ProtocolError | None], None]  # a create's verdict; callable from any thread


class ConnectorError(ProtocolError):
    """Raised synchronously when a command cannot even be attempted."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(code, message)


class Connector(abc.ABC):
    provider: str = "abstract"

    @abc.abstractmethod
    def start(self, emit: Emit, *, resume_thread_id: str | None = None,
              fork_thread_id: str | None = None) -> None:
        """Create the backend thread; or resume ``resume_thread_id`` with its context; or
        start a new thread that continues ``fork_thread_id``'s conversation (a fork)."""

    def call(self, operation: str, token: Any, **fields: Any) -> None:
        """Run a session request the provider forwards as it is (``Request.forward``):
        the connector's method named ``operation`` gets the request's fields."""
        method = getattr(self, operation, None)
        if not callable(method):
            raise ConnectorError(ErrorCode.UNSUPPORTED,
                                 f"{self.provider} sessions do not support {operation}")
        method(token, **fields)

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


class Provider(abc.ABC):
    """One kind of backend, looked up by ``name``; see the module docstring."""

    name: str = "abstract"
    creatable: bool = True  # orbitdock can create its sessions (not only watch them)
    # Its passive sessions get a connector too (e.g. to answer a Claude hook that waits
    # for an approval); without it a passive session has none.
    passive_connector: bool = False

    @abc.abstractmethod
    def connector(self, state: SessionState, *,
                  script: list[dict[str, Any]] | None = None) -> Connector:
        """A new connector for ``state`` (not started)."""

    def check_create(self, request: m.CreateSession, checked: Checked) -> None:
        """Refuse a create the backend would refuse, before any session exists: call
        ``checked(None)``, or ``checked(ProtocolError)`` (usually ``invalid_argument``
        naming the field and the allowed values), from any thread."""
        checked(None)

    def check_config(self, *, approval_policy: str | None, sandbox_mode: str | None,
                     model: str | None, checked: Checked) -> None:
        """As ``check_create``, for a running session's config change (fields left None
        are unchanged)."""
        checked(None)

    def answer(self, req: ClientRequest, done: Done) -> None:
        """Answer a provider-scope request: its ``@answers`` method gets ``(req, done)``
        and calls ``done(reply)`` (from any thread) or raises ``ProtocolError``."""
        name = marked_handlers(type(self)).get(type(req.request))
        if name is not None:
            getattr(self, name)(req, done)
            return
        raise ProtocolError(ErrorCode.UNSUPPORTED,
                            f"provider {self.name} does not answer {req.request.__struct_config__.tag}")

    def attach(self, supervisor: Any, persistence: Any) -> None:
        """The supervisor and persistence actors, once they run (before any client can
        send a request): for a provider that feeds sessions of its own (hooks)."""

    def quiesce(self) -> None:
        """The daemon stops: hand the supervisor, still running, whatever the provider
        holds back (called before the supervisor stops; ``stop`` comes after it)."""

    def stop(self) -> None:
        """Release what the provider started (processes, actors)."""


def invalid(field: str, value: Any, allowed: Any) -> ProtocolError:
    """The ``invalid_argument`` error for one field: what was given, what is allowed."""
    if isinstance(allowed, (list, tuple, set, frozenset, dict)):
        allowed = ", ".join(sorted(str(a) for a in allowed))
    return ProtocolError(ErrorCode.INVALID_ARGUMENT,
                         f"{field}: {value!r} is not allowed; expected {allowed}")


def check_cwd(cwd: str) -> ProtocolError | None:
    """A session's working directory must exist and be a directory."""
    if not os.path.isabs(cwd):
        return invalid("cwd", cwd, "an absolute path")
    if not os.path.exists(cwd):
        return invalid("cwd", cwd, "an existing directory (it does not exist)")
    if not os.path.isdir(cwd):
        return invalid("cwd", cwd, "a directory (it is a file)")
    return None
