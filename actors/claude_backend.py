"""The claude provider: Claude Code sessions started in terminals, seen through hooks.

Not an actor: the ``Provider`` the registry (``actors/providers.py``) builds. Its
sessions are passive (``creatable = False``): each ``claude`` process on the machine
reports through ``orbitdock-hook`` (``orbitdock.claude.forward``), whose
``claude_hook`` requests this provider hands to the ``ClaudeHooksActor`` it starts
once the supervisor runs (``attach``). Each passive session still gets a connector
(``passive_connector``): the one that answers a waiting PermissionRequest hook.
"""

from __future__ import annotations

import logging
from typing import Any

import pykka

from actors.claude_hooks import ClaudeHooksActor
from orbitdock.claude.connector import ClaudeHookConnector, HookArrived
from orbitdock.config import Config
from orbitdock.connectors.base import Done, Provider
from orbitdock.paths import Layout
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import SessionState
from orbitdock.protocol.routing import ClientRequest, answers

logger = logging.getLogger(__name__)


class ClaudeProvider(Provider):
    name = "claude"
    creatable = False
    passive_connector = True

    def __init__(self, cfg: Config, lay: Layout):
        self.cfg = cfg
        self.layout = lay
        self.actor: pykka.ActorRef | None = None

    def attach(self, supervisor: Any, persistence: Any) -> None:
        self.actor = ClaudeHooksActor.start(self.cfg, self.layout.data_dir, supervisor,
                                            persistence)

    def connector(self, state: SessionState, *,
                  script: list[dict[str, Any]] | None = None) -> ClaudeHookConnector:
        return ClaudeHookConnector(lambda: self.actor, state.id)

    @answers(m.ClaudeHook)
    def hook(self, req: ClientRequest, done: Done) -> None:
        if self.actor is None or not self.actor.is_alive():
            raise ProtocolError(ErrorCode.UNAVAILABLE, "claude hooks are not running")
        self.actor.tell(HookArrived(req, done))

    def stop(self) -> None:
        if self.actor is not None:
            try:
                self.actor.stop(timeout=self.cfg.sessions.stop_timeout_s)
            except (pykka.Timeout, pykka.ActorDeadError):
                logger.error("claude hooks actor did not stop in time")


def claude_provider(cfg: Config, lay: Layout) -> ClaudeProvider | None:
    if not cfg.claude.enabled:
        logger.info("claude hooks disabled (claude.enabled = false)")
        return None
    return ClaudeProvider(cfg, lay)
