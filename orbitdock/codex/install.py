"""Find the codex binary orbitdock drives, preferring the version bin/setup pinned.

The native binary inside the npm package is preferred over the npm launcher: the
launcher is a node process that only spawns that same binary, costing one process
and about 44 MB per app-server (reference §6).
"""

from __future__ import annotations

import logging
import platform
import re
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent  # parent of the orbitdock package
TOOLS_DIR = REPO_ROOT / ".tools"  # the npm prefix bin/setup installs into

# npm's platform package and the Rust target triple inside it, per machine architecture.
_NATIVE_PACKAGES = {
    "x86_64": ("codex-linux-x64", "x86_64-unknown-linux-musl"),
    "aarch64": ("codex-linux-arm64", "aarch64-unknown-linux-musl"),
}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

# `codex --version` answers in ~10 ms; a hang means a broken binary, not a slow one.
VERSION_TIMEOUT_S = 10.0

_VERSION_RE = re.compile(r"\b(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)\b")


class CodexNotFound(RuntimeError):
    """No usable codex binary; the message says how to get one."""


def _native_candidates(tools_dir: Path) -> list[Path]:
    machine = platform.machine().lower()
    machine = _MACHINE_ALIASES.get(machine, machine)
    ordered = [machine] + [arch for arch in _NATIVE_PACKAGES if arch != machine]
    candidates = []
    for arch in ordered:
        if arch in _NATIVE_PACKAGES:
            package, triple = _NATIVE_PACKAGES[arch]
            candidates.append(tools_dir / "node_modules" / "@openai" / package / "vendor"
                              / triple / "bin" / "codex")
    return candidates


def _is_executable(path: Path) -> bool:
    return path.is_file() and bool(path.stat().st_mode & 0o111)


def find_codex(binary: str = "") -> Path:
    """The codex to run: ``binary`` (config ``codex.binary``) if set, else the pinned one.

    Search order without ``binary``: the native binary in ``<repo>/.tools``, the npm
    launcher in ``<repo>/.tools/node_modules/.bin``, then ``codex`` on PATH.
    """
    if binary:
        explicit = Path(binary).expanduser()
        if not explicit.is_absolute() and explicit.parent == Path("."):
            found = shutil.which(binary)
            explicit = Path(found) if found else explicit
        if _is_executable(explicit):
            return explicit
        raise CodexNotFound(f"codex.binary = {binary!r} is not an executable file")
    for candidate in [*_native_candidates(TOOLS_DIR),
                      TOOLS_DIR / "node_modules" / ".bin" / "codex"]:
        if _is_executable(candidate):
            return candidate
    on_path = shutil.which("codex")
    if on_path:
        return Path(on_path)
    raise CodexNotFound(
        f"codex not found: nothing under {TOOLS_DIR} and no `codex` on PATH. "
        f"Run {REPO_ROOT / 'bin' / 'setup'} to install the pinned version, "
        "or set codex.binary in the orbitdock config.")


def codex_version(path: str | Path) -> str:
    """The version `codex --version` reports ("codex-cli 0.169.0" -> "0.169.0")."""
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CodexNotFound(f"{path} --version failed: {exc}") from exc
    output = (done.stdout or "") + (done.stderr or "")
    match = _VERSION_RE.search(output)
    if done.returncode != 0 or not match:
        raise CodexNotFound(
            f"{path} --version exited {done.returncode} with unexpected output: {output.strip()!r}")
    return match.group(1)


def check_codex(binary: str = "", expected: str = "") -> tuple[Path, str, str | None]:
    """Find codex and read its version; the warning is set when it is not ``expected``.

    A different version is a warning, not an error: the app-server protocol changes
    between releases, so things may break, but the user may know what they are doing.
    """
    path = find_codex(binary)
    version = codex_version(path)
    warning = None
    if expected and version != expected:
        warning = (f"codex at {path} is version {version}, but orbitdock is tested with "
                   f"{expected}; the app-server protocol changes between releases. "
                   f"Run {REPO_ROOT / 'bin' / 'setup'} for the pinned version.")
        logger.warning("%s", warning)
    return path, version, warning
