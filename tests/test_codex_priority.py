"""App-server priorities: when ``codex.session_nice`` can work, and how it is applied."""

from __future__ import annotations

import shutil

from orbitdock.codex.priority import app_server_argv, nice_is_inert


def flag(tmp_path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value)
    return str(path)


def test_nice_is_inert_only_with_autogroup_and_a_session_each(tmp_path):
    on, off = flag(tmp_path, "on", "1\n"), flag(tmp_path, "off", "0\n")
    assert nice_is_inert(10, shared_session=False, flag=on)
    assert not nice_is_inert(10, shared_session=True, flag=on)  # one session: nice counts
    assert not nice_is_inert(10, shared_session=False, flag=off)  # no autogroup
    assert not nice_is_inert(10, shared_session=False, flag=str(tmp_path / "missing"))
    assert not nice_is_inert(0, shared_session=False, flag=on)  # nothing asked


def test_app_server_argv_is_niced_only_when_asked():
    plain = app_server_argv("/x/codex", "a=1; b=2", 0)
    assert plain == ["/x/codex", "app-server", "-c", "a=1", "-c", "b=2"]
    nice = shutil.which("nice")  # without nice(1) the daemon warns and runs codex as is
    niced = app_server_argv("/x/codex", "", 10)
    assert niced == ([nice, "-n", "10"] if nice else []) + ["/x/codex", "app-server"]
