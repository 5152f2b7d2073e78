"""Find the claude binary direct sessions run, preferring the version bin/setup pinned.

The npm package's ``bin/claude`` (``.tools/node_modules/.bin/claude``) is the native
binary itself, not a node launcher. A binary that is missing or of another version
than ``claude.expected_version`` is not an error for the daemon (terminal sessions
are still seen through hooks): ``ClaudeBinary.problem`` says why a direct session
cannot be created, and ``create_session`` is refused with it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orbitdock.codex.install import REPO_ROOT, TOOLS_DIR

VERSION_TIMEOUT_S = 10.0  # `claude --version` answers in ~45 ms; a hang is a broken binary
_VERSION_RE = re.compile(r"\b(\d+\.\d+\.\d+)\b")


@dataclass(frozen=True)
class ClaudeBinary:
    path: str | None
    version: str | None
    problem: str | None  # why direct sessions cannot run (None: they can)


def find_claude(binary: str = "") -> Path | None:
    """``binary`` (config ``claude.binary``; a bare name is looked up on PATH), else the
    pinned one under ``<repo>/.tools``, else ``claude`` on PATH."""
    if binary:
        path = Path(binary).expanduser()
        if not path.is_absolute() and path.parent == Path("."):
            found = shutil.which(binary)
            path = Path(found) if found else path
        return path if path.is_file() else None
    pinned = TOOLS_DIR / "node_modules" / ".bin" / "claude"
    if pinned.exists():
        return pinned
    found = shutil.which("claude")
    return Path(found) if found else None


def check_claude(binary: str = "", expected: str = "") -> ClaudeBinary:
    path = find_claude(binary)
    if path is None:
        where = f"claude.binary = {binary!r} is not a file" if binary else (
            f"claude not found: nothing under {TOOLS_DIR} and no `claude` on PATH")
        return ClaudeBinary(None, None, f"{where}; run {REPO_ROOT / 'bin' / 'setup'} for the "
                            "pinned version, or set claude.binary in the orbitdock config")
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ClaudeBinary(str(path), None, f"{path} --version failed: {exc}")
    match = _VERSION_RE.search(done.stdout or "")
    if done.returncode != 0 or not match:
        return ClaudeBinary(str(path), None, f"{path} --version exited {done.returncode}: "
                            f"{(done.stdout + done.stderr).strip()[:200]!r}")
    version = match.group(1)
    if expected and version != expected:
        return ClaudeBinary(str(path), version, (
            f"claude at {path} is version {version}, but orbitdock drives {expected} (its "
            f"stream-json control protocol changes between releases); run "
            f"{REPO_ROOT / 'bin' / 'setup'}, or set claude.expected_version = \"\" to try it"))
    return ClaudeBinary(str(path), version, None)
