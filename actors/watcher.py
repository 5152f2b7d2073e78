"""WatcherActor: every terminal-started Codex session, live, from its rollout JSONL.

Threads: the watchdog Observer owns the inotify watch and one timer thread
(``orbitdock.timers.ActorTimer``) owns the deadlines; both only ``tell`` this actor,
which owns every reader, parser and counter. Filesystem events are hints: a file is always read from its byte
offset to its end. The first change after a quiet spell is read at once; the
changes that follow within ``coalesce_ms`` are read together at the end of that
window (so a burst costs one read per window and a file written continuously is
still read every window),
and a size sweep every ``sweep_interval_s`` catches what inotify dropped
(queue overflow) or never saw.

Exactly-once: the offset of the last complete line travels in the same
RolloutBatch as the events derived from the lines before it, and the session
actor commits both in one transaction. Offsets of files that create no session
(our own app-server threads, lines before any session_meta) go straight to
persistence. Work per message is bounded (``batch_lines``), so a 600 MB import
streams in batches interleaved with live files and ``status()`` calls, and it
pauses while a downstream inbox holds more than ``backlog_limit`` messages (batches).

This actor schedules and routes; the pure parts live in ``orbitdock.rollout``:
``follow`` (one file: reader -> parser -> git and name enrichment), ``fsevents``
(the two threads and what they tell), ``scan`` (finding rollouts, codex's name
index), ``idle`` (sessions' inactivity clocks) and ``routes``.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pykka
from watchdog.observers import Observer

from actors.messages import RolloutBatch, RolloutIdle, RouteAnswer, RouteRequest
from orbitdock.connectors.events import NameUpdated
from orbitdock.protocol import messages as m
from orbitdock.rollout.follow import FollowedFile
from orbitdock.rollout.fsevents import EVENT_KINDS, FsEventHandler, Hint, Moved, Tick
from orbitdock.rollout.git import GitResolver
from orbitdock.rollout.idle import IDLE, LATER, IdleClocks
from orbitdock.rollout.legacy_state import LEGACY_FILE, load_legacy_offsets
from orbitdock.rollout.reader import RolloutReader
from orbitdock.rollout.routes import SessionRoutes
from orbitdock.rollout.scan import INDEX_FILE, index_names, moved_twin, recent_dirs, scan
from orbitdock.timers import ActorTimer
from orbitdock.protocol.routing import ClientRequest, RequestTable, Scope, answers
from orbitdock.transport import Outlet

logger = logging.getLogger(__name__)


class WatcherActor(pykka.ThreadingActor):
    def __init__(self, config: Any, codex_home: Path, supervisor: pykka.ActorRef,
                 persistence: pykka.ActorRef, *, ctx: Any = None,
                 inproc_endpoint: str | None = None) -> None:
        super().__init__()
        # Client requests (rollouts status / import) are answered through an outlet this
        # actor creates on its own thread; without a ctx (tests) only ask() works.
        self.ctx, self.inproc_endpoint = ctx, inproc_endpoint
        self.outlet: Outlet | None = None
        self.cfg, self.wcfg = config, config.watcher
        self.home = Path(os.path.abspath(os.path.expanduser(str(codex_home))))
        self.roots = [str(self.home / "sessions"), str(self.home / "archived_sessions")]
        self.supervisor, self.persistence = supervisor, persistence
        # Passive sessions' batches go straight to their actors once the supervisor says
        # which (one hop less on the append -> client path); see orbitdock.rollout.routes.
        self.routes = SessionRoutes(supervisor.tell, self._ask_route)
        self.files: dict[str, FollowedFile] = {}
        self.idle = IdleClocks(self.wcfg.inactivity_timeout_s)
        self.unknown: dict[str, tuple[int, float]] = {}  # older files left for import_rollouts
        self.names: dict[str, str] = {}  # thread id -> codex name (session_index.jsonl)
        self.index = RolloutReader(str(self.home / INDEX_FILE),
                                   chunk_bytes=self.wcfg.read_chunk_bytes,
                                   max_line_bytes=self.wcfg.max_line_bytes)
        self.git = GitResolver(miss_ttl_s=self.wcfg.sweep_interval_s)
        self.dirty: set[str] = set()
        self.flush_pending = False
        self.last_flush = 0.0  # monotonic time of the last read of the dirty files
        self.backoff = 0.0
        self.counters: Counter[str] = Counter()
        self.observer: Any = None
        self.watched: set[str] = set()
        self.timer: ActorTimer | None = None

    # ------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        self.requests = RequestTable(self, Scope.WATCHER)
        if self.ctx is not None and self.inproc_endpoint:
            self.outlet = Outlet(self.inproc_endpoint, self.cfg.gateway.inbound_hwm)
        offsets = self._load_offsets()
        horizon = time.time() - self.wcfg.follow_recent_minutes * 60
        for path, size, mtime in scan(self.roots):
            stored = offsets.get(path)
            if stored is not None:
                # only recent files start their session's idle clock
                sid = stored.get("session_id") if mtime >= horizon else None
                self._track(path, int(stored.get("offset") or 0), sid, mtime)
            elif mtime >= horizon:
                self._track(path, 0, None, mtime)
            else:
                self.unknown[path] = (size, mtime)
        self._read_index(announce=False)
        self.timer = ActorTimer(self.actor_ref, "watcher-timer")
        self._start_observer()
        self.actor_ref.tell(Tick("sweep"))
        logger.info("watching %s: %d files followed, %d older files left for import",
                    self.home, len(self.files), len(self.unknown))

    def on_stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join()
        if self.timer is not None:
            self.timer.stop()
        if self.outlet is not None:
            self.outlet.close()

    def _load_offsets(self) -> dict[str, dict[str, Any]]:
        try:
            offsets = self.persistence.proxy().load_rollout_offsets().get(
                timeout=self.cfg.persistence.ask_timeout_s)
        except (pykka.Timeout, pykka.ActorDeadError, AttributeError) as exc:
            logger.error("cannot load rollout offsets (%r); following recent files from 0", exc)
            return {}
        if offsets:
            return dict(offsets)
        legacy = load_legacy_offsets(Path(self.cfg.paths.data_dir).expanduser() / LEGACY_FILE)
        for cmd in legacy:
            self.persistence.tell(cmd)
        return {c.path: {"offset": c.offset, "session_id": c.session_id} for c in legacy}

    def _start_observer(self) -> None:
        """Watch whichever of sessions/, archived_sessions/ and CODEX_HOME exist (idempotent)."""
        wanted = [(self.roots[0], True), (self.roots[1], False), (str(self.home), False)]
        missing = [(p, rec) for p, rec in wanted if p not in self.watched and os.path.isdir(p)]
        if not missing:
            return
        if self.observer is None:
            self.observer = Observer()
            self.observer.start()
        handler = FsEventHandler(self.actor_ref)
        for path, recursive in missing:
            self.observer.schedule(handler, path, recursive=recursive, event_filter=EVENT_KINDS)
            self.watched.add(path)

    # ------------------------------------------------------------ public API (ask)
    def import_rollouts(self, since: float | None = None) -> dict[str, int]:
        """Queue older, never-seen rollouts (mtime >= since) for import; returns counters.

        Returns at once; progress shows in ``status()``. Offsets persist per batch,
        so an import interrupted by a restart resumes where it stopped.
        """
        for path, size, mtime in scan(self.roots):
            if path not in self.files:
                self.unknown.setdefault(path, (size, mtime))
        picked = [p for p, (_, mtime) in self.unknown.items() if since is None or mtime >= since]
        queued_bytes = 0
        for path in picked:
            size, mtime = self.unknown.pop(path)
            queued_bytes += size
            self._track(path, 0, None, mtime)
            self._continue_later(self.files[path])
        self.counters["imports_queued"] += len(picked)
        return {"queued_files": len(picked), "queued_bytes": queued_bytes,
                "remaining_unknown": len(self.unknown), "followed": len(self.files)}

    def status(self) -> dict[str, Any]:
        unknown: Counter[str] = Counter()
        for f in self.files.values():
            unknown.update(f.parser.unknown)
        files = [f.report() for f in self.files.values()]
        sessions, idle = self.idle.counts()
        return {
            "codex_home": str(self.home), "observing": self.observer is not None,
            "files_followed": len(self.files), "files_unknown": len(self.unknown),
            "sessions": sessions, "sessions_idle": idle,
            "lag_bytes": sum(f["lag"] for f in files),
            "lines_parsed": sum(f["lines"] for f in files),
            "malformed_lines": sum(f["malformed"] for f in files),
            "errors": sum(f["errors"] for f in files), "unknown_types": dict(unknown),
            "counters": dict(self.counters, routes_asked=self.routes.asked,
                             direct_sends=self.routes.direct),
            "files": files}

    # ------------------------------------------------------------ inbox
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Hint):
            self._on_hint(message.path)
        elif isinstance(message, Moved):
            self._on_moved(message.src, message.dest)
        elif isinstance(message, Tick):
            getattr(self, "_tick_" + message.kind)(message.key)
        elif isinstance(message, RouteAnswer):
            self.routes.answer(message.session_id, message.ref, passive=message.passive)
        elif isinstance(message, ClientRequest) and self.outlet is not None:
            self._on_request(message)
        return None

    def _on_request(self, req: ClientRequest) -> None:
        self.outlet.answer(req, self.requests.handler(req.request)(req))

    @answers(m.RolloutsStatus)
    def _status_report(self, req: ClientRequest) -> m.RolloutsReport:
        return m.RolloutsReport(report=self.status())

    @answers(m.ImportRollouts)
    def _import_report(self, req: ClientRequest) -> m.RolloutsReport:
        return m.RolloutsReport(report=self.import_rollouts(req.request.since))

    def _on_hint(self, path: str) -> None:
        self.counters["hints"] += 1
        if path == self.index.path:
            self._read_index(announce=True)
            return
        if not any(path == r or path.startswith(r + os.sep) for r in self.roots):
            return  # e.g. history.jsonl or log/ next to sessions/ in CODEX_HOME
        if os.path.isdir(path):
            self._start_observer()  # sessions/ or archived_sessions/ may appear after start
            for found, _, _ in scan([path], self._known):
                self._on_hint(found)
            return
        if path not in self.files:
            twin = moved_twin(path, [*self.files, *self.unknown])
            if twin is not None:  # moved while inotify was not looking (overflow)
                self._on_moved(twin, path)
                return
            self.unknown.pop(path, None)  # an old session resumed: it is live again
            self._track(path, 0, None, time.time())
        self.dirty.add(path)
        if self.flush_pending:
            return
        window = self.wcfg.coalesce_ms / 1000.0
        since = time.monotonic() - self.last_flush
        if since >= window:
            self._tick_flush("")  # leading edge: no wait for a lone append
        else:
            self.flush_pending = True
            self.timer.after(window - since, Tick("flush"))

    def _on_moved(self, src: str, dest: str) -> None:
        f = self.files.pop(src, None)
        if f is None:
            if src in self.unknown:  # an old, never-imported rollout archived: still not followed
                self.unknown[dest] = self.unknown.pop(src)
            else:
                self._on_hint(dest)
            return
        logger.info("rollout moved %s -> %s", src, dest)  # archive / unarchive keep the inode
        f.move_to(dest)
        self.files[dest] = f
        self.idle.moved(f.parser.thread_id, src, dest)
        self._process(dest, f, force_offset=True)

    def _tick_flush(self, _key: str) -> None:
        self.flush_pending = False
        self.last_flush = time.monotonic()
        dirty, self.dirty = self.dirty, set()
        for path in dirty:
            f = self.files.get(path)
            if f is not None and not f.continuing:
                self._process(path, f)

    def _tick_continue(self, path: str) -> None:
        f = self.files.get(path)
        if f is None:
            return
        f.continuing = False
        if self._backlogged():
            self._continue_later(f, delay=True)
            return
        self._process(path, f)

    def _tick_sweep(self, _key: str) -> None:
        self.counters["sweeps"] += 1
        self._start_observer()
        for path in list(self.files):
            f = self.files.get(path)
            if f is not None and not f.continuing and f.changed_on_disk():
                self.counters["sweep_reads"] += 1
                self._process(path, f)
        for path, _, _ in scan(recent_dirs(self.roots[0], self.roots[1:]), self._known):
            self._on_hint(path)
        self._read_index(announce=True)
        self.timer.after(self.wcfg.sweep_interval_s, Tick("sweep"))

    def _tick_idle(self, sid: str) -> None:
        importing = any(p in self.files and self.files[p].continuing
                        for p in self.idle.paths(sid))
        verdict, delay = self.idle.check(sid, time.time(), importing,
                                         retry_s=self.wcfg.sweep_interval_s)
        if verdict == LATER:
            self._schedule_idle(sid, delay)
        elif verdict == IDLE:
            self.counters["idle_sent"] += 1
            self.routes.send(sid, RolloutIdle(sid))

    # ------------------------------------------------------------ reading
    def _track(self, path: str, offset: int, session_id: str | None, mtime: float) -> None:
        self.files[path] = FollowedFile(path, offset, session_id,
                                        chunk_bytes=self.wcfg.read_chunk_bytes,
                                        max_line_bytes=self.wcfg.max_line_bytes)
        if session_id:
            self._touch(session_id, path, mtime)

    def _process(self, path: str, f: FollowedFile, force_offset: bool = False) -> None:
        """Read one bounded batch from ``f`` and send what it yields."""
        try:
            self._read_batch(path, f, force_offset)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop watching the rest
            f.errors += 1
            f.last_error = repr(exc)
            logger.exception("rollout %s: read failed", path)

    def _read_batch(self, path: str, f: FollowedFile, force_offset: bool) -> None:
        batch = f.read(self.wcfg.batch_lines, git=self.git, names=self.names,
                       own_originator=self.cfg.codex.client_name, force_offset=force_offset)
        if batch is None:
            return  # gone: moved (a move event or the next scan finds it) or deleted
        if batch.reset:
            self.counters["resets"] += 1
        if not batch.eof:
            self._continue_later(f)
        if not batch.changed:
            return
        sid = batch.offset.session_id
        if f.own or sid is None:
            # Our own app-server thread (its direct session shows it), or lines before
            # any session_meta: keep the position, create nothing.
            self.persistence.tell(batch.offset)
            return
        self.routes.send(sid, RolloutBatch(sid, batch.events, batch.offset, meta=f.meta,
                                           timestamps=batch.times))
        self.counters["batches"] += 1
        if batch.lines:
            self._touch(sid, path, batch.mtime)

    def _ask_route(self, sid: str) -> None:
        self.supervisor.tell(RouteRequest(sid, self.actor_ref))

    def _continue_later(self, f: FollowedFile, delay: bool = False) -> None:
        if f.continuing:
            return
        f.continuing = True
        msg = Tick("continue", f.path)
        if delay:
            step = self.wcfg.coalesce_ms / 1000.0
            self.backoff = min(max(step, self.backoff * 2), self.wcfg.sweep_interval_s)
            self.timer.after(self.backoff, msg)
        else:
            self.actor_ref.tell(msg)

    def _backlogged(self) -> bool:
        limit = self.wcfg.backlog_limit
        deep = (any(ref.actor_inbox.qsize() > limit for ref in (self.supervisor, self.persistence))
                or self.routes.backlogged(limit))
        if not deep:
            self.backoff = 0.0
        else:
            self.counters["backlog_pauses"] += 1
        return deep

    # ------------------------------------------------------------ sessions, names, files
    def _touch(self, sid: str, path: str, mtime: float) -> None:
        delay = self.idle.touch(sid, path, mtime, time.time())
        if delay is not None:
            self._schedule_idle(sid, delay)

    def _schedule_idle(self, sid: str, delay: float) -> None:
        if self.timer is None:  # on_start: the timer starts after the first scan
            self.actor_ref.tell(Tick("idle", sid))
        else:
            self.timer.after(delay, Tick("idle", sid))

    def _read_index(self, announce: bool) -> None:
        """Follow codex's session_index.jsonl: 0.169 keeps thread names there, not in rollouts."""
        try:
            lines = self.index.read_lines().lines
        except OSError as exc:
            logger.warning("cannot read %s: %s", self.index.path, exc)
            return
        for tid, name in index_names(lines):
            if self.names.get(tid) == name:
                continue
            self.names[tid] = name
            if announce:
                self._announce_name(tid, name)

    def _announce_name(self, sid: str, name: str) -> None:
        for path in self.idle.paths(sid):
            f = self.files.get(path)
            if f is not None and f.meta is not None:
                self.routes.send(sid, RolloutBatch(sid, [NameUpdated(name)], f.position(),
                                                   meta=f.meta))
                return

    def _known(self, path: str) -> bool:
        return path in self.files or path in self.unknown
