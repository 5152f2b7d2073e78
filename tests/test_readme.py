"""The README's two commands are the ones CI and users run; what it says is true."""

import re

import click

from conftest import REPO
from orbitdock.cli import cli
from orbitdock.config import Config


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    test_command = "./bin/setup && .venv/bin/python -m pytest"
    assert test_command in readme
    assert "\n" + test_command + "\n" in ci
    assert "./bin/setup && .venv/bin/orbitdockd --demo" in readme


def test_readme_covers_the_first_five_minutes():
    """How to stop it, where things live, a real account, what bin/setup installs (with
    the sizes bin/setup announces), and every orbitdockctl command it shows exists."""
    readme = (REPO / "README.md").read_text()
    setup = (REPO / "bin" / "setup").read_text()
    for heading in ("## The first five minutes", "## What bin/setup installs",
                    "## Using a real account", "## Stopping it", "## Where things live"):
        assert heading in readme
    sizes = re.findall(r"~\d+ MB[a-z ]*[a-z]", setup)  # "~350 MB download", "~60 MB on disk"
    assert len(sizes) == 3
    for size in sizes:
        assert size in readme, size
    cfg = Config()
    assert f"`<data dir>/{cfg.persistence.db_file}`" in readme
    assert f"`<data dir>/{cfg.logging.file}`" in readme
    assert f"rotated at {cfg.logging.max_bytes // 1048576} MiB, {cfg.logging.backups} old" in readme
    assert f"`client.shutdown_timeout_s`, {cfg.client.shutdown_timeout_s:g} s" in readme
    assert ".tools/node_modules/.bin/codex login" in readme
    assert "orbitdockctl shutdown" in readme
    shown = re.findall(r"(?:^|`|\.venv/bin/)orbitdockctl (?:--json )?([a-z]+)(?: ([a-z]+))?",
                       readme, re.M)
    assert {"logs", "shutdown", "service"} <= {name for name, _ in shown}
    for name, sub in shown:
        assert name in cli.commands, name
        if sub and isinstance(cli.commands[name], click.Group):
            assert sub in cli.commands[name].commands, f"{name} {sub}"
