"""What the watcher tests share: a private CODEX_HOME, the scripted model, a daemon with
its watcher on that home, and helpers to write rollouts and read what the daemon made of
them. The fixtures are imported by the test modules (``from watcher_env import ...``).

CODEX_HOME lives under the repository (codex refuses its helper binaries under the temp
dir) and is removed afterwards. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from conftest import REPO, TEST_ROOT, wait_until
from orbitdock.client import RemoteError
from orbitdock.codex.home import clean_env, write_sim_codex_home
from orbitdock.codex.install import CodexNotFound, find_codex
from orbitdock.protocol import messages as m
from orbitdock.rollout.parser import parse_time

try:
    CODEX: Path | None = find_codex()
    NO_CODEX = ""
except CodexNotFound as exc:  # pragma: no cover - bin/setup installs it
    CODEX, NO_CODEX = None, str(exc)


def needs_codex(test):
    """Mark a test as running the real codex; skip it cleanly when there is none."""
    return pytest.mark.codex(pytest.mark.skipif(CODEX is None, reason=NO_CODEX)(test))


FIXTURES = Path(__file__).parent / "fixtures" / "rollouts"
FIXTURE_THREAD = "01a212c9-8339-7d13-a385-a834fc49dc32"  # text_turn.jsonl, codex exec 0.169
CODEX_TIMEOUT_S = 60  # one `codex exec` against the sim takes about a second
SHOW_S = 10.0  # a line codex wrote shows in the daemon within this (inotify + coalesce)
CLI_TIMEOUT_S = 30


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture
def codex_home():
    home = TEST_ROOT / f"watch-{uuid.uuid4().hex[:8]}"
    (home / "sessions").mkdir(parents=True)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def workspace(tmp_path):
    """A git checkout on a named branch: the passive session must report that branch."""
    ws = tmp_path / "checkout"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "feature/passive-watch", str(ws)], check=True,
                   capture_output=True, timeout=CLI_TIMEOUT_S)
    return ws


@pytest.fixture
def start_daemon(daemon_factory, tmp_path, codex_home):
    """start_daemon(sim=None, **watcher_config): orbitdockd with its watcher on codex_home.

    Stopped here, before codex_home is removed: a running app-server would otherwise
    write into the directory again after it was deleted.
    """
    started = []

    def start(sim=None, **config):
        env = (write_sim_codex_home(codex_home, sim.url) if sim is not None
               else {"CODEX_HOME": str(codex_home)})
        env.update({f"ORBITDOCK_WATCHER__{k.upper()}": str(v) for k, v in config.items()})
        started.append(daemon_factory(home=tmp_path / "home", watcher=True, **env))
        return started[-1]

    yield start
    for d in started:
        d.close_clients()
        d.stop()


def codex_exec(codex_home, sim, cwd, *args) -> str:
    """Run ``codex exec --json`` like a user in a terminal; returns the thread id."""
    env = clean_env(None, write_sim_codex_home(codex_home, sim.url))
    proc = subprocess.run([str(CODEX), "exec", "--json", "--skip-git-repo-check", *args],
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=CODEX_TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout.splitlines()[0])["thread_id"]


def session(client, sid):
    """The session's state, or None while it does not exist (yet)."""
    try:
        return client.request(m.SubscribeSession(session_id=sid)).session
    except RemoteError as exc:
        if exc.code == "not_found":
            return None
        raise


def wait_session(client, sid, predicate=lambda st: True, timeout=SHOW_S):
    holder = {}

    def ok():
        holder["st"] = session(client, sid)
        return holder["st"] is not None and predicate(holder["st"])
    assert wait_until(ok, timeout, interval=0.05), holder.get("st")
    return holder["st"]


def watcher_status(client) -> dict:
    return client.request(m.RolloutsStatus()).report


def file_status(client, path) -> dict | None:
    return next((f for f in watcher_status(client)["files"] if f["path"] == str(path)), None)


def day_dir(codex_home, when=None) -> Path:
    day = codex_home / "sessions" / time.strftime("%Y/%m/%d", time.localtime(when))
    day.mkdir(parents=True, exist_ok=True)
    return day


def rollout_path(codex_home, thread_id, when=None) -> Path:
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(when))
    return day_dir(codex_home, when) / f"rollout-{stamp}-{thread_id}.jsonl"


def fixture_lines(name="text_turn.jsonl") -> list[bytes]:
    return (FIXTURES / name).read_bytes().splitlines(keepends=True)


def another_turn(lines: list[bytes], n: int) -> bytes:
    """text_turn's turn again with fresh ids and texts (codex appending turn ``n``)."""
    text = b"".join(lines[1:]).decode()
    for old, new in (("01a212c9-835e-7f31-a4ba-5a71fc41fb2a", f"turn-again-{n}"),
                     ("01a212c9-8391-7f60-a2fe-61388ac506a1", f"user-again-{n}"),
                     ('"msg_0"', f'"msg-again-{n}"'), ("Say hello", f"Say hello again {n}"),
                     ("Hello from the mock", f"Hello once more {n}")):
        text = text.replace(old, new)
    return text.encode()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def line_times(path: Path, item_type: str) -> list[float]:
    """Timestamps of a rollout's ``item_completed`` lines of one item type, in file order."""
    out = []
    for line in path.read_bytes().splitlines():
        obj = orjson.loads(line)
        payload = obj.get("payload") or {}
        if payload.get("type") == "item_completed" and payload["item"]["type"] == item_type:
            out.append(parse_time(obj["timestamp"]))
    return out


def ctl(home, *args):
    env = dict(os.environ, ORBITDOCK_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "orbitdock.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    assert proc.returncode == 0, f"orbitdockctl {args} -> {proc.returncode}: {proc.stderr}"
    return proc.stdout
