"""``orbitdock-hook EVENT``: hand one Claude Code hook to orbitdockd, never hurting claude.

Claude runs this for every hook it fires, with the payload (JSON) on stdin. It
sends ``claude_hook`` to the daemon's request socket and exits 0 whatever happens:

* The daemon is found like ``orbitdockctl`` finds it, through ``<home>/orbitdockd.json``
  (home: ``$ORBITDOCK_HOME`` or ``~/.orbitdock``), which also carries the daemon's
  ``claude.hook_timeout_s`` and ``claude.permission_wait_s``. No config machinery is
  imported: only the standard library (start-up cost is the point): ZeroMQ's wire
  protocol is spoken by ``orbitdock.claude.zmtp``, msgpack by ``orbitdock.claude.minipack``.
* Daemon down, or no answer within the timeout: the event is **spooled**, one 0600 file
  per event under ``<home>/spool/`` named ``<time ns>-<pid>.json`` (so names sort in
  firing order), written under a temporary name and renamed (never read half-written).
  The daemon replays the spool at start, and whenever a forwarder says it found it
  non-empty (``spool: true``) before that forwarder's own event.
* An error reply (bad payload, unknown event, too large) is logged to
  ``<home>/logs/hooks.log`` with its code; nothing is spooled, claude is not told.
  A transient one (``internal``, ``unavailable``, ``timeout``: a daemon stopping) is
  spooled like no answer.
* ``PermissionRequest`` blocks: the reply is the decision a client made (printed as
  the hook's JSON output, so claude proceeds), or nothing after
  ``claude.permission_wait_s``, and claude asks in its own terminal.
* In a claude orbitdock drives itself (``DIRECT_SESSION_ENV`` set) it does nothing.
* A payload over the daemon's frame limit loses its bulkiest parts
  (``tool_response``, ``last_assistant_message``; the transcript has them) before it
  is sent; if it is still too large the daemon refuses it (``too_large``, logged).
"""

from __future__ import annotations

import os
import sys
import time

if __name__ == "__main__":
    # Run as a script (``<venv>/bin/python -S .../forward.py EVENT``, what ``orbitdockctl
    # hooks install`` writes): skipping site saves most of the start-up (the editable
    # install's finder alone imports pathlib, re, importlib.util). Nothing is imported
    # but the standard library and the orbitdock package, from the directory that holds
    # it (a checkout, or site-packages): put that first, not orbitdock/claude itself.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orbitdock.claude import minipack, zmtp  # noqa: E402  (after the path is set)

DEFAULT_HOOK_TIMEOUT_S = 2.0  # when the runtime file does not say (an older daemon)
DEFAULT_PERMISSION_WAIT_S = 60.0
DEFAULT_MAX_FRAME_BYTES = 1_048_576
FRAME_OVERHEAD = 512  # envelope bytes around the payload
REPLY_FRAMES_BOUND = 2  # a reply frame may be this many times the daemon's frame limit
BLOCKING_EVENTS = ("PermissionRequest",)
# Errors of a daemon that could not take the event now (stopping, a fault): spool it.
TRANSIENT_ERRORS = ("internal", "unavailable", "timeout")
BULKY_FIELDS = ("tool_response", "last_assistant_message", "compact_summary")
SPOOL_DIR = "spool"
RUNTIME_FILE = "orbitdockd.json"
PROTOCOL_VERSION = 1  # orbitdock.PROTOCOL_VERSION; a test keeps the two equal
# Set by orbitdock in the environment of a ``claude`` it drives itself (a direct
# session, value: its orbitdock session id). Hooks fired inside it are already seen
# through stream-json, so the forwarder must not make a second, passive session of them.
DIRECT_SESSION_ENV = "ORBITDOCK_CLAUDE_DIRECT"


def home_dir() -> str:
    return os.path.expanduser(os.environ.get("ORBITDOCK_HOME") or "~/.orbitdock")


