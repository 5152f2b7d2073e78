"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against a real bridge and daemon with scripted sessions.

Playwright's own browser download is not used (``executable_path`` is the system one).
Without chromium the tests skip, except under ``CI=true``, where they fail. Screenshots go
to ``.test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from codex_daemon_env import codex_daemon  # noqa: F401  (a fixture, found by name)
from conftest import wait_until
from orbitdock.protocol import messages as m
from ws_env import REPO, BridgeProcess

pytestmark = pytest.mark.timeout(240)

ARTIFACTS = REPO / ".test-artifacts"
WAIT_MS = 30_000  # generous: the machine running the suite is often loaded
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chrome logs a failed (re)connection attempt as a console error; expected only while the
# test itself has the bridge down.
RECONNECT_NOISE = ("WebSocket connection to", "ERR_CONNECTION_REFUSED")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install -y chromium); "
                        "the browser tests must run in CI")
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def load_dashboard(context, url: str, sent: list[dict] | None = None):
    """A page of ``context`` on the dashboard at ``url``, connected; and the list its
    console errors and page errors go to. ``sent``: gets every frame the page sends."""
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    if sent is not None:
        page.on("websocket", lambda ws: ws.on(
            "framesent", lambda payload: sent.append(json.loads(payload))))
    page.goto(url + "/")
    page.wait_for_selector('#conn[data-state="open"]')
    return page, errors


@pytest.fixture
def dashboard(daemon_factory, browser):
    daemon = daemon_factory()
    bridge = BridgeProcess(daemon.home).start()
    contexts = []

    def open_page(**context_args):
        context = browser.new_context(**context_args)
        context.grant_permissions(["notifications"], origin=bridge.http)
        contexts.append(context)
        return load_dashboard(context, bridge.http)

    yield daemon, bridge, open_page
    for context in contexts:
        context.close()
    bridge.stop()


def _create(daemon, name: str) -> str:
    return daemon.client().request(m.CreateSession(provider="scripted", cwd=f"/work/{name}",
                                                   name=name)).session.id


def _row(sid: str) -> str:
    return f'.session[data-session-id="{sid}"]'


def test_dashboard_lists_streams_approves_sends_and_notifies(dashboard):
    daemon, bridge, open_page = dashboard
    ARTIFACTS.mkdir(exist_ok=True)
    alpha = _create(daemon, "alpha")
    page, errors = open_page(viewport={"width": 1280, "height": 800})

    # the list is live: a session created after the page loaded shows up too
    page.wait_for_selector(_row(alpha))
    beta = _create(daemon, "beta")
    page.wait_for_selector(_row(beta))
    page.click(_row(alpha))
    page.wait_for_selector('#detail-title:has-text("alpha")')

    # send from the composer, the reply streams in
    page.fill("#prompt", "hello from the browser")
    page.press("#prompt", "Enter")
    page.wait_for_selector('.msg[data-type="assistant"]:has-text("You said: hello from the browser")')

    # streaming: the message is shown while it grows, then whole
    daemon.client().request(m.SendMessage(session_id=alpha, content="/stream 60 15 8"))
    page.wait_for_selector(".msg.streaming")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.msg[data-type=assistant] .body')]"
        ".some(b => b.textContent.length === 480)", timeout=WAIT_MS)
    page.wait_for_selector(".msg.streaming", state="detached")

    # a pending command, approved from the keyboard (a)
    page.fill("#prompt", "/approve make deploy")
    page.press("#prompt", "Enter")
    page.wait_for_selector('.approval:has-text("make deploy")')
    page.screenshot(path=str(ARTIFACTS / "dashboard-desktop.png"))
    page.click("#conversation")  # focus leaves the composer
    page.keyboard.press("a")
    page.wait_for_selector(".approval", state="detached")
    page.wait_for_selector('.msg[data-type="assistant"]:has-text("Done.")')

    # a question answered with its option button
    page.fill("#prompt", "/ask Ship it?")
    page.press("#prompt", "Enter")
    page.click('.approval button:has-text("yes")')
    page.wait_for_selector('.msg[data-type="assistant"]:has-text("You chose: yes")')

    # another session starts waiting on the person: a notification
    before = page.evaluate("() => window.__orbitdockNotifications || 0")
    daemon.client().request(m.SendMessage(session_id=beta, content="/approve rm -rf /tmp/x"))
    page.wait_for_function(f"() => (window.__orbitdockNotifications || 0) > {before}")
    page.wait_for_selector(f'{_row(beta)}[data-attention="awaitingPermission"]')
    first = page.eval_on_selector(".session-list .session", "e => e.dataset.sessionId")
    assert first == beta  # attention first

    # j/k walk the list
    page.keyboard.press("k")
    page.wait_for_selector(f"{_row(beta)}.selected")
    page.wait_for_selector('.approval:has-text("rm -rf /tmp/x")')
    page.keyboard.press("d")
    page.wait_for_selector(".approval", state="detached")
    page.wait_for_selector('.msg[data-type="assistant"]:has-text("Skipped.")')
    assert not errors, errors

    # the bridge restarts: the page reconnects by itself and resumes the open session
    bridge.stop()
    page.wait_for_selector('#conn[data-state="closed"]')
    daemon.client().request(m.SendMessage(session_id=beta, content="while you were away"))
    bridge.start()
    page.wait_for_selector('#conn[data-state="open"]')
    page.wait_for_selector('.msg[data-type="assistant"]:has-text("You said: while you were away")')
    page.fill("#prompt", "back again")
    page.press("#prompt", "Enter")
    page.wait_for_selector('.msg[data-type="assistant"]:has-text("You said: back again")')
    assert page.locator('.msg[data-type="user"]:has-text("while you were away")').count() == 1
    assert not [e for e in errors if not any(n in e for n in RECONNECT_NOISE)], errors


