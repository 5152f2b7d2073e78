"""`orbitdockctl hooks install|uninstall|status` on real files: the user's own hooks and
every other byte survive, installs are idempotent, uninstall gives the file back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from orbitdock.claude.hooks import HANDLED_EVENTS

CTL = str(Path(sys.executable).parent / "orbitdockctl")

# The user's file as they wrote it: 4-space indent, their own hooks, other keys.
USER_SETTINGS = """{
    "model": "opus",
    "permissions": {"allow": ["Bash(ls:*)"], "deny": []},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/audit.sh"}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done", "timeout": 5}]}]
    },
    "env": {"FOO": "bar"}
}
"""


def ctl(*args: str, config_dir: Path, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CLAUDE_CONFIG_DIR=str(config_dir), ORBITDOCK_HOME=str(home))
    return subprocess.run([CTL, *args], env=env, capture_output=True, text=True, timeout=30)


def test_install_keeps_the_users_hooks_and_uninstall_gives_the_file_back(tmp_path):
    config = tmp_path / "claude-config"
    config.mkdir()
    settings = config / "settings.json"
    settings.write_text(USER_SETTINGS)
    home = tmp_path / "od"

    dry = ctl("hooks", "install", "--dry-run", config_dir=config, home=home)
    assert dry.returncode == 0, dry.stderr
    assert "+" in dry.stdout and "forward.py PermissionRequest" in dry.stdout
    assert settings.read_text() == USER_SETTINGS  # nothing written

    done = ctl("hooks", "install", config_dir=config, home=home)
    assert done.returncode == 0, done.stderr
    data = json.loads(settings.read_text())
    original = json.loads(USER_SETTINGS)
    for key in ("model", "permissions", "env"):
        assert data[key] == original[key]
    # the user's own entries come first, unchanged; ours follow
    assert data["hooks"]["PreToolUse"][0] == original["hooks"]["PreToolUse"][0]
    assert data["hooks"]["Stop"][0] == original["hooks"]["Stop"][0]
    for event in HANDLED_EVENTS:
        command = data["hooks"][event][-1]["hooks"][0]["command"]
        assert command.endswith(f"orbitdock/claude/forward.py {event}")
        assert " -S " in command
        assert f"ORBITDOCK_HOME=\"{home.resolve()}\"" in command
    assert data["hooks"]["PermissionRequest"][-1]["hooks"][0]["timeout"] > 60
    backups = list(config.glob("settings.json.orbitdock-backup-*"))
    assert len(backups) == 1 and backups[0].read_text() == USER_SETTINGS

    installed = settings.read_text()
    again = ctl("hooks", "install", config_dir=config, home=home)
    assert again.returncode == 0 and "already installed" in again.stdout
    assert settings.read_text() == installed
    assert len(list(config.glob("settings.json.orbitdock-backup-*"))) == 1

    status = ctl("--json", "hooks", "status", config_dir=config, home=home)
    assert json.loads(status.stdout)["complete"] is True

    gone = ctl("hooks", "uninstall", config_dir=config, home=home)
    assert gone.returncode == 0, gone.stderr
    assert settings.read_text() == USER_SETTINGS  # byte for byte
    status = ctl("--json", "hooks", "status", config_dir=config, home=home)
    assert json.loads(status.stdout)["installed"] == {}


def test_uninstall_after_the_user_edited_keeps_their_edit(tmp_path):
    config = tmp_path / "cfg"
    config.mkdir()
    settings = config / "settings.json"
    settings.write_text(USER_SETTINGS)
    home = tmp_path / "od"
    assert ctl("hooks", "install", config_dir=config, home=home).returncode == 0
    data = json.loads(settings.read_text())
    data["theme"] = "light"  # the user changed something after the install
    settings.write_text(json.dumps(data, indent=2))
    assert ctl("hooks", "uninstall", config_dir=config, home=home).returncode == 0
    after = json.loads(settings.read_text())
    assert after == dict(json.loads(USER_SETTINGS), theme="light")


def test_project_settings_and_a_broken_file(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    home = tmp_path / "od"
    done = ctl("hooks", "install", "--project", str(project), config_dir=tmp_path / "no",
               home=home)
    assert done.returncode == 0, done.stderr
    path = project / ".claude" / "settings.json"
    assert set(json.loads(path.read_text())["hooks"]) == set(HANDLED_EVENTS)
    path.write_text("{ not json")
    broken = ctl("hooks", "install", "--project", str(project), config_dir=tmp_path / "no",
                 home=home)
    assert broken.returncode == 1 and "not JSON" in broken.stderr + broken.stdout
    assert path.read_text() == "{ not json"
