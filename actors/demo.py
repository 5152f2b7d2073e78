"""`orbitdockd --demo`: a Codex session against the project's scripted model, no API key.

Before the daemon starts, ``prepare_demo`` starts the scripted model server on
127.0.0.1 and writes a private CODEX_HOME that points codex at it (under the data
dir, or in the user's cache when the data dir is under the temp dir, where codex
refuses its helper binaries); the daemon's app-server
processes inherit it. After start, ``start_demo`` acts as an ordinary client:
it creates one Codex session whose first turn streams reasoning and text, makes
a plan, runs a command that needs your approval and writes a patch with a diff,
plus two scripted sessions so the list has something to sort. When the pinned
``claude`` is installed, a Claude Code session driven by orbitdock runs beside it,
against a second scripted model (the Messages API; a private CLAUDE_CONFIG_DIR
under the demo home): its turn asks to run a command and to write a file, each
waiting for your approval.

The daemon runs the demo on a home of its own (``<data dir>/demo``, see
``actors.daemon``), so demo sessions never land in the user's database.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from orbitdock.client import Client, ClientError, Endpoints
from orbitdock.config import Config
from orbitdock.paths import Layout
from orbitdock.protocol import messages as m

logger = logging.getLogger("orbitdockd.demo")

DEMO_PROMPT = "Add a greeting module to this project and show me the plan."
DEMO_SCRIPT: list[dict[str, Any]] = [
    {"reasoning": "The user wants a greeting module. Plan first, then look around.",
     "call": "update_plan", "args": {"explanation": "Demo plan", "plan": [
         {"step": "Look at the workspace", "status": "in_progress"},
         {"step": "Write greeting.py", "status": "pending"},
         {"step": "Summarise", "status": "pending"}]}},
    {"call": "exec_command", "args": {"cmd": "ls -la && echo checked > checked.txt",
                                      "login": False}},
    {"custom": "apply_patch", "input": "*** Begin Patch\n*** Add File: greeting.py\n"
     "+def greet(name: str) -> str:\n+    return f\"Hello, {name}!\"\n*** End Patch\n"},
    {"call": "update_plan", "args": {"plan": [
        {"step": "Look at the workspace", "status": "completed"},
        {"step": "Write greeting.py", "status": "completed"},
        {"step": "Summarise", "status": "in_progress"}]}},
    {"text": "Done. I added `greeting.py` with a `greet(name)` function. The command and the "
             "patch both waited for your approval in orbitdock before they ran.", "chunk": 6},
]
# Later turns: the scripted model answers plainly.
FOLLOW_UP_REPLIES = 200
FOLLOW_UP = {"text": "(scripted model) I read your message; this demo has no real model behind "
                     "it, but everything around it is real.", "chunk": 8}
DEMO_APPROVAL_POLICY = "untrusted"  # so the command and the patch both ask first

CLAUDE_PROMPT = "Write a NOTES.md for this project, after looking at what is there."
CLAUDE_SCRIPT: list[dict[str, Any]] = [
    {"reasoning": "Look at the workspace first, then write the notes.",
     "call": "Bash", "args": {"command": "ls -la", "description": "List the workspace"}},
    {"call": "Write", "args": {"file_path": "NOTES.md", "content":
                               "# Notes\n\nWritten by the orbitdock demo's Claude session.\n"}},
    {"text": "I listed the workspace and wrote `NOTES.md`. Both steps waited for your "
             "approval in orbitdock, as Claude's own prompts would have.", "chunk": 6},
]
CLAUDE_FOLLOW_UP = {"text": "(scripted model) I read your message; this Claude session has no "
                            "real model behind it, but the claude process is real.", "chunk": 8}
CLAUDE_API_KEY = "sk-ant-demo-0000000000"  # the scripted model takes any key


class DemoEnvironment:
    def __init__(self, sim: Any, home: Path, workspace: Path, codex_ok: bool,
                 claude_sim: Any = None):
        self.sim, self.home, self.workspace, self.codex_ok = sim, home, workspace, codex_ok
        self.claude_sim = claude_sim  # None: claude is not installed

    def stop(self) -> None:
        for sim in (self.sim, self.claude_sim):
            if sim is not None:
                sim.stop()


def _prepare_claude(cfg: Config, base: Path, workspace: Path) -> Any:
    """The scripted Messages API and a private CLAUDE_CONFIG_DIR (onboarding answered, the
    workspace trusted) that the daemon's claude processes inherit; None without claude."""
    import json

    from orbitdock.claude.install import check_claude
    from orbitdock.sim.server import SimServer

    found = check_claude(cfg.claude.binary, cfg.claude.expected_version)
    if found.problem:
        logger.warning("demo without a Claude session: %s", found.problem)
        return None
    config_dir = base / "claude-config"
    config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (config_dir / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark",
        "customApiKeyResponses": {"approved": [CLAUDE_API_KEY[-20:]], "rejected": []},
        "projects": {str(workspace): {"hasTrustDialogAccepted": True}}}))
    sim = SimServer(CLAUDE_SCRIPT + [CLAUDE_FOLLOW_UP] * FOLLOW_UP_REPLIES).start()
    os.environ.update({"ANTHROPIC_BASE_URL": sim.anthropic_url,
                       "ANTHROPIC_API_KEY": CLAUDE_API_KEY,
                       "CLAUDE_CONFIG_DIR": str(config_dir)})
    logger.info("demo: scripted Claude model at %s, CLAUDE_CONFIG_DIR %s",
                sim.anthropic_url, config_dir)
    return sim


