"""`session steer`, and `session send` steering a running turn unless --new-turn."""

from __future__ import annotations

from cli_env import create_scripted, ctl, wait_for_state


def steered(proc) -> bool:
    """Did the daemon steer the running turn (not start a new one)?"""
    return proc.returncode == 0 and "steered the running turn" in proc.stdout


def test_send_steers_a_working_session_and_new_turn_does_not(daemon):
    home = daemon.home
    sid = create_scripted(daemon, script=[{"hold": True}])
    ctl(home, "session", "send", sid, "start something long")
    wait_for_state(home, sid, lambda s: s["work_status"] == "working")

    assert steered(ctl(home, "session", "steer", sid, "also do this", check=False))
    assert steered(ctl(home, "session", "send", sid, "and this", check=False))
    new_turn = ctl(home, "session", "send", sid, "a new turn", "--new-turn", check=False)
    assert new_turn.returncode == 1 and "already running" in new_turn.stderr

    ctl(home, "session", "interrupt", sid)
    wait_for_state(home, sid, lambda s: s["work_status"] != "working")
    idle = ctl(home, "session", "send", sid, "hello")  # not working: a new turn
    assert idle.stdout.strip() == "sent"
