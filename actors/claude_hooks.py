"""ClaudeHooksActor: Claude Code hooks and transcripts -> passive Claude sessions.

Owns, per Claude session id: the hook mapping (``orbitdock.claude.hooks.HookSession``),
the transcript reader (``orbitdock.rollout.reader.RolloutReader``: offsets, complete
lines only, bounded chunks) with its parser (``orbitdock.claude.transcript``), and
the forwarders' ``PermissionRequest`` requests held until a client decides. Also the
spool replay and the SessionStart cache.

Each hook becomes one ``RolloutBatch`` (provider ``claude``) for the supervisor, which
creates the session on its first batch and passes later ones to its actor: the
transcript lines read since the last hook plus the hook's own events, with the new
transcript offset committed in the same transaction as the rows (exactly once across
restarts; the offsets come back from the database at start). A hook is answered
once its batch is on its way, except a PermissionRequest (see ``_hold``).

Timers (a held request's wait) only ``tell`` this actor.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pykka

from actors.messages import OwnerOf, RolloutBatch
from orbitdock.claude.connector import (
    Decide,
    FlushWaiting,
    HookArrived,
    PermissionExpired,
    ReplaySpool,
    Settle,
)
from orbitdock.claude.hooks import (
    BLOCKING_EVENTS,
    Hook,
    HookSession,
    parse_hook,
    permission_output,
    thread_started,
)
from orbitdock.claude.order import RowOrder
from orbitdock.claude.transcript import TranscriptParser
from orbitdock.config import Config
from orbitdock.connectors import events as be
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.rollout.reader import RolloutReader
from orbitdock.store.commands import SaveRolloutOffset

logger = logging.getLogger(__name__)

SPOOL_DIR = "spool"  # orbitdock.claude.forward.SPOOL_DIR
HOOK_FIRST = ("UserPromptSubmit", "SessionStart")  # their own events go before the transcript's


@dataclass(slots=True)
class Held:
    """A forwarder waiting for a decision on one approval."""

    done: Any
    event_id: str
    tool_name: str
    tool_input: dict[str, Any]
    suggestions: list[Any]
    timer: threading.Timer | None = None


@dataclass
class Track:
    """One Claude session's hook state."""

    session_id: str
    meta: be.ThreadStarted
    hooks: HookSession
    parser: TranscriptParser
    reader: RolloutReader | None = None
    held: dict[Any, Held] = field(default_factory=dict)
    sent: bool = False  # a batch went to the supervisor (the session exists)
    # hook events waiting for the transcript to show their tool (rows in its order)
    order: RowOrder = field(default_factory=lambda: RowOrder(0.0))
    settle: threading.Timer | None = None  # the next look at the transcript meanwhile


