"""The driver: sends each session's turns and answers its approvals, like a busy user.

It lives in subscriber 0 and reads the same mirrors the other subscribers keep,
so it reacts to what a client really sees. Per session it runs one turn at a
time: send a tagged prompt, wait for the user message to appear (the turn is
running), accept every approval of the session as it arrives, steer or
interrupt the turn when its kind asks for it (once the first assistant delta
is visible), and classify the outcome when the turn ends. Requests go through
its own DEALER (the Subscription's socket is the library's); sends use a short
timeout so a dead daemon never blocks the loop.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter

from orbitdock.client import Client, ClientError, Endpoints
from orbitdock.load.model import (
    command_for,
    prompt_for,
    reply_text,
    steer_prompt,
    steered_text,
    tag_for,
)
from orbitdock.load.turns import (
    Approval,
    DriverLog,
    DriverParams,
    Pending,
    SessionDriver,
    Turn,
)
from orbitdock.protocol import messages as m

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 0.2  # longest block on a send (the daemon may be down)
SETTLE_S = 30.0  # after a timed-out turn was interrupted, wait this long for it to end
RETRY_S = 1.0  # back-off after a rejected or failed send
SWEEP_S = 0.25  # period of the full pass over all sessions (timeouts, stale requests)
# Outcomes that need no explanation in the report (the last two only under their fault).
EXPECTED = ("completed", "interrupted", "killed", "backend_lost")
SEARCH_LAST = 40  # the user message of a running turn is among the newest messages
# An acknowledged prompt whose session then lost its app-server and was resumed,
# with no sign of the turn this long after the recovery, never ran: "vanished".
VANISHED_S = 3.0


class Driver:
    def __init__(self, sub, endpoints: Endpoints, sessions: list[str], params: DriverParams):
        self.sub = sub
        self.p = params
        self.client = Client(endpoints, timeout=SEND_TIMEOUT_S, ctx=sub.ctx)
        start = time.monotonic()
        n = max(1, len(sessions))
        self.sessions = {sid: SessionDriver(sid, i, start + params.ramp_s * i / n)
                         for i, sid in enumerate(sessions)}
        self.ready = [(sd.ready_at, sd.sid) for sd in self.sessions.values()]  # a heap
        heapq.heapify(self.ready)
        self.next_sweep = start
        self.pending: dict[str, Pending] = {}
        self.answered: dict[tuple[str, float], Approval] = {}
        self.latest: dict[str, tuple[str, float]] = {}  # approval id -> its newest key
        self.log = DriverLog()
        self.paused = False
        self.draining = False
        self.expect_epoch: str | None = None
        self.blocked_until = 0.0  # no sends before this (monotonic): the daemon was not accepting

    # ------------------------------------------------------------ commands from the tool
    def command(self, cmd: str, arg) -> None:
        if cmd == "pause":
            self.paused = True
        elif cmd == "resume":
            self.paused = False
        elif cmd == "drain":
            self.draining = True
        elif cmd == "restarted":
            # Every turn in flight died with the daemon (restore closes them); requests
            # sent to it will never be answered. Act again once the new epoch is seen.
            self.expect_epoch = arg
            now_w, now_m = time.time(), time.monotonic()
            for sd in self.sessions.values():
                if sd.turn is not None and sd.phase != "idle":
                    self._finish(sd, "killed", now_w)
                self._idle(sd, now_m + self.p.think_s)
            self.pending.clear()

    def drain(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
                sd.phase != "idle" for sd in self.sessions.values()):
            self.sub.pump()
            self.step()
            time.sleep(0.02)
        busy = [sd for sd in self.sessions.values() if sd.phase != "idle"]
        return {"busy": [sd.sid for sd in busy], "busy_detail": [self._describe(sd) for sd in busy]}

    def _describe(self, sd: SessionDriver) -> str:
        """What a stuck session looks like to the driver and in its mirror (for the report)."""
        turn, st = sd.turn, self.sub.state(sd.sid)
        head = (f"{sd.sid} {sd.phase} {turn.tag if turn else '-'} turn {turn and turn.turn_id} "
                f"sent {time.monotonic() - turn.sent_mono:.0f}s ago" if turn else sd.sid)
        if st is None:
            return head + " (mirror not synced)"
        tail = "; ".join(f"{x.type}{'*' if x.is_in_progress else ''}:{x.content[:40]!r}"
                         for x in st.messages[-5:])
        return (f"{head} | server-side: {st.work_status} turn {st.current_turn_id} "
                f"approvals {len(st.approvals)} error {(st.last_error or '')[:60]!r} | {tail}")

    # ------------------------------------------------------------ the loop's step
    def step(self) -> None:
        """React to what the last pump brought; send due prompts; sweep timers now and then.

        Only touched sessions are looked at on every step (the loop runs every few
        ms and 200 sessions x every step would be a core's worth of Python).
        """
        self._replies()
        if self.expect_epoch is not None:
            if self.sub.epoch != self.expect_epoch:
                return
            self.expect_epoch = None
        now = time.monotonic()
        for approval_id, at in self.sub.resolved:
            ap = self.answered.get(self.latest.get(approval_id))
            if ap is not None:
                self.log.approval_rtt.append((at, at - ap.sent_wall))
                self.log.window_rtt.append(at - ap.sent_wall)
        self.sub.resolved.clear()
        sweep = now >= self.next_sweep
        if sweep:
            self.next_sweep = now + SWEEP_S
        for sid in (self.sessions if sweep else self.sub.touched):
            sd = self.sessions.get(sid)
            st = self.sub.state(sid) if sd is not None else None
            if st is not None and (sd.phase != "idle" or sid in self.sub.touched):
                self._observe(sd, st, now)
        while self.ready and self.ready[0][0] <= now and not (self.paused or self.draining):
            at, sid = heapq.heappop(self.ready)
            sd = self.sessions[sid]
            if sd.phase == "idle" and sd.ready_at == at and (
                    not self.p.max_turns or sd.turns < self.p.max_turns):
                self._send_turn(sd, now)
        if sweep:
            for request_id, pend in list(self.pending.items()):
                if now - pend.sent_mono > self.p.request_timeout_s:
                    del self.pending[request_id]
                    self.log.errors[f"{pend.what}:no_reply"] += 1

    def _idle(self, sd: SessionDriver, ready_at: float) -> None:
        sd.phase, sd.ready_at = "idle", ready_at
        heapq.heappush(self.ready, (ready_at, sd.sid))

    def _kind(self, sd: SessionDriver, n: int) -> str:
        if self.p.interrupt_every and n % self.p.interrupt_every == 0:
            return "interrupt"
        if self.p.steer_every and n % self.p.steer_every == 0 and self.p.provider == "codex":
            return "steer"
        return self.p.kinds[(n + sd.index) % len(self.p.kinds)]

    def _prompt(self, tag: str, kind: str) -> tuple[str, str | None]:
        """(prompt, expected final assistant text) for this provider and kind."""
        if self.p.provider == "scripted":
            if kind in ("exec", "patch"):
                return f"/approve {command_for(tag)} {tag}", "Done."
            if kind == "interrupt":
                return f"/hold {tag}", None
            prompt = prompt_for(tag)
            return prompt, f"You said: {prompt}"
        if kind == "steer":
            return prompt_for(tag), steered_text(tag, self.p.reply_chars)
        if kind == "interrupt":
            return prompt_for(tag), None
        return prompt_for(tag), reply_text(tag, self.p.reply_chars)

    def _send(self, pend: Pending, msg: m.Request) -> bool:
        if time.monotonic() < self.blocked_until:
            return False
        try:
            request_id = self.client.send(msg)
        except ClientError:
            # The daemon is not accepting: stop trying for a while, or a loop over 200
            # sessions would block SEND_TIMEOUT_S on each.
            self.log.errors[f"{pend.what}:send_failed"] += 1
            self.blocked_until = time.monotonic() + RETRY_S
            return False
        self.pending[request_id] = pend
        return True

    def _send_turn(self, sd: SessionDriver, now: float) -> None:
        n = sd.turns + 1
        kind = self._kind(sd, n)
        tag = tag_for(sd.index, n, kind)
        prompt, expected = self._prompt(tag, kind)
        if not self._send(Pending("send", sd.sid, now),
                          m.SendMessage(session_id=sd.sid, content=prompt)):
            self._idle(sd, now + RETRY_S)
            return
        sd.turns = n
        sd.turn = Turn(tag, kind, prompt, expected, time.time(), now)
        sd.phase = "sent"

    def _observe(self, sd: SessionDriver, st, now: float) -> None:
        for approval in st.approvals:
            # Keyed with created_at too: the daemon reuses approval ids after a restart.
            key = (approval.id, approval.created_at)
            if key not in self.answered and not self.paused:
                wall = time.time()
                self.log.approval_to_client.append((wall, wall - approval.created_at))
                if self._send(Pending("approve", sd.sid, now, approval.id),
                              m.ApproveTool(approval_id=approval.id, decision="accept")):
                    self.answered[key] = Approval(now, wall, approval.created_at)
                    self.latest[approval.id] = key
        turn = sd.turn
        if turn is None or sd.phase == "idle":
            return
        if sd.phase == "settling":
            if st.current_turn_id is None or now > sd.settle_until:
                self._idle(sd, now + self.p.think_s)
            return
        if turn.turn_id is None:
            for msg in reversed(st.messages[-SEARCH_LAST:]):
                if msg.type == "user" and msg.content == turn.prompt:
                    turn.turn_id = msg.turn_id or "?"
                    sd.phase = "running"
                    break
            else:
                lost = self.sub.last_lost.get(sd.sid, 0.0)
                if (turn.acked_wall and lost >= turn.acked_wall and st.last_error is None
                        and st.current_turn_id is None and time.time() - lost > VANISHED_S):
                    # The prompt never reached the transcript. "prompt_lost": the turn
                    # was at least closed with an error; "vanished": no trace at all.
                    failed = any(x.type == "error" and x.timestamp >= turn.sent_wall
                                 for x in st.messages[-3:])
                    outcome = "prompt_lost" if failed else "vanished"
                    if len(self.log.details) < 10:
                        self.log.details.append(f"{turn.kind} turn {outcome} (acked "
                                                f"{time.time() - turn.acked_wall:.1f}s ago): "
                                                + self._describe(sd))
                    self._finish(sd, outcome, time.time())
                    self._idle(sd, now + self.p.think_s)
                    return
        if sd.phase == "running" and not self.paused:
            # The turn's end is several deltas (turn id cleared, the work status, the
            # error); a poll can fall between them, so wait for the status to leave
            # "working". While paused a kill -9 cycle is under way: the restored
            # daemon's first events can be applied before its new epoch is noticed,
            # half-way through the restore's own deltas; "restarted" settles those turns.
            ended = st.current_turn_id != turn.turn_id and (
                st.current_turn_id is not None or st.work_status != "working")
            if ended:
                outcome = self._classify(turn, st)
                if outcome not in EXPECTED and len(self.log.details) < 10:
                    self.log.details.append(f"{turn.kind} turn ended {outcome}: "
                                            + self._describe(sd))
                self._finish(sd, outcome, time.time())
                self._idle(sd, now + self.p.think_s)
                return
            if turn.kind in ("steer", "interrupt") and not turn.acted and \
                    st.current_turn_id == turn.turn_id and any(
                    x.type == "assistant" and x.turn_id == turn.turn_id
                    for x in st.messages[-SEARCH_LAST:]):
                turn.acted = True
                if turn.kind == "steer":
                    self._send(Pending("steer", sd.sid, now),
                               m.SteerTurn(session_id=sd.sid, content=steer_prompt(turn.tag)))
                else:
                    self._send(Pending("interrupt", sd.sid, now),
                               m.InterruptSession(session_id=sd.sid))
        if now - turn.sent_mono > self.p.turn_timeout_s:
            if len(self.log.details) < 10:
                self.log.details.append("turn timed out: " + self._describe(sd))
            self._finish(sd, "timeout", time.time())
            if sd.phase == "running":
                self._send(Pending("interrupt", sd.sid, now), m.InterruptSession(session_id=sd.sid))
                sd.phase, sd.settle_until = "settling", now + SETTLE_S
            else:
                self._idle(sd, now + self.p.think_s)

    def _classify(self, turn: Turn, st) -> str:
        mine = [x for x in st.messages[-SEARCH_LAST:] if x.turn_id == turn.turn_id]
        if turn.expected and any(x.type == "assistant" and x.content == turn.expected
                                 for x in mine):
            return "completed"
        if self.sub.last_lost.get(st.id, 0.0) >= turn.sent_wall or \
                "app-server" in (st.last_error or ""):
            # its app-server died during the turn (the turn is closed with codex's exit
            # reason a moment before the "backend lost" delta arrives)
            return "backend_lost"
        if "restarted" in (st.last_error or ""):
            return "killed"
        if turn.kind == "interrupt" and turn.acted and st.work_status == "waiting":
            return "interrupted"
        return "failed"

    def _finish(self, sd: SessionDriver, outcome: str, when: float) -> None:
        turn = sd.turn
        if turn is None or turn.outcome is not None:
            return
        turn.outcome, turn.end_wall = outcome, when
        self.log.outcomes.append((sd.sid, turn.tag, turn.kind, outcome, turn.sent_wall, when,
                                  turn.turn_id))

    def _replies(self) -> None:
        while True:
            try:
                reply = self.client.recv_reply(0)
            except ClientError:
                return
            if reply is None:
                return
            pend = self.pending.pop(reply.id, None)
            if pend is None:
                continue
            if isinstance(reply, m.Error):
                self.log.errors[f"{pend.what}:{reply.code}"] += 1
                sd = self.sessions.get(pend.sid)
                if pend.what == "send" and sd is not None and sd.phase == "sent":
                    self._finish(sd, f"rejected:{reply.code}", time.time())
                    self._idle(sd, time.monotonic() + RETRY_S)
            elif pend.what == "send":
                sd = self.sessions.get(pend.sid)
                if sd is not None and sd.turn is not None and sd.phase == "sent":
                    sd.turn.acked_wall = time.time()
            elif pend.what == "approve" and pend.approval_id in self.latest:
                self.log.approval_reply.append(
                    time.monotonic() - self.answered[self.latest[pend.approval_id]].sent_mono)

    # ------------------------------------------------------------ reporting
    def progress(self) -> dict:
        outcomes = Counter(o[3] for o in self.log.outcomes)
        rtt, self.log.window_rtt = sorted(self.log.window_rtt), []
        return {"outcomes": dict(outcomes), "approvals": len(self.answered),
                "in_flight": sum(1 for sd in self.sessions.values() if sd.phase != "idle"),
                "rtt_p99": rtt[min(len(rtt) - 1, int(len(rtt) * 0.99))] if rtt else None,
                "errors": sum(self.log.errors.values())}

    def report(self) -> dict:
        return {"outcomes": self.log.outcomes, "approval_to_client": self.log.approval_to_client,
                "approval_rtt": self.log.approval_rtt, "approval_reply": self.log.approval_reply,
                "errors": dict(self.log.errors), "approvals": len(self.answered),
                "details": self.log.details}
