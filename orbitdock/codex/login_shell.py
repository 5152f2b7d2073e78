"""How long the user's login shell takes to start, and a warning when that is slow.

codex runs every command as ``bash -lc`` and snapshots the user's login shell on every
thread start and resume, so each of them pays for ``~/.profile`` and ``~/.bashrc``. With
many sessions a heavy start-up becomes a large share of the machine: on the project's
2-core VM, whose ``~/.bashrc`` runs ``pyenv init -`` (~110 ms a shell), 50 busy sessions
completed about a quarter fewer turns than with a bare shell, and recovered from a
crashed app-server more slowly (docs/RELIABILITY.md, "A heavy login shell"). Worse,
``pyenv init -`` runs ``pyenv rehash``, which takes a lock file: concurrent login shells
outside codex's sandbox (the snapshots) queue on it.

The codex pool runs ``check`` once, on a thread of its own (which owns the shell's child
process), when it starts its first app-server; the result is logged, as a warning when
the start-up takes longer than ``codex.login_shell_warn_ms``, and ``orbitdockctl codex``
shows it.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

RC_FILES = (".bashrc", ".bash_profile", ".profile", ".zshrc", ".zprofile")
# ``pyenv init -`` without ``--no-rehash`` (its eval'd output runs ``pyenv rehash``;
# ``pyenv init --path`` only sets PATH)
PYENV_REHASH = re.compile(r"pyenv\s+init\b(?!.*(--no-rehash|--path))")
RUNS = 2  # the first start may read cold files; the faster of two is the steady cost


@dataclass(frozen=True)
class ShellStart:
    shell: str
    seconds: float | None  # the faster run; None when the shell failed or timed out
    error: str | None = None
    rehash_lines: tuple[str, ...] = ()  # "<file>:<line>: <text>" of each ``pyenv init -``


def user_shell(env: Mapping[str, str]) -> str:
    """The login shell codex snapshots: the passwd entry's, else $SHELL, else /bin/sh."""
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    return shell or env.get("SHELL") or "/bin/sh"


def rehash_lines(home: str | None) -> tuple[str, ...]:
    """Lines of the shell's start-up files that make every login shell run a rehash."""
    if not home:
        return ()
    found = []
    for name in RC_FILES:
        try:
            text = (Path(home) / name).read_text(errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.lstrip().startswith("#") and PYENV_REHASH.search(line):
                found.append(f"~/{name}:{number}: {line.strip()}")
    return tuple(found)


def measure(env: Mapping[str, str], timeout_s: float, shell: str | None = None) -> ShellStart:
    """Start ``shell -lc true`` with codex's environment ``RUNS`` times, each bounded."""
    shell = shell or user_shell(env)
    rehash = rehash_lines(env.get("HOME"))
    best: float | None = None
    for _ in range(RUNS):
        started = time.monotonic()
        try:
            done = subprocess.run([shell, "-lc", "true"], env=dict(env), cwd=env.get("HOME"),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return ShellStart(shell, None, f"did not finish within {timeout_s:g} s", rehash)
        except OSError as exc:
            return ShellStart(shell, None, f"could not start: {exc}", rehash)
        if done.returncode != 0:
            return ShellStart(shell, None, f"exited with code {done.returncode}", rehash)
        elapsed = time.monotonic() - started
        best = elapsed if best is None else min(best, elapsed)
    return ShellStart(shell, best, None, rehash)


def warning(start: ShellStart, warn_s: float) -> str | None:
    """The operator's warning for ``start``, or None when the shell starts fast enough."""
    slow = start.seconds is None or start.seconds > warn_s
    if not slow and not start.rehash_lines:
        return None
    cost = (f"takes {start.seconds * 1000:.0f} ms to start" if start.seconds is not None
            else start.error)
    text = f"the login shell ({start.shell} -lc) {cost}."
    if slow:
        text += (" codex starts one for every command and every thread start or resume, so "
                 "with many sessions this is a large part of the CPU; a lighter ~/.profile / "
                 "~/.bashrc speeds every session up.")
    if start.rehash_lines:
        text += (" These lines run `pyenv rehash`, which takes a lock that concurrent shells "
                 "queue on; add --no-rehash: " + "; ".join(start.rehash_lines))
    return text


def check(env: Mapping[str, str], warn_s: float, timeout_s: float) -> ShellStart:
    """Measure and log (a warning when slow); returns what it measured."""
    start = measure(env, timeout_s)
    text = warning(start, warn_s)
    if text is not None:
        logger.warning("codex: %s", text)
    else:
        logger.info("codex: the login shell (%s -lc) starts in %.0f ms", start.shell,
                    (start.seconds or 0.0) * 1000)
    return start


def check_in_background(env: Mapping[str, str], warn_s: float, timeout_s: float,
                        on_done: Callable[[ShellStart], None] | None = None) -> threading.Thread:
    """``check`` on a daemon thread of its own (it owns the shell's child process); the
    result goes to ``on_done`` on that thread, which should only hand it on."""

    env_copy = dict(env)  # the caller's mapping may change while the thread runs

    def run() -> None:
        start = check(env_copy, warn_s, timeout_s)
        if on_done is not None:
            on_done(start)

    thread = threading.Thread(target=run, name="codex-login-shell-check", daemon=True)
    thread.start()
    return thread
