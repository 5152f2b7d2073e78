"""Passive sessions: rollout files appended the way a terminal codex 0.169 writes them.

Each passive session is one ``CODEX_HOME/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl``
(reference §5) whose turns are appended every ``interval_s``: task_started, the
user message, the agent message (both as ``item_completed`` events, the only
message source the parser reads, plus the ``response_item`` repeats it skips),
token_count, task_complete. The writer thread owns the files and the record of
what it wrote, which the loss check compares with the database (the watcher's
offsets are committed with the rows they produced, so even across kill -9 each
line must land exactly once).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger(__name__)

ORIGINATOR = "codex_cli_rs"  # not orbitdock's client name: the watcher must shadow these
JOIN_S = 5.0


def passive_prompt(j: int, n: int) -> str:
    return f"[PASSIVE:p{j:04d}:t{n:05d}] keep going"


def passive_reply(j: int, n: int) -> str:
    return f"Passive reply p{j:04d} t{n:05d}: the terminal session made progress."


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _File:
    def __init__(self, root: Path, j: int, cwd: str):
        now = time.time()
        self.j, self.thread_id, self.turns, self.ordinal = j, str(uuid.uuid4()), 0, 0
        day = root / "sessions" / time.strftime("%Y/%m/%d", time.gmtime(now))
        day.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(now))
        self.path = day / f"rollout-{stamp}-{self.thread_id}.jsonl"
        self.cwd = cwd
        self.write([("session_meta", {
            "session_id": self.thread_id, "id": self.thread_id, "timestamp": _iso(now),
            "cwd": cwd, "originator": ORIGINATOR, "cli_version": "0.169.0", "source": "cli",
            "model_provider": "mock", "base_instructions": {
                "text": "You are Codex.", "provenance": {"type": "model", "model": "gpt-5.5"}}})])

    def write(self, lines: list[tuple[str, dict]]) -> None:
        now = time.time()
        out = []
        for ltype, payload in lines:
            out.append(json.dumps({"timestamp": _iso(now), "ordinal": self.ordinal, "type": ltype,
                                   "payload": payload}, separators=(",", ":")) + "\n")
            self.ordinal += 1
        with open(self.path, "a", encoding="utf-8") as fh:  # whole lines in one write
            fh.write("".join(out))

    def turn(self) -> tuple[str, str]:
        self.turns += 1
        n, j = self.turns, self.j
        turn_id, prompt, reply = str(uuid.uuid4()), passive_prompt(j, n), passive_reply(j, n)
        usage = {"input_tokens": 120 * n, "cached_input_tokens": 0, "output_tokens": 30 * n,
                 "reasoning_output_tokens": 0, "total_tokens": 150 * n}
        self.write([
            ("event_msg", {"type": "task_started", "turn_id": turn_id,
                           "started_at": int(time.time()), "model_context_window": 258400}),
            ("turn_context", {"turn_id": turn_id, "cwd": self.cwd, "approval_policy": "never",
                              "model": "gpt-5.5", "sandbox_policy": {"type": "workspace-write"}}),
            ("response_item", {"type": "message", "role": "user",
                               "content": [{"type": "input_text", "text": prompt}]}),
            ("event_msg", {"type": "item_completed", "thread_id": self.thread_id,
                           "turn_id": turn_id, "item": {
                               "type": "UserMessage", "id": str(uuid.uuid4()),
                               "content": [{"type": "text", "text": prompt}]}}),
            ("event_msg", {"type": "item_completed", "thread_id": self.thread_id,
                           "turn_id": turn_id, "item": {
                               "type": "AgentMessage", "id": f"msg_{uuid.uuid4().hex}",
                               "content": [{"type": "Text", "text": reply}]}}),
            ("response_item", {"type": "message", "role": "assistant",
                               "content": [{"type": "output_text", "text": reply}]}),
            ("event_msg", {"type": "token_count", "info": {
                "total_token_usage": usage, "last_token_usage": usage,
                "model_context_window": 258400}}),
            ("event_msg", {"type": "task_complete", "turn_id": turn_id,
                           "last_agent_message": reply}),
        ])
        return prompt, reply


class PassiveWriter(threading.Thread):
    """Appends one turn to each passive session every ``interval_s`` until stopped."""

    def __init__(self, codex_home: Path, count: int, interval_s: float, cwd: str,
                 max_turns: int = 0):
        super().__init__(name="passive-writer", daemon=True)
        self.files = [_File(codex_home, j, cwd) for j in range(count)]
        self.interval_s = interval_s
        self.max_turns = max_turns
        self.written: dict[str, list[tuple[str, str]]] = {f.thread_id: [] for f in self.files}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()  # guards ``written`` (read by the tool's thread)

    @property
    def session_ids(self) -> list[str]:
        return [f.thread_id for f in self.files]

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            for f in self.files:
                if self.max_turns and f.turns >= self.max_turns:
                    continue
                try:
                    pair = f.turn()
                except OSError as exc:
                    logger.error("passive writer: %s: %s", f.path, exc)
                    continue
                with self._lock:
                    self.written[f.thread_id].append(pair)

    def stop(self) -> dict[str, list[tuple[str, str]]]:
        self._stop_event.set()
        self.join(JOIN_S)
        with self._lock:
            return {k: list(v) for k, v in self.written.items()}
