"""The config snippets that point an agent at ``orbitdock-mcp``
(``orbitdockctl mcp config codex|claude``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

AGENTS = ("codex", "claude")


def server_command() -> tuple[str, list[str]]:
    """The installed console script when it is on PATH or beside this Python, else this
    Python running the module (a checkout without the script)."""
    beside = Path(sys.executable).with_name("orbitdock-mcp")
    found = shutil.which("orbitdock-mcp") or (str(beside) if beside.exists() else None)
    if found:
        return found, []
    return sys.executable, ["-m", "orbitdock.mcp.server"]


def snippet(agent: str, *, home: str, read_only: bool = False) -> str:
    command, args = server_command()
    args = args + (["--read-only"] if read_only else [])
    env = {"ORBITDOCK_HOME": home}
    if agent == "codex":  # CODEX_HOME/config.toml
        lines = ["[mcp_servers.orbitdock]", f"command = {json.dumps(command)}",
                 f"args = {json.dumps(args)}", "", "[mcp_servers.orbitdock.env]",
                 f"ORBITDOCK_HOME = {json.dumps(home)}"]
        return "\n".join(lines) + "\n"
    if agent == "claude":  # .mcp.json of a project (or `claude mcp add-json orbitdock ...`)
        return json.dumps({"mcpServers": {"orbitdock": {
            "type": "stdio", "command": command, "args": args, "env": env}}}, indent=2) + "\n"
    raise ValueError(f"unknown agent {agent!r}; expected one of {', '.join(AGENTS)}")
