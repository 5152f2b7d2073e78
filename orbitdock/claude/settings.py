"""orbitdock's hooks in Claude Code's ``settings.json``: merge in, take out, report.

Pure (text in, text out) so ``orbitdockctl hooks`` and the tests share it. A hook
entry is orbitdock's when its command runs ``orbitdock-hook``; everything else in
the file — the user's own hooks, other keys, their order — is kept as it is. The
file is re-serialised only when something changes (``json`` keeps key order;
indentation is the file's own when it can be told, else 2).

Registered: every event of ``orbitdock.claude.hooks.HANDLED_EVENTS`` with no matcher
(all tools); each runs ``<command> EVENT``. PermissionRequest blocks (orbitdock
answers it), so its timeout covers ``claude.permission_wait_s``; the others return
in milliseconds.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from orbitdock.claude.hooks import BLOCKING_EVENTS, HANDLED_EVENTS

MARKER = "orbitdock-hook"
DEFAULT_TIMEOUT_S = 10  # claude kills a hook after this (non-blocking events)


class SettingsError(ValueError):
    """The settings file is not a JSON object, or its hooks are not in a known shape."""


def is_ours(entry: Any) -> bool:
    command = str(entry.get("command", "")) if isinstance(entry, dict) else ""
    return MARKER in command or FORWARD_SCRIPT in command


FORWARD_SCRIPT = "orbitdock/claude/forward.py"


def default_command() -> str | None:
    """The fastest way to run the forwarder from this install: this venv's Python with
    ``-S`` on ``forward.py`` (see that module), else the ``orbitdock-hook`` console
    script beside this Python or on PATH."""
    python = Path(sys.executable)
    forward = Path(__file__).resolve().parent / "forward.py"
    if (python.parent.parent / "pyvenv.cfg").exists() and forward.exists():
        return f"{shlex.quote(str(python))} -S {shlex.quote(str(forward))}"
    beside = python.parent / "orbitdock-hook"
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("orbitdock-hook")


def _load(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError("not a JSON object")
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError("'hooks' is not an object")
    return data


def _indent(text: str) -> int:
    match = re.search(r"\n( +)\"", text)
    return len(match.group(1)) if match else 2


def _dump(data: dict[str, Any], text: str) -> str:
    return json.dumps(data, indent=_indent(text), ensure_ascii=False) + "\n"


def _strip(groups: Any) -> tuple[Any, bool]:
    """A hook event's matcher groups without orbitdock's entries; whether any went."""
    if not isinstance(groups, list):
        return groups, False
    changed = False
    kept = []
    for group in groups:
        if isinstance(group, dict) and isinstance(group.get("hooks"), list):
            inner = [h for h in group["hooks"] if not is_ours(h)]
            if len(inner) != len(group["hooks"]):
                changed = True
                if not inner:
                    continue
                group = {**group, "hooks": inner}
        kept.append(group)
    return kept, changed


def entry(command: str, event: str, permission_wait_s: float) -> dict[str, Any]:
    timeout = DEFAULT_TIMEOUT_S
    if event in BLOCKING_EVENTS:
        timeout = int(permission_wait_s) + 30  # orbitdock answers (or gives up) first
    return {"type": "command", "command": f"{command} {event}", "timeout": timeout}


def install(text: str, command: str, permission_wait_s: float) -> str:
    """``text`` with orbitdock's hooks in (each event's group of ours replaced or added
    last); unchanged text when they already are exactly so."""
    data = _load(text)
    hooks = dict(data.get("hooks") or {})
    for event in HANDLED_EVENTS:
        groups, _ = _strip(hooks.get(event, []))
        if not isinstance(groups, list):
            raise SettingsError(f"hooks.{event} is not a list")
        hooks[event] = groups + [{"hooks": [entry(command, event, permission_wait_s)]}]
    wanted = {**data, "hooks": hooks}
    if wanted == data:
        return text
    return _dump(wanted, text)


def uninstall(text: str) -> str:
    """``text`` without orbitdock's hooks (an event left with none is removed)."""
    data = _load(text)
    if "hooks" not in data:
        return text
    hooks = {}
    changed = False
    for event, groups in data["hooks"].items():
        kept, went = _strip(groups)
        changed |= went
        if went and not kept:
            continue
        hooks[event] = kept
    if not changed:
        return text
    return _dump({**data, "hooks": hooks}, text)


def status(text: str) -> dict[str, Any]:
    """Which events run orbitdock's hook, and with which command."""
    data = _load(text)
    events: dict[str, str] = {}
    for event, groups in (data.get("hooks") or {}).items():
        for group in groups if isinstance(groups, list) else []:
            for hook in (group.get("hooks") or []) if isinstance(group, dict) else []:
                if is_ours(hook):
                    events[event] = str(hook.get("command"))
    missing = [e for e in HANDLED_EVENTS if e not in events]
    return {"installed": events, "missing": missing, "complete": not missing}


def diff(before: str, after: str, path: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        fromfile=path, tofile=f"{path} (with orbitdock hooks)"))
