"""The README's two commands are the ones CI and users run."""

from conftest import REPO


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    test_command = "./bin/setup && .venv/bin/python -m pytest"
    assert test_command in readme
    assert "\n" + test_command + "\n" in ci
    assert "./bin/setup && .venv/bin/orbitdockd --demo" in readme