def log(home: str, text: str) -> None:
    """One line in ``<home>/logs/hooks.log`` (0600); never raises."""
    try:
        os.makedirs(os.path.join(home, "logs"), mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(home, "logs", "hooks.log"),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
        with os.fdopen(fd, "a") as out:
            out.write(f"{stamp} pid={os.getpid()} {text}\n")
    except OSError:
        pass


def spool(home: str, event: str, payload: str, event_id: str) -> str:
    """Write one event to the spool; returns its path."""
    import json

    directory = os.path.join(home, SPOOL_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid():07d}.json"
    tmp = os.path.join(directory, f".{name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"event": event, "payload": payload, "event_id": event_id}, out)
    final = os.path.join(directory, name)
    os.rename(tmp, final)
    return final


def spool_waiting(home: str) -> bool:
    try:
        with os.scandir(os.path.join(home, SPOOL_DIR)) as entries:
            return any(entry.name.endswith(".json") and not entry.name.startswith(".")
                       for entry in entries)
    except OSError:
        return False


class _ScanContext:
    """What ``json.JSONDecoder`` hands the C scanner: plain values, no hooks."""

    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int, parse_constant = float, int, float  # float("NaN"), "Infinity"


def load_json(text: str) -> object:
    """``json.loads`` without importing ``json`` on the hot path: the module compiles
    regular expressions at import (``re``, ``enum``), as costly as the forwarder's whole
    bare start. The C scanner ``json`` itself parses with does the work; ``json`` proper
    when it is missing (not CPython) or for the error of a bad document."""
    try:
        from _json import make_scanner
    except ImportError:
        make_scanner = None
    start = len(text) - len(text.lstrip())
    if make_scanner is not None:
        try:
            value, end = make_scanner(_ScanContext())(text, start)
        except StopIteration:
            value, end = None, -1
        if end >= 0 and not text[end:].strip():
            return value
    import json

    return json.loads(text)


def read_runtime(home: str) -> dict | None:
    """The running daemon's runtime file, or None when there is none or its pid is gone."""
    try:
        with open(os.path.join(home, RUNTIME_FILE)) as f:
            info = load_json(f.read())
        os.kill(int(info.get("pid", 0)), 0)
    except PermissionError:
        return info
    except (OSError, ValueError, TypeError):
        return None
    return info if info.get("request_endpoint") else None


def shrink(payload: str, limit: int) -> str:
    """Drop the bulky fields of a payload over ``limit`` bytes (see the module doc)."""
    import json

    try:
        obj = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(obj, dict):
        return payload
    for field in BULKY_FIELDS:
        if field in obj:
            size = len(json.dumps(obj[field]))
            obj[field] = {"orbitdock_truncated_bytes": size}
    return json.dumps(obj)


def ask(endpoint: str, frame: bytes, timeout_s: float, max_reply_bytes: int) -> dict:
    """Send one request and wait for its reply (``orbitdock.claude.zmtp``: the daemon's
    ROUTER sees a DEALER); raises TimeoutError, zmtp.ZmtpError or OSError when none came."""
    reply = zmtp.request(endpoint, [frame], timeout_s, max_reply_bytes)
    if len(reply) != 1:
        return {"type": "error", "code": "bad_frame",
                "message": f"reply of {len(reply)} frames, not 1"}
    decoded = minipack.unpackb(reply[0])
    return decoded if isinstance(decoded, dict) else {"type": "error", "code": "bad_frame",
                                                      "message": "reply is not a map"}


def forward(event: str, raw: bytes, home: str) -> str | None:
    """Deliver one hook; returns the text to print on stdout (a decision) or None."""
    payload = raw.decode("utf-8", errors="replace")
    event_id = f"{time.time_ns()}-{os.getpid()}"
    info = read_runtime(home)
    if info is None:
        spool(home, event, payload, event_id)
        return None
    hooks = info.get("claude") or {}
    limit = int(hooks.get("max_frame_bytes", DEFAULT_MAX_FRAME_BYTES))
    if len(raw) + FRAME_OVERHEAD > limit:
        payload = shrink(payload, limit)
    timeout = float(hooks.get("hook_timeout_s", DEFAULT_HOOK_TIMEOUT_S))
    wait = float(hooks.get("permission_wait_s", DEFAULT_PERMISSION_WAIT_S))
    blocking = event in BLOCKING_EVENTS
    frame = minipack.packb({"v": PROTOCOL_VERSION, "type": "claude_hook", "id": event_id,
                           "event": event, "payload": payload, "event_id": event_id,
                           "spool": spool_waiting(home), "wait_s": wait if blocking else 0.0})
    try:
        # The reply carries at most the hook's output, built from this payload and a
        # client's decision, each refused by the daemon beyond its frame limit.
        reply = ask(info["request_endpoint"], frame, timeout + (wait if blocking else 0.0),
                    REPLY_FRAMES_BOUND * limit)
    except TimeoutError:
        spool(home, event, payload, event_id)
        log(home, f"{event}: no answer from orbitdockd within {timeout:.1f}s; spooled")
        return None
    except (zmtp.ZmtpError, OSError) as exc:  # not running, stopping, not a ZMTP ROUTER
        spool(home, event, payload, event_id)
        log(home, f"{event}: no answer from orbitdockd ({exc!r}); spooled")
        return None
    if reply.get("type") == "error" and reply.get("code") in TRANSIENT_ERRORS:
        spool(home, event, payload, event_id)
        log(home, f"{event}: orbitdockd could not take it ({reply.get('code')}); spooled")
        return None
    if reply.get("type") == "error":
        log(home, f"{event}: refused by orbitdockd: {reply.get('code')}: "
                  f"{str(reply.get('message'))[:300]}")
        return None
    output = (reply.get("result") or {}).get("output")
    if not output:
        return None
    import json

    return json.dumps(output)


def trace(path: str, event: str, raw: bytes, started: float) -> None:
    """``$ORBITDOCK_HOOK_TRACE``: append when this hook started (bench/bench_hooks.py
    measures hook -> client latency with it)."""
    import json

    try:
        session_id = json.loads(raw).get("session_id")
        with open(path, "a") as out:
            out.write(json.dumps({"event": event, "session_id": session_id, "t": started}) + "\n")
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Always 0: a hook that fails must not change what claude does."""
    if os.environ.get(DIRECT_SESSION_ENV):
        # A claude orbitdock drives itself: its session is seen through stream-json, and
        # a PermissionRequest is answered on its stdio. Nothing to forward, spool or print.
        return 0
    started = time.time()
    args = sys.argv[1:] if argv is None else argv
    home = home_dir()
    try:
        event = args[0] if args else ""
        raw = sys.stdin.buffer.read()
        if os.environ.get("ORBITDOCK_HOOK_TRACE"):
            trace(os.environ["ORBITDOCK_HOOK_TRACE"], event, raw, started)
        out = forward(event, raw, home)
        if out:
            sys.stdout.write(out + "\n")
            sys.stdout.flush()
    except BaseException as exc:  # noqa: BLE001 - the whole point: never break claude
        log(home, f"forwarder failed: {exc!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
