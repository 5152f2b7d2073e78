"""`orbitdockctl --help` and README.md's "Using it" section name the same commands."""

from __future__ import annotations

import re

import click

from conftest import REPO
from orbitdock.cli import cli


def using_it_block() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Using it"):]
    block = section[section.index("```sh\n") + 6:section.index("```", section.index("```sh") + 5)]
    return [line for line in block.splitlines() if line.startswith("orbitdockctl ")]


def words(line: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z-]*", line.split("#")[0]))


def test_every_command_of_the_help_is_in_the_readme_and_back():
    lines = using_it_block()
    top = {line.split()[1] for line in lines}
    for name, command in cli.commands.items():
        assert any(name in words(line) for line in lines), f"README lacks `{name}`"
        if isinstance(command, click.Group):
            mentioned = set().union(*(words(line) for line in lines
                                      if line.split()[1] == name))
            missing = set(command.commands) - mentioned
            assert not missing, f"README lacks `{name} {sorted(missing)}`"
    for line in lines:
        first = line.split()[1]
        assert first.startswith("-") or first in cli.commands, f"no command {first!r}: {line}"
        if isinstance(cli.commands.get(first), click.Group):
            for sub in line.split()[2].split("|"):
                assert sub in cli.commands[first].commands, f"no `{first} {sub}`: {line}"
    assert {"--version", "-h"} <= set(" ".join(lines).split())
    assert "status" in top and "watch" in top
