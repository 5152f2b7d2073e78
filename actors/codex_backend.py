"""The codex provider: the pinned binary, the pool of app-servers, a connector per session.

Not an actor: the ``Provider`` the registry (``actors/providers.py``) builds before
the supervisor. It checks the codex binary (loudly when missing or not the pinned
version), starts the ``CodexPoolActor``, makes each direct session's connector and
answers the codex provider requests (models, the pool's status). App-server
processes inherit the daemon's environment plus CODEX_HOME, so a user's own Codex
config, login and providers apply.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pykka

from actors.codex_pool import CodexPoolActor
from orbitdock.codex.connector import CodexConnector
from orbitdock.codex.install import CodexNotFound, check_codex
from orbitdock.codex.pool_messages import Describe, ListModels
from orbitdock.config import Config
from orbitdock.codex.mapping import APPROVAL_POLICIES, SANDBOX_POLICIES
from orbitdock.connectors.base import Checked, Done, Provider, check_cwd, invalid
from orbitdock.paths import Layout
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import SessionState
from orbitdock.protocol.routing import ClientRequest, answers

logger = logging.getLogger(__name__)


class CodexProvider(Provider):
    name = "codex"

    def __init__(self, cfg: Config, pool: pykka.ActorRef, binary: str, version: str,
                 codex_home: str):
        self.cfg = cfg
        self.pool = pool
        self.binary = binary
        self.version = version
        self.codex_home = codex_home

    def connector(self, state: SessionState, *,
                  script: list[dict[str, Any]] | None = None) -> CodexConnector:
        return CodexConnector(self.pool, cwd=state.project_path or os.getcwd(), model=state.model,
                              approval_policy=state.approval_policy,
                              sandbox_mode=state.sandbox_mode, resume_thread_id=state.thread_id,
                              session_id=state.id, config=self.cfg.codex,
                              archived=state.is_archived, effort=state.effort)

    def check_create(self, request: m.CreateSession, checked: Checked) -> None:
        error = check_cwd(request.cwd) or self.check_settings(
            sandbox_mode=request.sandbox_mode, approval_policy=request.approval_policy)
        if error is not None or request.model is None:
            checked(error)
            return
        self.check_model(request.model, checked)

    def check_config(self, *, approval_policy: str | None, sandbox_mode: str | None,
                     model: str | None, checked: Checked) -> None:
        error = self.check_settings(sandbox_mode=sandbox_mode, approval_policy=approval_policy)
        if error is not None or model is None:
            checked(error)
            return
        self.check_model(model, checked)

    @staticmethod
    def check_settings(*, sandbox_mode: str | None, approval_policy: str | None):  # noqa: ANN205
        if sandbox_mode is not None and sandbox_mode not in SANDBOX_POLICIES:
            return invalid("sandbox_mode", sandbox_mode, SANDBOX_POLICIES)
        if approval_policy is not None and approval_policy not in APPROVAL_POLICIES:
            return invalid("approval_policy", approval_policy, APPROVAL_POLICIES)
        return None

    def check_model(self, model: str, checked: Checked) -> None:
        """Against the backend's own catalog (``model/list``, cached by the pool)."""

        def verdict(models: Any, error: str | None) -> None:
            if models is None:
                checked(ProtocolError(ErrorCode.BACKEND_ERROR,
                                      f"cannot check the model: model/list failed: {error}"))
            elif model not in {option.id for option in models} | {o.model for o in models}:
                checked(invalid("model", model, [option.id for option in models]))
            else:
                checked(None)

        self.pool.tell(ListModels(reply=verdict))

    @answers(m.ListModels)
    def list_models(self, req: ClientRequest, done: Done) -> None:
        """The pool asks an app-server (``model/list``); ``done`` runs on its reader thread."""

        def reply(models: Any, error: str | None) -> None:
            done(m.ModelsList(models=models) if models is not None else m.Error(
                code=str(ErrorCode.BACKEND_ERROR), message=f"model/list failed: {error}"))

        self.pool.tell(ListModels(reply=reply))

    @answers(m.GetCodexStatus)
    def status(self, req: ClientRequest, done: Done) -> None:
        """``pool_report``'s report plus the binary; ``done`` runs on the pool's thread."""
        about = {"binary": self.binary, "version": self.version, "codex_home": self.codex_home,
                 "expected_version": self.cfg.codex.expected_version}
        self.pool.tell(Describe(reply=lambda report: done(m.CodexStatus(
            report={**about, **report}))))

    def stop(self) -> None:
        try:
            self.pool.stop(timeout=self.cfg.codex.stop_timeout_s * 2)
        except (pykka.Timeout, pykka.ActorDeadError):
            logger.error("codex pool did not stop in time")


def codex_provider(cfg: Config, lay: Layout) -> CodexProvider | None:
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
    return CodexProvider(cfg, pool, str(path), version, str(lay.codex_home))
