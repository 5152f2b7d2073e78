"""The providers this daemon knows, by name: adding one is a package plus one line here.

Each entry names a builder ``(config, layout) -> Provider | None`` (None: the backend
is not available on this machine, e.g. its binary is missing; the daemon runs
without it and says so). Builders are imported only when the daemon starts them.
"""

from __future__ import annotations

import importlib
import logging

from orbitdock.config import Config
from orbitdock.connectors.base import Provider
from orbitdock.paths import Layout

logger = logging.getLogger(__name__)

REGISTRY: dict[str, str] = {
    "scripted": "orbitdock.connectors.scripted:scripted_provider",
    "codex": "actors.codex_backend:codex_provider",
    "claude": "actors.claude_backend:claude_provider",
}


def start_providers(cfg: Config, lay: Layout) -> dict[str, Provider]:
    """Build every registered provider that is available, in registry order."""
    providers: dict[str, Provider] = {}
    for name, target in REGISTRY.items():
        module_name, _, builder = target.partition(":")
        provider = getattr(importlib.import_module(module_name), builder)(cfg, lay)
        if provider is None:
            logger.warning("provider %s unavailable in this daemon", name)
            continue
        if provider.name != name:
            raise RuntimeError(f"provider registered as {name!r} calls itself {provider.name!r}")
        providers[name] = provider
    return providers