def test_dashboard_on_a_phone(dashboard):
    daemon, bridge, open_page = dashboard
    ARTIFACTS.mkdir(exist_ok=True)
    sid = _create(daemon, "pocket")
    page, errors = open_page(viewport={"width": 390, "height": 844}, is_mobile=True,
                             has_touch=True, device_scale_factor=2)
    page.wait_for_selector(_row(sid))
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone-list.png"))
    page.tap(_row(sid))
    page.wait_for_selector("#composer", state="visible")
    assert not page.is_visible("#sessions")  # one pane at a time on a phone
    page.fill("#prompt", "/approve ls -la")
    page.tap("#send")
    page.wait_for_selector('.approval:has-text("ls -la")')
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone-session.png"))
    page.tap('.approval button[data-decision="approved"]')
    page.wait_for_selector('.msg[data-type="assistant"]:has-text("Done.")')
    page.tap("#back")
    page.wait_for_selector("#sessions", state="visible")
    assert not errors, errors


def test_dashboard_controls_for_claude_sessions(daemon_factory, browser, sim, tmp_path):
    """A direct Claude session's autonomy control offers Claude's permission modes (and
    changes the mode), and of the thread operations only fork; a passive one (from hooks)
    has no composer, interrupt, mode control or thread operation, but its approvals are
    shown."""
    from claude_env import CLAUDE, daemon_env, make_box

    if not CLAUDE.exists():
        pytest.skip(f"claude not installed at {CLAUDE} (run bin/setup)")
    box = make_box(tmp_path / "claude")
    box.settings.write_text("{}")
    env = daemon_env(box, sim)
    daemon = daemon_factory(**env)
    bridge = BridgeProcess(daemon.home).start()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        client = daemon.client()
        direct = client.request(m.CreateSession(provider="claude", cwd=str(box.project),
                                                approval_policy="plan"), timeout=90).session.id
        passive = "9b2e61c4-0d7a-4f1e-8c3b-5a6d7e8f9a0b"
        tool = {"command": "make deploy", "description": "deploy"}
        for event, extra in (("UserPromptSubmit", {"prompt": "deploy it"}),
                             ("PreToolUse", {"tool_name": "Bash", "tool_input": tool,
                                             "tool_use_id": "toolu_9"}),
                             ("PermissionRequest", {"tool_name": "Bash", "tool_input": tool})):
            payload = {"session_id": passive, "cwd": str(box.project),
                       "hook_event_name": event, **extra}
            request = m.ClaudeHook(event=event, payload=json.dumps(payload))
            if event == "PermissionRequest":
                client.send(request)  # answered when someone decides: not waited for
            else:
                client.request(request)
        page, errors = load_dashboard(context, bridge.http)

        page.click(_row(direct))
        page.wait_for_selector('#autonomy[data-kind="claude"]')
        options = page.eval_on_selector_all("#autonomy option", "os => os.map(o => o.value)")
        assert options[:5] == ["default", "acceptEdits", "plan", "dontAsk", "bypassPermissions"]
        assert page.input_value("#autonomy") == "plan"
        assert page.is_visible("#composer") and not page.is_visible("#sandbox")
        assert page.is_visible('[data-op="fork"]')
        for op in ("compact", "rollback", "review", "archive"):
            assert not page.is_visible(f'[data-op="{op}"]'), op
        page.select_option("#autonomy", "acceptEdits")
        assert wait_until(lambda: client.request(m.SubscribeSession(
            session_id=direct)).session.approval_policy == "acceptEdits", 30)

        page.click(_row(passive))
        page.wait_for_selector('.approval:has-text("make deploy")')
        page.wait_for_selector("#composer", state="hidden")
        assert not page.is_visible('[data-action="interrupt"]')
        assert not page.is_visible("#autonomy")
        assert not page.is_visible("#session-ops")
        page.screenshot(path=str(ARTIFACTS / "dashboard-claude-passive.png"))
        assert not errors, errors
    finally:
        context.close()
        bridge.stop()


