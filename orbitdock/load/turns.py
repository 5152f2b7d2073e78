"""What the load driver keeps: its parameters, each session's current turn, the
requests it waits on, and the log it reports from (``driver.py`` acts on them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class DriverParams:
    provider: str = "codex"
    kinds: tuple[str, ...] = ("text", "exec", "patch")
    steer_every: int = 0  # every Nth turn of a session is steered mid-stream (0: never)
    interrupt_every: int = 0  # every Nth turn is interrupted mid-stream (0: never)
    think_s: float = 0.2  # pause between a turn's end and the session's next prompt
    ramp_s: float = 2.0  # first prompts are spread over this long
    turn_timeout_s: float = 90.0  # a turn not ended by then is interrupted and counted
    request_timeout_s: float = 15.0  # a request unanswered by then is forgotten
    reply_chars: int = 240
    max_turns: int = 0  # per session; 0 = until the run ends


@dataclass
class Turn:
    tag: str
    kind: str
    prompt: str
    expected: str | None
    sent_wall: float
    sent_mono: float
    turn_id: str | None = None
    acked_wall: float = 0.0  # when the daemon acknowledged the prompt (0: not yet)
    acted: bool = False  # steer/interrupt sent
    outcome: str | None = None
    end_wall: float = 0.0


@dataclass
class SessionDriver:
    sid: str
    index: int
    ready_at: float
    turns: int = 0
    phase: str = "idle"  # idle | sent | running | settling
    turn: Turn | None = None
    settle_until: float = 0.0


@dataclass
class Pending:
    what: str  # send | approve | steer | interrupt
    sid: str
    sent_mono: float
    approval_id: str | None = None


@dataclass
class Approval:
    sent_mono: float
    sent_wall: float
    created_at: float


@dataclass
class DriverLog:
    # (session, tag, kind, outcome, sent at, ended at, turn id)
    outcomes: list[tuple] = field(default_factory=list)
    # (receive time, latency) pairs, so a warm-up can be cut off
    approval_to_client: list[tuple[float, float]] = field(default_factory=list)
    approval_rtt: list[tuple[float, float]] = field(default_factory=list)
    approval_reply: list[float] = field(default_factory=list)  # approve sent -> reply
    errors: Counter = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)  # what unexpected outcomes looked like
    window_rtt: list[float] = field(default_factory=list)