class ClaudeHooksActor(pykka.ThreadingActor):
    def __init__(self, config: Config, data_dir: Path, supervisor: pykka.ActorRef,
                 persistence: pykka.ActorRef):
        super().__init__()
        self.cfg = config
        self.ccfg = config.claude
        self.spool_dir = data_dir / SPOOL_DIR
        self.supervisor = supervisor
        self.persistence = persistence
        self.tracks: dict[str, Track] = {}
        self.pending: dict[str, tuple[be.ThreadStarted, float]] = {}  # SessionStart cache
        self.offsets: dict[str, int] = {}  # transcript path -> committed-to-be offset
        self.seen: OrderedDict[str, None] = OrderedDict()  # delivered event ids
        # claude session ids a direct (orbitdock-driven) session owns: their hooks come
        # from a forwarder that predates DIRECT_SESSION_ENV and are dropped
        self.direct: OrderedDict[str, None] = OrderedDict()
        self.counters = {"hooks": 0, "refused": 0, "replayed": 0, "duplicates": 0,
                         "decisions": 0, "expired": 0, "direct": 0}

    # ------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        try:
            stored = self.persistence.proxy().load_rollout_offsets().get(
                timeout=self.cfg.persistence.ask_timeout_s)
            self.offsets = {path: int(row.get("offset") or 0) for path, row in stored.items()}
        except Exception as exc:  # noqa: BLE001 - transcripts are then read from 0
            logger.error("claude hooks: cannot load transcript offsets (%r)", exc)
        self._replay_spool()

    def on_stop(self) -> None:
        for track in self.tracks.values():
            if track.settle is not None:
                track.settle.cancel()
            self._release_all(track)

    def on_receive(self, message: Any) -> Any:
        try:
            if isinstance(message, HookArrived):
                self._arrived(message)
            elif isinstance(message, Decide):
                self._decide(message)
            elif isinstance(message, PermissionExpired):
                self._expired(message)
            elif isinstance(message, ReplaySpool):
                self._replay_spool()
            elif isinstance(message, Settle):
                self._settle(message.session_id)
            elif isinstance(message, FlushWaiting):
                return self._flush_waiting()
            elif message == "counters":
                return dict(self.counters, sessions=len(self.tracks), pending=len(self.pending))
        except Exception:  # one bad hook must not stop the others
            logger.exception("claude hooks: failed handling %s", type(message).__name__)
            if isinstance(message, HookArrived):
                message.done(m.Error(code=str(ErrorCode.INTERNAL),
                                     message="internal error handling the hook"))
        return None

    # ------------------------------------------------------------ hooks
    def _arrived(self, arrived: HookArrived) -> None:
        r: m.ClaudeHook = arrived.request.request
        if r.spool:
            self._replay_spool()
        try:
            hook = parse_hook(r.event, r.payload)
        except ProtocolError as exc:
            self.counters["refused"] += 1
            logger.warning("claude hook refused (code %s): %s; payload %r", exc.code,
                           exc.message, r.payload[:200])
            arrived.done(m.Error(code=str(exc.code), message=exc.message))
            return
        self._handle(hook, r.event_id, arrived.done)

    def _remember(self, event_id: str) -> bool:
        """False when this event was already delivered (a spooled copy of it)."""
        if not event_id:
            return True
        if event_id in self.seen:
            self.counters["duplicates"] += 1
            return False
        self.seen[event_id] = None
        if len(self.seen) > self.ccfg.replayed_ids:
            self.seen.popitem(last=False)
        return True

    def _ack(self, done: Any, **result: Any) -> None:
        if done is not None:
            done(m.Ack(result=result))

    def _handle(self, hook: Hook, event_id: str, done: Any) -> None:
        """One hook: ``done`` None for a replayed one (nobody waits for it)."""
        if not self._remember(event_id):
            self._ack(done, duplicate=True)
            return
        self.counters["hooks"] += 1
        sid = hook.session_id
        track = self.tracks.get(sid)
        # A new session id, or a blocking hook (whose forwarder would wait for nobody)
        if (track is None or hook.event in BLOCKING_EVENTS) and self._owned_by_direct(sid):
            self.counters["direct"] += 1
            self.pending.pop(sid, None)
            if track is not None:  # made before its direct session told its thread id
                self._drop_track(track)
            self._ack(done, direct=True)
            return
        now = time.monotonic()
        if track is None:
            self._expire_pending(now)
            if hook.event == "SessionStart":
                self.pending[sid] = (thread_started(hook), now)
                self._ack(done, pending=True)
                return
            if hook.event == "SessionEnd" and sid in self.pending:
                del self.pending[sid]  # a process that never did anything: no session
                self._ack(done, discarded=True)
                return
            cached = self.pending.pop(sid, None)
            track = self._track(sid, cached[0] if cached else thread_started(hook))
        elif hook.event == "SessionStart":
            fresh = thread_started(hook)
            track.meta = be.ThreadStarted(thread_id=sid, model=fresh.model or track.meta.model,
                                          cwd=fresh.cwd or track.meta.cwd,
                                          transcript_path=fresh.transcript_path
                                          or track.meta.transcript_path)
        self._follow(track, hook.transcript_path)
        answerable = done is not None
        now = time.monotonic()
        if hook.event in HOOK_FIRST:
            # a new prompt: the last turn's rows wait no longer; its own events go first
            events = track.hooks.dedupe(track.order.release(
                track.hooks.started, now, force=hook.event == "UserPromptSubmit"))
            events += track.hooks.dedupe(self._admit(
                track, track.hooks.events_for(hook, answerable=answerable), now))
            read, read_times = self._read(track)
            times = [None] * len(events) + read_times
            events += read
        else:
            read, read_times = self._read(track)
            # what waited goes first (and is known before this hook is mapped)
            own = track.hooks.dedupe(track.order.release(track.hooks.started, now,
                                                         force=hook.event == "SessionEnd"))
            own += track.hooks.dedupe(self._admit(
                track, track.hooks.events_for(hook, answerable=answerable), now))
            events = read + own
            times = read_times + [None] * len(own)
        if len(track.order) and track.settle is None:
            self._schedule_settle(track)
        if not track.sent or hook.event == "SessionStart":
            events.insert(0, track.meta)
            times.insert(0, None)
        self._release_answered(track, events)
        self._send(track, events, times)
        approval = next((e for e in events if isinstance(e, be.ApprovalRequest)), None)
        if approval is not None and done is not None:
            self._hold(track, hook, approval, event_id, done)
        else:
            self._ack(done)
        if hook.event == "SessionEnd":
            self._drop_track(track)  # a later hook (claude --resume) starts a new track

    def _drop_track(self, track: Track) -> None:
        if track.settle is not None:
            track.settle.cancel()
        self._release_all(track)
        self.tracks.pop(track.session_id, None)

    def _owned_by_direct(self, sid: str) -> bool:
        """Whether a direct session owns this claude session id (the supervisor knows the
        thread ids of direct sessions; asked, not shared). Owned ids are remembered."""
        if sid in self.direct:
            return True
        try:
            owner = self.supervisor.ask(OwnerOf(sid), timeout=self.ccfg.owner_ask_timeout_s)
        except (pykka.Timeout, pykka.ActorDeadError):
            logger.warning("claude hooks: the supervisor did not say who owns %s in time; "
                           "taken as passive", sid)
            return False
        if owner is None:
            return False
        self.direct[sid] = None
        if len(self.direct) > self.ccfg.replayed_ids:
            self.direct.popitem(last=False)
        return True

    def _admit(self, track: Track, events: list[Any], now: float) -> list[Any]:
        """A hook's events that can go now (``orbitdock.claude.order``): a tool the
        transcript has not shown yet waits for it, with what comes after, so the text
        before the call comes first. No transcript named: everything goes. A transcript
        file that does not exist yet is waited for too (a loaded claude creates it after
        its first hooks fired)."""
        if self.ccfg.transcript_settle_ms <= 0 or track.reader is None:
            return events
        track.order.max_wait_s = self.ccfg.transcript_settle_ms / 1000.0
        return track.order.admit(events, track.hooks.started, now)

    def _schedule_settle(self, track: Track) -> None:
        track.settle = threading.Timer(self.ccfg.transcript_poll_ms / 1000.0,
                                       self._tell_settle, args=(track.session_id,))
        track.settle.daemon = True
        track.settle.start()

    def _tell_settle(self, sid: str) -> None:
        try:
            self.actor_ref.tell(Settle(sid))
        except pykka.ActorDeadError:
            pass

    def _settle(self, sid: str) -> None:
        """A look at the transcript while hook events wait for it: send what it shows
        now and the events it let go (or whose wait is over); look again while any wait."""
        track = self.tracks.get(sid)
        if track is None:
            return
        track.settle = None
        events, times = self._read(track)
        waited = track.hooks.dedupe(track.order.release(track.hooks.started, time.monotonic()))
        events += waited
        times += [None] * len(waited)
        if len(track.order):
            self._schedule_settle(track)
        if events:
            self._release_answered(track, events)
            self._send(track, events, times)

    def _flush_waiting(self) -> int:
        """The daemon stops: what the transcript shows now, then every event still
        waiting for it, in order (rows may then precede their text; none is lost)."""
        flushed = 0
        for track in self.tracks.values():
            if track.settle is not None:
                track.settle.cancel()
                track.settle = None
            events, times = self._read(track)
            waited = track.hooks.dedupe(track.order.release(track.hooks.started,
                                                            time.monotonic(), force=True))
            flushed += len(waited)
            events += waited
            times += [None] * len(waited)
            if events:
                self._release_answered(track, events)
                self._send(track, events, times)
        if flushed:
            logger.info("claude hooks: %d event(s) waiting for their transcript sent at stop",
                        flushed)
        return flushed

    def _track(self, sid: str, meta: be.ThreadStarted) -> Track:
        track = Track(sid, meta, HookSession(sid), TranscriptParser(sid))
        self.tracks[sid] = track
        return track

    def _expire_pending(self, now: float) -> None:
        ttl = self.ccfg.pending_start_ttl_s
        for sid in [s for s, (_, at) in self.pending.items() if now - at > ttl]:
            del self.pending[sid]

    def _follow(self, track: Track, path: str | None) -> None:
        path = path or track.meta.transcript_path
        if not path or (track.reader is not None and track.reader.path == path):
            return
        track.reader = RolloutReader(path, self.offsets.get(path, 0),
                                     chunk_bytes=self.ccfg.transcript_chunk_bytes,
                                     max_line_bytes=self.ccfg.transcript_max_line_bytes)

    def _read(self, track: Track) -> tuple[list[Any], list[float | None]]:
        """The transcript's new complete lines as events (deduplicated against hooks)."""
        if track.reader is None:
            return [], []
        result = track.reader.read_lines()
        if result.reset:
            track.parser = TranscriptParser(track.session_id)
        events: list[Any] = []
        times: list[float | None] = []
        for line, _end in result.lines:
            for event, at in track.parser.feed(line):
                for kept in track.hooks.dedupe([event]):
                    events.append(kept)
                    times.append(at)
        return events, times

    def _send(self, track: Track, events: list[Any], times: list[float | None]) -> None:
        reader = track.reader
        if reader is not None:
            offset = SaveRolloutOffset(reader.path, reader.offset, session_id=track.session_id,
                                       size=reader.size, mtime=reader.mtime)
            self.offsets[reader.path] = reader.offset
        else:
            offset = SaveRolloutOffset(f"claude-hooks:{track.session_id}", 0,
                                       session_id=track.session_id)
        if not events and track.sent:
            return
        track.sent = True
        self.supervisor.tell(RolloutBatch(session_id=track.session_id, events=events,
                                          offset=offset, meta=track.meta, timestamps=times,
                                          provider="claude"))

    # ------------------------------------------------------------ approvals
    def _hold(self, track: Track, hook: Hook, approval: be.ApprovalRequest, event_id: str,
              done: Any) -> None:
        """Keep the forwarder's request until a client decides, or the wait runs out."""
        p = hook.payload
        previous = track.held.pop(approval.key, None)
        if previous is not None:  # claude asked again for the same tool: the old one is moot
            self._release(previous)
        held = Held(done, event_id, str(p.get("tool_name")),
                    p.get("tool_input") if isinstance(p.get("tool_input"), dict) else {},
                    list(p.get("permission_suggestions") or []))
        held.timer = threading.Timer(self.ccfg.permission_wait_s, self._tell_expired,
                                     args=(track.session_id, approval.key, event_id))
        held.timer.daemon = True
        held.timer.start()
        track.held[approval.key] = held

    def _tell_expired(self, sid: str, key: Any, event_id: str) -> None:
        try:
            self.actor_ref.tell(PermissionExpired(sid, key, event_id))
        except pykka.ActorDeadError:
            pass

    @staticmethod
    def _release(held: Held) -> None:
        """Answer a held forwarder with no decision: claude asks in its terminal."""
        if held.timer is not None:
            held.timer.cancel()
        try:
            held.done(m.Ack(result={"output": None, "decision": None}))
        except pykka.ActorDeadError:  # shutting down: the forwarder's own wait ends it
            pass

    def _release_all(self, track: Track) -> None:
        for held in track.held.values():
            self._release(held)
        track.held.clear()

    def _release_answered(self, track: Track, events: list[Any]) -> None:
        """A tool that finished, or a turn that ended, no longer waits for a decision."""
        for event in events:
            if isinstance(event, be.ApprovalCleared) and event.key in track.held:
                self._release(track.held.pop(event.key))
            elif isinstance(event, (be.TurnCompleted, be.BackendEnded)):
                self._release_all(track)

    def _expired(self, message: PermissionExpired) -> None:
        track = self.tracks.get(message.session_id)
        held = track.held.get(message.key) if track is not None else None
        if held is None or held.event_id != message.event_id:
            return
        del track.held[message.key]
        self.counters["expired"] += 1
        logger.info("claude permission request not decided within %.0fs; claude asks in its "
                    "terminal", self.ccfg.permission_wait_s,
                    extra={"session_id": message.session_id})
        self._release(held)

    def _decide(self, d: Decide) -> None:
        track = self.tracks.get(d.session_id)
        held = track.held.pop(d.key, None) if track is not None else None
        if held is None:
            d.emit(be.CommandResult(d.token, ok=False, error_code=str(ErrorCode.STALE_APPROVAL),
                                    error_message="claude no longer waits for this decision "
                                    "(answered in its terminal, or the wait ran out: "
                                    "it asks there now)"))
            return
        if held.timer is not None:
            held.timer.cancel()
        output = permission_output(d.decision or "decline", tool_name=held.tool_name,
                                   tool_input=held.tool_input, suggestions=held.suggestions,
                                   answers=d.answers)
        held.done(m.Ack(result={"output": output, "decision": d.decision}))
        self.counters["decisions"] += 1
        d.emit(be.CommandResult(d.token, ok=True, result={"decision": d.decision}))

    # ------------------------------------------------------------ spool
    def _replay_spool(self) -> None:
        """Every spooled event, oldest first, exactly once (the file goes once handled)."""
        try:
            names = sorted(n for n in os.listdir(self.spool_dir)
                           if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return
        for name in names:
            path = self.spool_dir / name
            try:
                if path.stat().st_size > self.cfg.gateway.max_frame_bytes:
                    raise ProtocolError(ErrorCode.TOO_LARGE, f"{path.stat().st_size} bytes")
                record = orjson.loads(path.read_bytes())
                hook = parse_hook(str(record.get("event")), str(record.get("payload") or ""))
                self._handle(hook, str(record.get("event_id") or ""), None)
                self.counters["replayed"] += 1
            except ProtocolError as exc:
                self.counters["refused"] += 1
                logger.warning("spooled claude hook %s refused (code %s): %s", name, exc.code,
                               exc.message)
            except (OSError, ValueError, AttributeError) as exc:
                self.counters["refused"] += 1
                logger.warning("spooled claude hook %s unreadable (code %s): %r", name,
                               ErrorCode.INVALID_ARGUMENT, exc)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