def test_dashboard_thread_operations_on_a_codex_session(codex_daemon, sim, browser):
    """A direct Codex session offers fork, compact, rollback, review and archive; compact
    sends compact_context and the real codex compacts; rollback asks how many turns and
    for a confirmation; archive asks too, and the button turns into unarchive."""
    from codex_daemon_env import TURN_TIMEOUT_S, create, state, wait_turn_done

    daemon = codex_daemon()
    bridge = BridgeProcess(daemon.home).start()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        client = daemon.client(timeout=10)
        sid = create(client, codex_daemon.workspace, policy="never", name="ops")
        for word in ("ALPHA", "BETA"):
            sim.set_script([{"text": f"ok {word}"}])
            before = state(client, sid).turn_count
            client.request(m.SendMessage(session_id=sid, content=f"remember {word}"))
            wait_turn_done(client, sid, before)
        sent: list[dict] = []
        page, errors = load_dashboard(context, bridge.http, sent)
        dialogs: list[str] = []

        def answer(dialog):
            dialogs.append(dialog.type)
            dialog.accept("1" if dialog.type == "prompt" else None)
        page.on("dialog", answer)

        page.click(_row(sid))
        page.wait_for_selector('#detail-title:has-text("ops")')
        for op in ("fork", "compact", "rollback", "review", "archive"):
            page.wait_for_selector(f'[data-op="{op}"]:not([disabled])', state="visible")

        sim.set_script([{"text": "SUMMARY: ALPHA and BETA"}])
        turns = state(client, sid).turn_count
        page.click('[data-op="compact"]')
        assert wait_until(lambda: {"type": "compact_context", "session_id": sid} in sent, 10)
        st = wait_turn_done(client, sid, turns, timeout=TURN_TIMEOUT_S)
        assert st.messages[-1].type == "compaction"

        page.wait_for_selector('[data-op="rollback"]:not([disabled])')
        page.click('[data-op="rollback"]')
        assert wait_until(lambda: {"type": "rollback_turns", "session_id": sid,
                                   "num_turns": 1} in sent, 10)
        assert dialogs[-2:] == ["prompt", "confirm"]
        assert wait_until(lambda: state(client, sid).turn_count == st.turn_count - 1,
                          TURN_TIMEOUT_S)
        page.wait_for_selector("#toast:has-text(\"rolled back 1 turn\")")

        page.wait_for_selector('[data-op="archive"]:not([disabled])')
        page.click('[data-op="archive"]')
        assert dialogs[-1] == "confirm"
        label = "t => document.querySelector('[data-op=archive]').textContent === t"
        page.wait_for_function(label, arg="Unarchive")
        assert state(client, sid).is_archived
        assert page.is_disabled('[data-op="compact"]')  # an archived thread takes no turn
        page.click('[data-op="archive"]')
        page.wait_for_function(label, arg="Archive")
        assert wait_until(lambda: not state(client, sid).is_archived, 10)
        page.screenshot(path=str(ARTIFACTS / "dashboard-codex-ops.png"))

        # fork: the page follows the new session
        page.click('[data-op="fork"]')
        assert wait_until(lambda: {"type": "fork_session", "source_session_id": sid} in sent, 10)
        assert wait_until(lambda: len(client.request(m.SubscribeList()).sessions) == 2,
                          TURN_TIMEOUT_S)
        fork = next(x.id for x in client.request(m.SubscribeList()).sessions if x.id != sid)
        page.wait_for_selector(f"{_row(fork)}.selected")
        page.wait_for_selector('#conversation .msg:has-text("ok ALPHA")')
        assert not errors, errors
    finally:
        context.close()
        bridge.stop()
