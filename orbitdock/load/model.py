"""The load model: a ``SimServer`` whose reply is computed from the request, in its own process.

A queued script does not survive load with faults: a turn killed with the daemon
leaves its unconsumed replies in the queue, and because codex sends the whole
history, those stale ``match`` strings would then capture later requests of the
same session. So every prompt carries a tag, ``[LOAD:s0003:t00012:exec]``, and
the reply is a pure function of (tag, how far the turn got): the number of tool
outputs after the tagged user message, or a later ``[STEER:…]`` message. The
reply dicts are ordinary script replies (``orbitdock.sim.script``).

The model process records what it served per tag (its transcript), which the
loss check compares with the database. Request bodies are not kept (codex sends
tens of kB per request; thousands of turns would hold gigabytes).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from orbitdock.sim.server import SimServer

logger = logging.getLogger(__name__)

KINDS = ("text", "exec", "patch", "steer", "interrupt")
TAG_RE = re.compile(r"\[(LOAD|STEER):s(\d+):t(\d+)(?::(\w+))?\]")
FILLER = "the quick brown fox jumps over the lazy dog while the load runs on; "
# The model process exits by itself if the parent has not spoken for this long
# (a crashed tool must not leave it serving forever).
ORPHAN_TIMEOUT_S = 3600.0
CONTROL_POLL_S = 1.0  # how often the control loop checks the pipe and the parent


def tag_for(session_index: int, turn: int, kind: str) -> str:
    return f"[LOAD:s{session_index:04d}:t{turn:05d}:{kind}]"


def steer_tag(tag: str) -> str:
    return tag.replace("[LOAD:", "[STEER:").rsplit(":", 1)[0] + "]"


def prompt_for(tag: str) -> str:
    return f"{tag} please do the next step"


def steer_prompt(tag: str) -> str:
    return f"{steer_tag(tag)} change of plan"


def _fill(head: str, chars: int) -> str:
    body = head + FILLER * (1 + chars // len(FILLER))
    return body[:max(len(head), chars)]


def reply_text(tag: str, chars: int) -> str:
    """The final assistant text of a turn: unique per tag, so duplicates are countable."""
    return _fill(f"Done {tag}. ", chars)


def steered_text(tag: str, chars: int) -> str:
    return _fill(f"Steered {tag}. ", chars)


def command_for(tag: str) -> str:
    word = tag.strip("[]").replace(":", "-")
    return f"echo {word}"


def patch_for(tag: str) -> str:
    word = tag.strip("[]").replace(":", "-")
    return f"*** Begin Patch\n*** Add File: {word}.txt\n+{tag}\n*** End Patch\n"


@dataclass(frozen=True)
class ModelParams:
    reply_chars: int = 240  # length of each final reply
    chunk: int = 12  # characters per streamed delta
    delay_ms: float = 0.0  # pause between deltas of a normal reply
    slow_ms: float = 60.0  # pause between deltas of a reply meant to be steered/interrupted


def _user_texts(body: dict[str, Any]) -> list[tuple[int, str]]:
    out = []
    for index, item in enumerate(body.get("input") or []):
        if isinstance(item, dict) and item.get("type") == "message" and item.get("role") == "user":
            parts = item.get("content") or []
            text = " ".join(p.get("text", "") for p in parts if isinstance(p, dict))
            out.append((index, text))
    return out


def plan_reply(body: dict[str, Any], p: ModelParams) -> tuple[str | None, str, dict[str, Any]]:
    """(tag, step name, script reply) for one request body."""
    items = body.get("input") or []
    for index, text in reversed(_user_texts(body)):
        found = TAG_RE.search(text)
        if not found:
            continue
        marker, sidx, turn, kind = found.groups()
        tag = tag_for(int(sidx), int(turn), kind or "text")
        if marker == "STEER":
            # a steer tag has no kind: find the turn's own tag in an earlier message
            for _, earlier in _user_texts(body):
                own = TAG_RE.search(earlier)
                if own and own.group(1) == "LOAD" and own.group(2) == sidx and own.group(3) == turn:
                    tag = tag_for(int(sidx), int(turn), own.group(4))
            return tag, "steered", {"text": steered_text(tag, p.reply_chars), "chunk": p.chunk,
                                    "delay_ms": p.delay_ms}
        outputs = sum(1 for item in items[index + 1:] if isinstance(item, dict)
                      and str(item.get("type", "")).endswith("_call_output"))
        final = {"text": reply_text(tag, p.reply_chars), "chunk": p.chunk, "delay_ms": p.delay_ms}
        if kind == "exec" and outputs == 0:
            return tag, "call", {"call": "exec_command",
                                 "args": {"cmd": command_for(tag), "login": False}}
        if kind == "patch" and outputs == 0:
            return tag, "call", {"custom": "apply_patch", "input": patch_for(tag)}
        if kind in ("steer", "interrupt"):
            # long and slow, so the driver's steer/interrupt lands mid-stream
            return tag, "slow", {"text": _fill(f"Working on {tag}. ", p.reply_chars * 4),
                                 "chunk": p.chunk, "delay_ms": p.slow_ms}
        return tag, "final", final
    return None, "untagged", {"text": "(load model: no tag in the request)"}


class LoadModel(SimServer):
    """SimServer with computed replies (see the module docstring) and a per-tag transcript."""

    def __init__(self, params: ModelParams):
        super().__init__()
        self.params = params
        self._tlock = threading.Lock()  # guards the transcript (handler threads write it)
        self._by_tag: dict[str, list[str]] = {}
        self._counts: Counter[str] = Counter()

    def take_reply(self, body: bytes) -> dict:
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            parsed = {}
        tag, step, reply = plan_reply(parsed if isinstance(parsed, dict) else {}, self.params)
        with self._tlock:
            self._counts[step] += 1
            if tag is not None:
                self._by_tag.setdefault(tag, []).append(step)
        return reply

    def transcript(self) -> dict[str, Any]:
        incidents = self.incidents()  # (under the server's own lock, not ours)
        with self._tlock:
            return {"served": {t: list(s) for t, s in self._by_tag.items()},
                    "counts": dict(self._counts), "incidents": incidents}


def model_main(params: ModelParams, conn) -> None:
    """Process entry: serve until told to stop (or the parent goes away)."""
    logging.basicConfig(level=logging.WARNING)
    server = LoadModel(params).start()
    conn.send(("url", server.url))
    last_contact = time.monotonic()
    try:
        while time.monotonic() - last_contact < ORPHAN_TIMEOUT_S:
            if not conn.poll(CONTROL_POLL_S):
                continue
            try:
                cmd = conn.recv()
            except EOFError:
                break
            last_contact = time.monotonic()
            if cmd == "transcript":
                conn.send(("transcript", server.transcript()))
            elif cmd == "stop":
                break
    finally:
        server.stop()
        conn.close()
