"""Wiring of the Codex backend into the daemon: the pinned binary, the pool, the factory.

Not an actor: a small holder the daemon builds before the supervisor. It checks
the codex binary (loudly when missing or not the pinned version), starts the
``CodexPoolActor`` and hands the supervisor a connector factory and a model
lister. App-server processes inherit the daemon's environment plus CODEX_HOME,
so a user's own Codex config, login and providers apply.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

import pykka

from actors.codex_pool import CodexPoolActor
from orbitdock.codex.connector import CodexConnector
from orbitdock.codex.install import CodexNotFound, check_codex
from orbitdock.codex.pool_messages import Describe, ListModels
from orbitdock.config import Config
from orbitdock.paths import Layout
from orbitdock.protocol.models import ModelOption, SessionState

logger = logging.getLogger(__name__)

ModelsCallback = Callable[[list[ModelOption] | None, str | None], None]
ReportCallback = Callable[[dict[str, Any]], None]


class CodexBackend:
    def __init__(self, cfg: Config, pool: pykka.ActorRef, binary: str, version: str,
                 codex_home: str):
        self.cfg = cfg
        self.pool = pool
        self.binary = binary
        self.version = version
        self.codex_home = codex_home

    def connector_factory(self, state: SessionState) -> CodexConnector:
        return CodexConnector(self.pool, cwd=state.project_path or os.getcwd(), model=state.model,
                              approval_policy=state.approval_policy,
                              sandbox_mode=state.sandbox_mode, resume_thread_id=state.thread_id,
                              session_id=state.id, config=self.cfg.codex)

    def request_models(self, reply: ModelsCallback) -> None:
        """``reply`` runs on a codex reader thread: it must only hand the result on."""
        self.pool.tell(ListModels(reply=reply))

    def request_status(self, reply: ReportCallback) -> None:
        """``reply`` runs on the pool's thread with ``pool_report``'s report plus the binary."""
        about = {"binary": self.binary, "version": self.version, "codex_home": self.codex_home,
                 "expected_version": self.cfg.codex.expected_version}
        self.pool.tell(Describe(reply=lambda report: reply({**about, **report})))

    def stop(self) -> None:
        try:
            self.pool.stop(timeout=self.cfg.codex.stop_timeout_s * 2)
        except (pykka.Timeout, pykka.ActorDeadError):
            logger.error("codex pool did not stop in time")


def codex_backend(cfg: Config, lay: Layout) -> CodexBackend | None:
    try:
        path, version, warning = check_codex(cfg.codex.binary, cfg.codex.expected_version)
    except CodexNotFound as exc:
        logger.warning("codex sessions unavailable: %s", exc)
        return None
    except Exception as exc:  # a broken binary must not keep the daemon from starting
        logger.error("codex sessions unavailable: could not run codex: %s", exc)
        return None
    if warning:
        logger.warning("codex version mismatch: %s", warning)
    env: dict[str, Any] = dict(os.environ, CODEX_HOME=str(lay.codex_home))
    pool = CodexPoolActor.start(cfg.codex, env=env, binary=path)
    logger.info("codex %s at %s (CODEX_HOME %s)", version, path, lay.codex_home)
    return CodexBackend(cfg, pool, str(path), version, str(lay.codex_home))
