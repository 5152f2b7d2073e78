"""bin/setup says what it is doing, one line per step, and nothing when all is in place.

Run on copies of the tree whose install step fails at once (an npm that cannot reach
its registry, a package index on a closed port), so the steps show without a download.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import REPO

SETUP_TIMEOUT_S = 90


def copy_of_the_tree(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def run_setup(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(root / "bin" / "setup")], cwd="/",
                          env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=SETUP_TIMEOUT_S)


def test_nothing_to_do_is_silent():
    done = run_setup(REPO)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_tools_step_is_announced_and_its_failure_shown(tmp_path):
    root = copy_of_the_tree(tmp_path / "repo")
    (root / ".venv").symlink_to(REPO / ".venv")  # the Python step has nothing to do
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "npm").write_text("#!/bin/sh\necho 'npm ERR! network unreachable' >&2\nexit 1\n")
    (fake_bin / "npm").chmod(0o755)
    out = run_setup(root, PATH=f"{fake_bin}:{os.environ['PATH']}")
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0] == ("bin/setup: installing codex 0.169.0 and claude-code 2.1.332 into "
                        ".tools/ (~350 MB download, ~790 MB on disk)…")
    assert lines[1].startswith("bin/setup: FAILED: npm install ")
    assert lines[2] == "npm ERR! network unreachable"
    assert out.stdout == ""


def test_python_steps_are_announced(tmp_path):
    root = copy_of_the_tree(tmp_path / "repo")
    out = run_setup(root, PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0",
                    PIP_TIMEOUT="2", PIP_NO_CACHE_DIR="1", PIP_FIND_LINKS="")
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0].startswith("bin/setup: creating .venv with Python 3.")
    assert lines[0].endswith("…")
    assert lines[1] == ("bin/setup: installing orbitdock and its Python dependencies into "
                        ".venv (~60 MB on disk)…")
    assert lines[2].startswith("bin/setup: FAILED: .venv/bin/python -m pip install")
