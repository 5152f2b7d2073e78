"""Direct Claude sessions end to end: orbitdock creates and drives the real claude 2.1.332
(``claude -p`` stream-json, one process per session) against the scripted Messages API,
and clients see it on the ZeroMQ protocol as they see a Codex session. Every wait is
bounded; each test has its own claude sandbox and daemon home.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import psutil
import pytest

from claude_env import (
    API_KEY,
    CLAUDE,
    EventTap,
    claude_env,
    make_box,
    needs_claude,
    wait_session,
)
from conftest import wait_until
from orbitdock.client import RemoteError, find_daemon
from orbitdock.protocol import messages as m

TURN_S = 60.0  # one claude turn against the sim takes ~1 s; generous for a loaded machine


@pytest.fixture
def direct(daemon_factory, sim, tmp_path):
    """``start(**config)`` -> (daemon, client, box): a daemon whose environment runs claude
    offline against ``sim``; the box's settings carry no hooks (only direct sessions)."""
    box = make_box(tmp_path / "claude")
    box.settings.write_text("{}")

    def start(*args: str, home: Path | None = None, **config: str):
        env = claude_env(box, sim, tmp_path / "unused")
        env.pop("ORBITDOCK_HOME")
        env.pop("XDG_RUNTIME_DIR")  # the daemon's sockets go there: keep its own (short) one
        env["PATH"] = os.environ["PATH"]
        d = daemon_factory(*args, home=home, **env, **config)
        return d, d.client(), box

    return start


def create(client, box, **fields) -> str:
    snap = client.request(m.CreateSession(provider="claude", cwd=str(box.project), **fields),
                          timeout=TURN_S)
    return snap.session.id


def send(client, sid: str, text: str, **fields):
    return client.request(m.SendMessage(session_id=sid, content=text, **fields), timeout=TURN_S)


def turn_done(turns: int):
    return lambda s: s.turn_count >= turns and s.current_turn_id is None


def pending(client, sid: str):
    st = wait_session(client, sid, lambda s: bool(s.approvals), timeout=TURN_S)
    return st.approvals[0]


def claude_children(daemon) -> list[psutil.Process]:
    return [p for p in psutil.Process(daemon.pid).children(recursive=True)
            if p.name().startswith("claude")]


@needs_claude
def test_streamed_reply_with_thinking_usage_and_the_process_env(direct, sim):
    daemon, client, box = direct()
    tap = EventTap(find_daemon(daemon.config).events)
    try:
        sim.set_script([{"text": "Hello there, friend.", "reasoning": "Greet them.", "chunk": 4}])
        sid = create(client, box)
        snap = client.request(m.SubscribeSession(session_id=sid)).session
        assert snap.provider == "claude" and snap.integration_mode == "direct"
        assert snap.thread_id and snap.approval_policy == "default"
        time.sleep(0.2)  # the SUB's subscription reaches the XPUB
        send(client, sid, "say hello")
        st = wait_session(client, sid, turn_done(1), timeout=TURN_S)
        wait_until(lambda: any(isinstance(e, m.SessionDelta) and e.changes.work_status == "reply"
                               for e in tap.of(sid)), 5, poll=tap.pump)
    finally:
        tap.close()
    kinds = [(msg.type, msg.content) for msg in st.messages]
    assert kinds == [("user", "say hello"), ("thinking", "Greet them."),
                     ("assistant", "Hello there, friend.")]
    assert st.work_status == "reply" and st.turn_count == 1
    assert not any(msg.is_in_progress for msg in st.messages)
    # streamed: the reply grew by content_append deltas before it was finished
    appends = [e.changes.content_append for e in tap.of(sid) if isinstance(e, m.MessageUpdated)
               and isinstance(e.changes.content_append, str)]
    assert "".join(appends).endswith("friend.") and len(appends) >= 3
    usage = st.token_usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (100, 25, 15)
    assert usage.context_window > 0
    # the child carries the session id, so orbitdock's own hook forwarder skips it
    (child,) = claude_children(daemon)
    assert child.environ().get("ORBITDOCK_CLAUDE_DIRECT") == sid
    assert st.thread_id in child.cmdline()
