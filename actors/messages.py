"""Messages actors ``tell`` each other (plain data; never shared, never mutated after send)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orbitdock.connectors.events import BackendEvent, ThreadStarted
from orbitdock.protocol.routing import ClientRequest
from orbitdock.store.commands import SaveRolloutOffset


@dataclass(slots=True)
class Backend:
    """A backend event for one session actor (from its connector's thread).

    ``at`` is when the backend produced it (wall clock): it becomes the wire
    events' ``ts``, so clients can measure backend -> client latency.
    """

    event: BackendEvent
    at: float = 0.0


@dataclass(slots=True)
class RolloutBatch:
    """Lines the watcher parsed from one rollout file, for one passive session.

    ``offset`` is committed in the same transaction as the rows the session actor
    derives from ``events`` (exactly-once import). ``timestamps``, parallel to
    ``events``, holds when codex wrote each event's line (None: not recorded), so
    imported history keeps its own times instead of the time of the import.
    """

    session_id: str
    events: list[BackendEvent]
    offset: SaveRolloutOffset
    meta: ThreadStarted | None = None  # from session_meta; creates the session if new
    timestamps: list[float | None] | None = None
    provider: str = "codex"  # whose transcript this is (the provider of a new session)


@dataclass(slots=True)
class RolloutIdle:
    """The watcher saw no new lines for inactivity_timeout_s: end the passive session."""

    session_id: str


@dataclass(slots=True)
class SessionCrashed:
    """A session actor's on_failure tells the supervisor, which restarts it by policy.

    ``undelivered`` is what was still queued in the dead actor's inbox (client
    requests, rollout batches), oldest first: the successor gets it before anything
    sent to the session after the crash.
    """

    session_id: str
    error: str
    undelivered: list[Any] = field(default_factory=list)
    at_start: bool = False  # its on_start raised (a restart may fail the same way)


@dataclass(slots=True)
class Idle:
    """A session actor became passivable (ended, or nothing in flight) and was last busy
    at ``since`` (``time.monotonic()``): the supervisor schedules ``PassivateNow`` for
    ``since`` plus the idle time (``sessions.passivate_after_s``, or for an ended
    session ``passivate_ended_after_s``). Told once per spell, not per message."""

    session_id: str
    since: float
    ended: bool


@dataclass(slots=True)
class PassivateNow:
    """The supervisor holds the session's messages: release the actor if it is still idle."""


@dataclass(slots=True)
class PassivateDeclined:
    """The actor was busy since its ``Idle``: ``since`` is its last activity (the supervisor
    schedules again), or None when it is no longer passivable (it says ``Idle`` again later)."""

    session_id: str
    since: float | None
    ended: bool = False


@dataclass(slots=True)
class SessionPassivated:
    """A session actor released its thread and backend; its state is in the database.

    ``undelivered`` is what reached its inbox while it stopped (a watcher's batch, a
    late backend event), oldest first: it re-activates the session at once.
    """

    session_id: str
    undelivered: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class ForSession:
    """A message for a session whose actor was passivated, handed to the supervisor
    (e.g. a backend event that raced the passivation): delivered after re-activation."""

    session_id: str
    message: Any


@dataclass(slots=True)
class Tick:
    """Periodic timer message (flush, heartbeat-style housekeeping)."""

    name: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class OwnerOf:
    """Asked of the supervisor: the direct session that owns this backend thread id, or
    None (the Claude hooks of a claude orbitdock drives itself are not a passive session)."""

    thread_id: str


@dataclass(slots=True)
class ThreadOwned:
    """A direct session told the supervisor its codex thread id (its rollout is not passive)."""

    thread_id: str
    session_id: str


@dataclass(slots=True)
class ProviderAnswer:
    """A provider's reply to a provider-scope request, handed back to the supervisor
    (providers answer on their own threads; the supervisor's outlet sends it)."""

    request: ClientRequest
    reply: Any  # an orbitdock.protocol.messages.Reply


@dataclass(slots=True)
class Checked:
    """A provider's verdict on a request's values (a create, a config change): ``error``
    None to go ahead. Providers may answer on their own threads, so it comes by tell."""

    request: ClientRequest
    error: Any  # orbitdock.protocol.errors.ProtocolError | None
    then: dict[str, Any] = field(default_factory=dict)  # what to do when it passed


@dataclass(slots=True)
class SessionDiscarded:
    """A new session's backend refused to start it: its create was answered with the
    error and nothing of it was saved; the supervisor forgets it and stops its actor."""

    session_id: str


@dataclass(slots=True)
class RestartNow:
    """The restart backoff of a crashed session ran out: start its successor."""

    session_id: str


@dataclass(slots=True)
class AttachWatcher:
    """The daemon tells the supervisor where the watcher is (it starts after the gateway)."""

    watcher: Any


@dataclass(slots=True)
class RouteRequest:
    """The watcher asks which actor a passive session has (orbitdock.rollout.routes)."""

    session_id: str
    reply_to: Any  # the watcher's ActorRef


@dataclass(slots=True)
class RouteAnswer:
    """The supervisor's answer, sent once every earlier watcher message was passed on.

    ``ref`` None: no such session. ``passive`` False: the thread belongs to a direct
    session, so its rollout keeps going through the supervisor.
    """

    session_id: str
    ref: Any | None
    passive: bool = True


# ---------------------------------------------------------------- persistence reads (ask)
# The persistence actor answers these (each flushes first: never ask on the event path).


@dataclass(frozen=True, slots=True)
class Flush:
    pass


@dataclass(frozen=True, slots=True)
class Stats:
    pass


@dataclass(frozen=True, slots=True)
class LoadSessions:
    limit: int | None = None
    active_only: bool = False


@dataclass(frozen=True, slots=True)
class LoadSession:
    session_id: str


@dataclass(frozen=True, slots=True)
class LoadMessages:
    session_id: str
    limit: int
    before_seq: int | None = None


@dataclass(frozen=True, slots=True)
class CountMessages:
    session_id: str


@dataclass(frozen=True, slots=True)
class LoadPendingApprovals:
    session_id: str


@dataclass(frozen=True, slots=True)
class LoadTurns:
    session_id: str


@dataclass(frozen=True, slots=True)
class LoadRolloutOffsets:
    pass


@dataclass(frozen=True, slots=True)
class GetConfigValue:
    key: str
