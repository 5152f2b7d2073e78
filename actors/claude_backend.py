"""The claude provider: Claude Code sessions orbitdock drives, and those seen through hooks.

Not an actor: the ``Provider`` the registry (``actors/providers.py``) builds. Its
``connector`` picks by the session's integration mode:

* direct (created by orbitdock): ``ClaudeDirectConnector`` (``orbitdock.claude.direct``)
  runs one ``claude -p`` stream-json process for the session. The binary is checked
  once here (``claude.binary``, ``claude.expected_version``); when it is missing or of
  another version, creates are refused with ``unavailable`` saying why, and the
  hooks still work.
* passive (started in a terminal): each ``claude`` on the machine reports through
  ``orbitdock-hook`` (``orbitdock.claude.forward``), whose ``claude_hook`` requests
  this provider hands to the ``ClaudeHooksActor`` it starts once the supervisor runs
  (``attach``); the session's connector (``ClaudeHookConnector``) answers a waiting
  PermissionRequest hook.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import pykka

from actors.claude_hooks import ClaudeHooksActor
from orbitdock.claude import modes
from orbitdock.claude.connector import ClaudeHookConnector, FlushWaiting, HookArrived
from orbitdock.claude.direct import ClaudeDirectConnector
from orbitdock.claude.install import ClaudeBinary, check_claude
from orbitdock.claude.models import ModelListFailed, ask_models
from orbitdock.config import Config
from orbitdock.connectors.base import Checked, Connector, Done, Provider, check_cwd, invalid
from orbitdock.paths import Layout
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.models import SessionState
from orbitdock.protocol.routing import ClientRequest, answers

logger = logging.getLogger(__name__)


class ClaudeProvider(Provider):
    name = "claude"
    creatable = True
    passive_connector = True

    def __init__(self, cfg: Config, lay: Layout, binary: ClaudeBinary):
        self.cfg = cfg
        self.layout = lay
        self.binary = binary
        self.actor: pykka.ActorRef | None = None

    def attach(self, supervisor: Any, persistence: Any) -> None:
        self.actor = ClaudeHooksActor.start(self.cfg, self.layout.data_dir, supervisor,
                                            persistence)

    def connector(self, state: SessionState, *,
                  script: list[dict[str, Any]] | None = None) -> Connector:
        if state.integration_mode == "passive":
            return ClaudeHookConnector(lambda: self.actor, state.id)
        return ClaudeDirectConnector(
            session_id=state.id, cwd=state.project_path or os.getcwd(),
            binary=self.binary.path or "claude", config=self.cfg.claude, env=dict(os.environ),
            model=state.model, approval_policy=state.approval_policy, thread_id=state.thread_id)

    def check_create(self, request: m.CreateSession, checked: Checked) -> None:
        if self.binary.problem is not None:
            checked(ProtocolError(ErrorCode.UNAVAILABLE,
                                  f"claude sessions cannot be created: {self.binary.problem}"))
            return
        checked(check_cwd(request.cwd) or self.check_settings(
            approval_policy=request.approval_policy, sandbox_mode=request.sandbox_mode))

    def check_config(self, *, approval_policy: str | None, sandbox_mode: str | None,
                     model: str | None, checked: Checked) -> None:
        checked(self.check_settings(approval_policy=approval_policy, sandbox_mode=sandbox_mode))

    @staticmethod
    def check_settings(*, approval_policy: str | None,
                       sandbox_mode: str | None) -> ProtocolError | None:
        """The autonomy values a Claude session takes: a Claude permission mode, or a
        Codex approval policy (mapped, ``orbitdock.claude.modes.AUTONOMY_TO_MODE``);
        Claude has no sandbox modes."""
        if approval_policy is not None and modes.permission_mode_for(approval_policy) is None:
            return invalid("approval_policy", approval_policy, modes.allowed_policies())
        if modes.permission_mode_for(approval_policy) == "bypassPermissions" and os.geteuid() == 0:
            return invalid("approval_policy", approval_policy,
                           "a mode other than bypassPermissions (claude refuses it as root)")
        if sandbox_mode is not None:
            return invalid("sandbox_mode", sandbox_mode,
                           "none (claude sessions have no sandbox modes)")
        return None

    @answers(m.ListModels)
    def list_models(self, req: ClientRequest, done: Done) -> None:
        """Claude lists its models only in a process's ``initialize`` answer: a short-lived
        child is asked, on a thread of its own (``done`` runs there)."""
        if self.binary.problem is not None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, f"claude: {self.binary.problem}")
        binary, timeout = self.binary.path or "claude", self.cfg.claude.start_timeout_s

        def ask() -> None:
            try:
                models = ask_models(binary, env=dict(os.environ), cwd=os.getcwd(),
                                    timeout_s=timeout)
            except ModelListFailed as exc:
                done(m.Error(code=str(ErrorCode.BACKEND_ERROR), message=f"claude models: {exc}"))
                return
            done(m.ModelsList(models=models))

        threading.Thread(target=ask, name="claude-models", daemon=True).start()

    @answers(m.ClaudeHook)
    def hook(self, req: ClientRequest, done: Done) -> None:
        if self.actor is None or not self.actor.is_alive():
            raise ProtocolError(ErrorCode.UNAVAILABLE, "claude hooks are not running")
        self.actor.tell(HookArrived(req, done))

    def quiesce(self) -> None:
        if self.actor is not None:
            try:
                self.actor.ask(FlushWaiting(), timeout=self.cfg.sessions.stop_timeout_s)
            except (pykka.Timeout, pykka.ActorDeadError):
                logger.error("claude hooks actor did not flush its waiting events in time")

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
    binary = check_claude(cfg.claude.binary, cfg.claude.expected_version)
    if binary.problem is not None:
        logger.warning("direct claude sessions unavailable: %s", binary.problem)
    else:
        logger.info("claude %s at %s", binary.version, binary.path)
    return ClaudeProvider(cfg, lay, binary)
