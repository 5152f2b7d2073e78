"""SessionLife: the supervisor's view of a session, and the moves between its states."""

from __future__ import annotations

import enum


class SessionLife(enum.StrEnum):
    """The supervisor's view of a session; ``SupervisorActor._move`` (actors/supervisor.py)
    is the one place it changes (each state is where the session is in its maps).

    LIVE: ``sessions[sid]`` is its actor, which runs (or died with its SessionCrashed on
      the way: a message that finds it dead moves it to RESTARTING at once).
    RESTARTING: between a crash and its restart (the restart policy's backoff): no actor;
      what comes for it is held, in order, in ``restarting[sid]``.
    FAILED: its actor could not start even disabled; ``failed[sid]`` says why, and what
      comes for it is refused until the daemon restarts.

    Moves (LIFE_MOVES): a new or restored session is spawned LIVE; LIVE -> RESTARTING on a
    crash; RESTARTING -> LIVE when restarted (the held messages go to the new actor);
    RESTARTING -> FAILED when it cannot be restarted (the held messages are refused).
    """

    LIVE = "live"
    RESTARTING = "restarting"
    FAILED = "failed"


LIFE_MOVES: dict[SessionLife | None, frozenset[SessionLife]] = {
    None: frozenset({SessionLife.LIVE}),  # not known yet
    SessionLife.LIVE: frozenset({SessionLife.RESTARTING}),
    SessionLife.RESTARTING: frozenset({SessionLife.RESTARTING, SessionLife.LIVE,
                                       SessionLife.FAILED}),
    SessionLife.FAILED: frozenset(),
}
