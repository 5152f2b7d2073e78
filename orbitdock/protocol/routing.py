"""How a request finds the code that answers it: declared on the request, checked at start.

Every request class declares its ``scope`` (who answers it, ``Scope``), its ``reply``
type and the error codes it may get (``orbitdock.protocol.messages``). Each actor
builds its ``RequestTable`` once, in ``on_start``, from methods marked with
``@answers(RequestClass, ...)``: a request of its scope with no handler, or a
handler for a request of another scope, raises ``RoutingError`` there — at daemon
start, not when a client first sends it.

A handler takes the ``ClientRequest`` and returns the reply (sent for it), or
``None`` when the answer comes later (the handler keeps the request to answer it),
or raises ``ProtocolError`` (sent as a coded error). Session requests that a
provider forwards as they are (``Request.forward``) need no handler of their own:
the session actor's table routes them all to one generic method.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from orbitdock.protocol.messages import REQUEST_TYPES, Reply, Request
from orbitdock.protocol.scopes import Scope
from orbitdock.session.approvals import approval_session

__all__ = ["ClientRequest", "RequestTable", "RoutingError", "Scope", "answers",
           "target_session"]


class RoutingError(Exception):
    """A request type without a handler, or a handler for another scope's request."""


@dataclass(slots=True)
class ClientRequest:
    """A decoded request from a client, with the ROUTER identity its reply goes to."""

    identity: bytes
    request: Any  # an orbitdock.protocol.messages.Request


Handler = Callable[[ClientRequest], Reply | None]


def answers(*request_types: type[Request]) -> Callable[[Callable], Callable]:
    """Mark a method as the handler of these request types."""

    def mark(method: Callable) -> Callable:
        method.__answers__ = getattr(method, "__answers__", ()) + request_types  # type: ignore[attr-defined]
        return method

    return mark


@functools.cache
def marked_handlers(cls: type) -> dict[type, str]:
    """Request type -> the name of ``cls``'s method marked ``@answers`` for it (read once
    per class: handlers are looked up per request on hot paths)."""
    found: dict[type, str] = {}
    for name in dir(cls):
        for request_type in getattr(getattr(cls, name, None), "__answers__", ()):
            found[request_type] = name
    return found


class RequestTable:
    """The handlers of one scope, looked up by request type."""

    def __init__(self, owner: object, scope: Scope, *, forwarded: Handler | None = None,
                 extra_scopes: Iterable[Scope] = ()):
        """``owner``'s ``@answers`` methods; ``forwarded`` takes every request of the scope
        that declares ``forward`` and has no handler of its own. ``extra_scopes``: other
        scopes this owner also answers (the supervisor routes the provider scope)."""
        self.scope = scope
        scopes = {scope, *extra_scopes}
        self._handlers: dict[type, Handler] = {}
        for request_type, name in marked_handlers(type(owner)).items():
            if request_type.scope not in scopes:
                raise RoutingError(f"{type(owner).__name__}.{name} answers "
                                   f"{request_type.__name__}, a {request_type.scope} request")
            self._handlers[request_type] = getattr(owner, name)
        for request_type in REQUEST_TYPES:
            if request_type.scope not in scopes or request_type in self._handlers:
                continue
            if forwarded is not None and request_type.forward:
                self._handlers[request_type] = forwarded
            else:
                raise RoutingError(f"no handler in {type(owner).__name__} for "
                                   f"{request_type.__name__} ({request_type.scope} scope)")

    def handler(self, request: Request) -> Handler | None:
        return self._handlers.get(type(request))

    def __contains__(self, request_type: type) -> bool:
        return request_type in self._handlers


def target_session(request: Request) -> str | None:
    """The session a session-scope request is for: its ``session_id``, or the session
    its ``approval_id`` names (approval ids start with their session's id)."""
    session_id = getattr(request, "session_id", None)
    if session_id is None and hasattr(request, "approval_id"):
        session_id = approval_session(request.approval_id)
    return session_id
