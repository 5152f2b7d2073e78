"""What one run is asked to do (``RunConfig``), and facts about the run's surroundings."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from orbitdock.harness import REPO
from orbitdock.load.model import ModelParams
from orbitdock.load.turns import DriverParams


class DaemonDied(RuntimeError):
    """The daemon exited without this tool killing it: a crash, the worst failure."""


@dataclass
class RunConfig:
    sessions: int = 5
    duration: float = 20.0
    subscribers: int = 2
    passive: int = 0
    provider: str = "codex"
    kill_daemon: float = 0.0  # seconds between kill -9 cycles (0: none)
    kill_codex: float = 0.0  # seconds between app-server kills (0: none)
    slow_subscriber: bool = False
    slow_pause: float = 0.0  # 0: half the duration
    fuzz: int = 0
    attach: bool = False
    threads_per_process: int | None = None
    separate_sessions: bool = False  # model and subscribers each in a session of its own
    daemon_env: dict[str, str] = field(default_factory=dict)
    driver: DriverParams = field(default_factory=DriverParams)
    model: ModelParams = field(default_factory=ModelParams)
    passive_interval: float = 1.0
    grace_s: float = 1.0  # see verify: published-not-committed allowance at a kill
    drain_s: float = 60.0
    progress_s: float = 1.0
    resume_limit_s: float = 2.0
    floor: bool = True
    quiet: bool = False
    keep: bool = False
    seed: int = 1


def code_version() -> str:
    """``git describe --always --dirty`` of the checkout the daemon runs from (or "?")."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip() or "?"