def prepare_demo(cfg: Config, lay: Layout) -> DemoEnvironment:
    from orbitdock.codex.home import outside_temp_dir, write_sim_codex_home
    from orbitdock.codex.install import CodexNotFound, find_codex
    from orbitdock.sim.server import SimServer

    base = lay.data_dir  # the demo's own home
    workspace = base / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    try:
        find_codex(cfg.codex.binary)
        codex_ok = True
    except CodexNotFound as exc:
        logger.warning("demo without codex: %s", exc)
        codex_ok = False
    sim = SimServer(DEMO_SCRIPT + [FOLLOW_UP] * FOLLOW_UP_REPLIES).start()
    codex_home = outside_temp_dir(base / "codex-home")
    env = write_sim_codex_home(codex_home, sim.url)
    # The app-server processes the daemon starts inherit these (CODEX_HOME, the dummy key).
    os.environ.update(env)
    cfg.paths.codex_home = str(codex_home)
    logger.info("demo: scripted model at %s, CODEX_HOME %s%s", sim.url, codex_home,
                "" if codex_home.is_relative_to(base) else
                " (in your cache: codex refuses its helper binaries under the temp dir)")
    return DemoEnvironment(sim, base, workspace, codex_ok,
                           _prepare_claude(cfg, base, workspace))


def start_demo(endpoints: Endpoints, env: DemoEnvironment, timeout: float) -> threading.Thread:
    thread = threading.Thread(target=_run, args=(endpoints, env, timeout), name="demo",
                              daemon=True)
    thread.start()
    return thread


def _run(endpoints: Endpoints, env: DemoEnvironment, timeout: float) -> None:
    try:
        with Client(endpoints, timeout=timeout) as client:
            for name, text in (("scripted: finished", "hello from a scripted session"),
                               ("scripted: asks you", "/ask Ship it today?")):
                sid = client.request(m.CreateSession(provider="scripted", cwd=str(env.workspace),
                                                     name=name)).session.id
                client.request(m.SendMessage(session_id=sid, content=text))
            if env.claude_sim is not None:
                _start_claude(client, env)
            if not env.codex_ok:
                logger.warning("demo: codex is not installed (run bin/setup); "
                               "no codex session was created")
                return
            sid = client.request(m.CreateSession(
                provider="codex", cwd=str(env.workspace), model="gpt-5.5",
                approval_policy=DEMO_APPROVAL_POLICY, sandbox_mode="workspace-write",
                name="demo: greeting module")).session.id
            client.request(m.SendMessage(session_id=sid, content=DEMO_PROMPT))
            logger.info("demo: codex session %s started. Follow it with `orbitdockctl watch %s`"
                        " (orbitdockctl finds the demo, whose home is %s, when no other daemon "
                        "runs); approve with `orbitdockctl session show %s` then "
                        "`orbitdockctl approve <approval id>`.", sid, sid, env.home, sid)
    except ClientError as exc:
        logger.error("demo failed: %s", exc)


def _start_claude(client: Client, env: DemoEnvironment) -> None:
    try:
        sid = client.request(m.CreateSession(
            provider="claude", cwd=str(env.workspace), approval_policy="default",
            name="demo: claude writes notes")).session.id
        client.request(m.SendMessage(session_id=sid, content=CLAUDE_PROMPT))
        logger.info("demo: claude session %s started; it waits for your approvals too", sid)
    except ClientError as exc:  # the codex part of the demo still runs
        logger.error("demo: the Claude session failed: %s", exc)
