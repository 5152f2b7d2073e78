"""The login shell check: a real bash started with a throw-away HOME, every run bounded."""

from __future__ import annotations

import logging
import os
import time

import pytest

from actors.codex_pool import CodexPoolActor
from conftest import wait_until
from orbitdock.codex import login_shell
from orbitdock.codex.pool_messages import Describe, ListModels
from orbitdock.config import CodexConfig

BASH = "/bin/bash"
TIMEOUT_S = 10.0
pytestmark = pytest.mark.skipif(not os.path.exists(BASH), reason="needs /bin/bash")


def home_with(tmp_path, bashrc: str):
    (tmp_path / ".bashrc").write_text(bashrc)
    (tmp_path / ".profile").write_text('[ -f ~/.bashrc ] && . ~/.bashrc\n')
    return {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def test_a_bare_shell_passes_quietly(tmp_path):
    start = login_shell.measure(home_with(tmp_path, "true\n"), TIMEOUT_S, shell=BASH)
    assert start.error is None and start.seconds is not None and start.seconds < 1.0
    assert login_shell.warning(start, 1.0) is None


def test_a_slow_start_up_is_timed_and_warned_about(tmp_path):
    start = login_shell.measure(home_with(tmp_path, "sleep 0.2\n"), TIMEOUT_S, shell=BASH)
    assert start.seconds is not None and start.seconds >= 0.2  # each run sleeps once
    text = login_shell.warning(start, 0.05)
    assert text is not None and f"{BASH} -lc" in text and "ms to start" in text


def test_pyenv_rehash_lines_are_named_and_no_rehash_ones_are_not(tmp_path):
    env = home_with(tmp_path, 'command -v pyenv >/dev/null && eval "$(pyenv init -)"\n'
                              '# eval "$(pyenv init -)"  (a comment)\n'
                              'eval "$(pyenv init - --no-rehash)"\n'
                              'eval "$(pyenv init --path)"\n')
    start = login_shell.measure(env, TIMEOUT_S, shell=BASH)
    assert start.rehash_lines == ('~/.bashrc:1: command -v pyenv >/dev/null && '
                                  'eval "$(pyenv init -)"',)
    text = login_shell.warning(start, 10.0)  # fast, but the rehash is worth a warning
    assert text is not None and "--no-rehash" in text and "~/.bashrc:1" in text
    assert "large part of the CPU" not in text  # fast: only the lock is worth saying


def test_a_hanging_or_failing_shell_is_a_clear_result_not_a_hang(tmp_path):
    began = time.monotonic()
    hung = login_shell.measure(home_with(tmp_path, "sleep 30\n"), 0.5, shell=BASH)
    assert hung.seconds is None and "within 0.5 s" in hung.error
    assert time.monotonic() - began < 5
    failed = login_shell.measure(home_with(tmp_path, "exit 7\n"), TIMEOUT_S, shell=BASH)
    assert failed.error == "exited with code 7"
    missing = login_shell.measure({"HOME": str(tmp_path)}, TIMEOUT_S, shell="/no/such/shell")
    assert missing.error.startswith("could not start")
    assert "could not start" in login_shell.warning(missing, 1.0)


def test_the_pool_checks_once_with_codexs_environment(tmp_path, caplog):
    """The first app-server start runs the check with the env the pool gives codex."""
    caplog.set_level(logging.INFO, logger="orbitdock.codex.login_shell")
    env = {**home_with(tmp_path, "sleep 0.1\n"), "SHELL": BASH}
    binary = tmp_path / "fake-codex"
    binary.write_text("#!/bin/sh\nexec sleep 30\n")  # never initializes: enough to start
    binary.chmod(0o755)
    pool = CodexPoolActor.start(CodexConfig(login_shell_warn_ms=50, start_timeout_s=30),
                                env=env, binary=binary)
    try:
        pool.tell(ListModels(lambda models, error: None))  # makes it start a process
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and not any(
                "login shell" in r.getMessage() for r in caplog.records):
            time.sleep(0.02)
        warnings = [r for r in caplog.records if "login shell" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        assert "ms to start" in warnings[0].getMessage()
        reports: list[dict] = []

        def shell_reported() -> bool:  # asks again each time; the answer comes on its own
            pool.tell(Describe(reply=reports.append))
            return bool(reports) and reports[-1]["login_shell"] is not None
        assert wait_until(shell_reported, TIMEOUT_S)
        shell = reports[-1]["login_shell"]  # what `orbitdockctl codex` shows
        assert shell["shell"] == BASH and shell["ms"] >= 100 and "ms to start" in shell["warning"]
        assert [p["state"] for p in reports[-1]["processes"]] == ["spare"]  # hosts nothing
    finally:
        pool.stop(timeout=10)
