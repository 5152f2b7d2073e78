"""Who answers a request: every request class declares one of these (``Request.scope``)."""

from __future__ import annotations

import enum


class Scope(enum.StrEnum):
    GATEWAY = "gateway"  # the gateway loop itself (status, the list)
    SUPERVISOR = "supervisor"  # the supervisor actor (creating sessions)
    SESSION = "session"  # one session's actor, found by session id or approval id
    WATCHER = "watcher"  # the rollout watcher actor
    PROVIDER = "provider"  # a provider by name (models, backend status)
    PERSISTENCE = "persistence"  # the persistence actor (history pages)
