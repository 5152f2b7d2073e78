"""`orbitdockd --demo`: a Codex session against the project's scripted model, no API key.

Before the daemon starts, ``prepare_demo`` starts the scripted model server on
127.0.0.1 and writes a private CODEX_HOME that points codex at it (under the data
dir, or in the user's cache when the data dir is under the temp dir, where codex
refuses its helper binaries); the daemon's app-server
processes inherit it. After start, ``start_demo`` acts as an ordinary client:
it creates one Codex session whose first turn streams reasoning and text, makes
a plan, runs a command that needs your approval and writes a patch with a diff,
plus two scripted sessions so the list has something to sort.

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


class DemoEnvironment:
    def __init__(self, sim: Any, home: Path, workspace: Path, codex_ok: bool):
        self.sim, self.home, self.workspace, self.codex_ok = sim, home, workspace, codex_ok

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()


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
    return DemoEnvironment(sim, base, workspace, codex_ok)


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
            if not env.codex_ok:
                logger.warning("demo: codex is not installed (run bin/setup); "
                               "only scripted sessions were created")
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
