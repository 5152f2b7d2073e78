"""Ids people can type: unique prefixes of session and approval ids, and shell completion."""

from __future__ import annotations

import os
import subprocess
import sys

from cli_env import CLI_TIMEOUT_S, create_scripted, ctl, ctl_json, wait_for_state
from conftest import REPO


def shortest_unique_prefix(target: str, others: list[str]) -> str:
    for n in range(len("od-") + 1, len(target) + 1):
        if not any(o.startswith(target[:n]) for o in others):
            return target[:n]
    raise AssertionError("no unique prefix")


def complete(home, words: str) -> list[str]:
    """What bash completion offers for the last (incomplete) word of ``words``."""
    parts = words.split(" ")
    env = dict(os.environ, ORBITDOCK_HOME=str(home), _ORBITDOCKCTL_COMPLETE="bash_complete",
               COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1))
    proc = subprocess.run([sys.executable, "-m", "orbitdock.cli"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]


def test_session_prefixes_and_ambiguity(daemon):
    home = daemon.home
    first = create_scripted(daemon, name="first")
    second = create_scripted(daemon, name="second")
    prefix = shortest_unique_prefix(first, [second])
    assert ctl_json(home, "session", "show", prefix)["id"] == first
    assert ctl_json(home, "session", "show", first)["id"] == first  # whole ids still work
    bare = shortest_unique_prefix(second, [first]).removeprefix("od-")
    assert ctl_json(home, "session", "show", bare)["id"] == second  # "od-" is optional

    ambiguous = ctl(home, "session", "show", "od-", check=False)
    assert ambiguous.returncode == 1
    assert first in ambiguous.stderr and second in ambiguous.stderr
    ambiguous_json = ctl(home, "--json", "session", "end", "od-", check=False)
    assert ambiguous_json.returncode == 1 and '"ambiguous_id"' in ambiguous_json.stderr
    assert ctl_json(home, "session", "show", first)["status"] == "active"  # nothing was ended


def test_approval_prefixes(daemon):
    home = daemon.home
    sid = create_scripted(daemon, script=[{"approval": "exec", "command": "make one"},
                                          {"approval": "exec", "command": "make two"}])
    ctl(home, "session", "send", sid, "go")
    [pending] = wait_for_state(home, sid, lambda s: len(s["approvals"]) == 1)["approvals"]
    short = shortest_unique_prefix(sid, []) + ":a" + pending["id"].rpartition(":a")[2][:1]
    assert "applied" in ctl(home, "approve", short).stdout  # `<session prefix>:a<n>`

    wait_for_state(home, sid, lambda s: s["work_status"] == "reply")
    ctl(home, "session", "send", sid, "again")
    [pending] = wait_for_state(home, sid, lambda s: len(s["approvals"]) == 1)["approvals"]
    assert "decline" in ctl(home, "deny", pending["id"][:len(sid) + 4]).stdout  # a plain prefix


def test_shell_completion_offers_live_ids(daemon):
    home = daemon.home
    first = create_scripted(daemon)
    second = create_scripted(daemon, script=[{"approval": "exec", "command": "ls"}])
    ctl(home, "session", "send", second, "go")
    [pending] = wait_for_state(home, second, lambda s: len(s["approvals"]) == 1)["approvals"]

    assert {"session", "watch", "approve"} <= set(complete(home, "orbitdockctl "))
    assert set(complete(home, "orbitdockctl session show od-")) == {first, second}
    assert complete(home, f"orbitdockctl watch {first[:-2]}") == [first]
    assert complete(home, "orbitdockctl approve ") == [pending["id"]]
