"""WatcherActor: every terminal-started Codex session, live, from its rollout JSONL.

Threads: the watchdog Observer owns the inotify watch and one timer thread owns
the deadlines; both only ``tell`` this actor, which owns every reader, parser
and counter. Filesystem events are hints: a file is always read from its byte
offset to its end, a burst of events for a file is read once ``coalesce_ms``
after the first (so a file written continuously is still read every window),
and a size sweep every ``sweep_interval_s`` catches what inotify dropped
(queue overflow) or never saw.

Exactly-once: the offset of the last complete line travels in the same
RolloutBatch as the events derived from the lines before it, and the session
actor commits both in one transaction. Offsets of files that create no session
(our own app-server threads, lines before any session_meta) go straight to
persistence. Work per message is bounded (``batch_lines``), so a 600 MB import
streams in batches interleaved with live files and ``status()`` calls, and it
pauses while a downstream mailbox is deeper than ``backlog_limit``.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pykka
from watchdog.events import (DirCreatedEvent, DirMovedEvent, FileCreatedEvent, FileModifiedEvent,
                             FileMovedEvent, FileSystemEvent, FileSystemEventHandler)
from watchdog.observers import Observer

from actors.messages import ClientRequest, RolloutBatch, RolloutIdle
from orbitdock.protocol import messages as m
from orbitdock.transport import Outlet
from orbitdock.connectors.events import NameUpdated, ProjectInfo, ThreadStarted, TurnStarted
from orbitdock.rollout.git import GitResolver
from orbitdock.rollout.legacy_state import LEGACY_FILE, load_legacy_offsets
from orbitdock.rollout.parser import RolloutParser
from orbitdock.rollout.reader import RolloutReader
from orbitdock.store.commands import SaveRolloutOffset

logger = logging.getLogger(__name__)

INDEX_FILE = "session_index.jsonl"  # codex's thread names (thread/name/set, /rename)
_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class _Hint:
    path: str  # a file (or, with is_dir, a directory) changed or appeared


@dataclass(frozen=True, slots=True)
class _Moved:
    src: str
    dest: str


@dataclass(frozen=True, slots=True)
class _Tick:
    kind: str  # flush | sweep | continue | idle
    key: str = ""


class _Timer:
    """One thread that tells the actor scheduled messages; it never touches actor state."""

    def __init__(self, ref: pykka.ActorRef) -> None:
        self._ref, self._heap, self._seq = ref, [], itertools.count()
        self._cond, self._stopped = threading.Condition(), False
        self._thread = threading.Thread(target=self._run, name="watcher-timer", daemon=True)
        self._thread.start()

    def schedule(self, delay: float, message: Any) -> None:
        with self._cond:
            deadline = time.monotonic() + max(0.0, delay)
            heapq.heappush(self._heap, (deadline, next(self._seq), message))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                message = heapq.heappop(self._heap)[2]
            try:
                self._ref.tell(message)
            except pykka.ActorDeadError:
                return


class _Events(FileSystemEventHandler):
    """Runs on the Observer thread: turns fs events into hints and nothing else."""

    def __init__(self, ref: pykka.ActorRef) -> None:
        self._ref = ref

    def on_any_event(self, event: FileSystemEvent) -> None:
        src, dest = os.fsdecode(event.src_path), os.fsdecode(event.dest_path or b"")
        try:
            if event.is_directory:
                self._ref.tell(_Hint(dest or src))
            elif event.event_type == "moved":
                self._ref.tell(_Moved(src, dest))
            elif src.endswith(".jsonl"):
                self._ref.tell(_Hint(src))
        except pykka.ActorDeadError:
            pass  # stopping: the observer is being torn down too


_EVENT_KINDS = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, DirCreatedEvent, DirMovedEvent]


@dataclass(slots=True)
class _File:
    reader: RolloutReader
    parser: RolloutParser
    prime: bool = False  # resumed past session_meta: bind the thread from line 1 first
    expect: str | None = None  # the thread the stored offset was saved for
    own: bool = False
    meta: ThreadStarted | None = None  # enriched (git, codex name) and already sent
    branch: str | None = None  # git branch last reported for this file's session
    continuing: bool = False
    errors: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Session:
    paths: set[str] = field(default_factory=set)
    last_write: float = 0.0  # newest mtime of its files: when codex last wrote a line
    idle_sent: bool = False
    check_pending: bool = False


def _file_tag(path: str) -> str:
    """"_<uuid>" for the extra files thread/revert writes (their offsets restart at 0)."""
    stem = os.path.basename(path)[:-len(".jsonl")]
    return stem[stem.rindex("_"):] if "_" in stem[-40:] else ""


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
        self.files: dict[str, _File] = {}
        self.sessions: dict[str, _Session] = {}
        self.unknown: dict[str, tuple[int, float]] = {}  # older files left for import_rollouts
        self.names: dict[str, str] = {}  # thread id -> codex name (session_index.jsonl)
        self.index = RolloutReader(str(self.home / INDEX_FILE),
                                   chunk_bytes=self.wcfg.read_chunk_bytes,
                                   max_line_bytes=self.wcfg.max_line_bytes)
        self.git = GitResolver(miss_ttl_s=self.wcfg.sweep_interval_s)
        self.dirty: set[str] = set()
        self.flush_pending = False
        self.backoff = 0.0
        self.counters: Counter[str] = Counter()
        self.observer: Any = None
        self.watched: set[str] = set()
        self.timer: _Timer | None = None

    # ------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        if self.ctx is not None and self.inproc_endpoint:
            self.outlet = Outlet(self.ctx, self.inproc_endpoint, self.cfg.gateway.inbound_hwm)
        offsets = self._load_offsets()
        horizon = time.time() - self.wcfg.follow_recent_minutes * 60
        for path, size, mtime in self._scan():
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
        self.timer = _Timer(self.actor_ref)
        self._start_observer()
        self.actor_ref.tell(_Tick("sweep"))
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
        handler = _Events(self.actor_ref)
        for path, recursive in missing:
            self.observer.schedule(handler, path, recursive=recursive, event_filter=_EVENT_KINDS)
            self.watched.add(path)

    # ------------------------------------------------------------ public API (ask)
    def import_rollouts(self, since: float | None = None) -> dict[str, int]:
        """Queue older, never-seen rollouts (mtime >= since) for import; returns counters.

        Returns at once; progress shows in ``status()``. Offsets persist per batch,
        so an import interrupted by a restart resumes where it stopped.
        """
        for path, size, mtime in self._scan():
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
        files = []
        for path, f in self.files.items():
            unknown.update(f.parser.unknown)
            size = f.reader.size
            if f.reader.inode is None:  # not read yet (queued import): ask the filesystem
                try:
                    size = os.stat(path).st_size
                except OSError:
                    size = 0
            files.append({"path": path, "session_id": f.parser.thread_id, "own": f.own,
                          "offset": f.reader.offset, "size": size,
                          "lag": max(0, size - f.reader.offset),
                          "lines": f.parser.lines, "malformed": f.parser.malformed,
                          "errors": f.errors, "last_error": f.last_error})
        return {
            "codex_home": str(self.home), "observing": self.observer is not None,
            "files_followed": len(self.files), "files_unknown": len(self.unknown),
            "sessions": len(self.sessions),
            "sessions_idle": sum(1 for s in self.sessions.values() if s.idle_sent),
            "lag_bytes": sum(f["lag"] for f in files),
            "lines_parsed": sum(f["lines"] for f in files),
            "malformed_lines": sum(f["malformed"] for f in files),
            "errors": sum(f["errors"] for f in files), "unknown_types": dict(unknown),
            "counters": dict(self.counters), "files": files}

    # ------------------------------------------------------------ inbox
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Hint):
            self._on_hint(message.path)
        elif isinstance(message, _Moved):
            self._on_moved(message.src, message.dest)
        elif isinstance(message, _Tick):
            getattr(self, "_tick_" + message.kind)(message.key)
        elif isinstance(message, ClientRequest) and self.outlet is not None:
            self._on_request(message)
        return None

    def _on_request(self, req: ClientRequest) -> None:
        r = req.request
        if isinstance(r, m.ImportRollouts):
            report = self.import_rollouts(r.since)
        else:
            report = self.status()
        self.outlet.reply(req.identity, m.RolloutsReport(id=r.id, report=report))

    def _on_hint(self, path: str) -> None:
        self.counters["hints"] += 1
        if path == self.index.path:
            self._read_index(announce=True)
            return
        if not any(path == r or path.startswith(r + os.sep) for r in self.roots):
            return  # e.g. history.jsonl or log/ next to sessions/ in CODEX_HOME
        if os.path.isdir(path):
            self._start_observer()  # sessions/ or archived_sessions/ may appear after start
            for found, _, _ in self._scan(path, skip_known=True):
                self._on_hint(found)
            return
        if path not in self.files:
            twin = self._missing_twin(path)
            if twin is not None:  # moved while inotify was not looking (overflow)
                self._on_moved(twin, path)
                return
            self.unknown.pop(path, None)  # an old session resumed: it is live again
            self._track(path, 0, None, time.time())
        self.dirty.add(path)
        if not self.flush_pending:
            self.flush_pending = True
            self.timer.schedule(self.wcfg.coalesce_ms / 1000.0, _Tick("flush"))

    def _on_moved(self, src: str, dest: str) -> None:
        f = self.files.pop(src, None)
        if f is None:
            if src in self.unknown:  # an old, never-imported rollout archived: still not followed
                self.unknown[dest] = self.unknown.pop(src)
            else:
                self._on_hint(dest)
            return
        logger.info("rollout moved %s -> %s", src, dest)  # archive / unarchive keep the inode
        f.reader.path = f.parser.path = dest
        self.files[dest] = f
        sid = f.parser.thread_id
        if sid in self.sessions:
            self.sessions[sid].paths.discard(src)
            self.sessions[sid].paths.add(dest)
        self._process(dest, f, force_offset=True)

    def _missing_twin(self, path: str) -> str | None:
        """A known path with the same file name that is gone: the file was moved."""
        name = os.path.basename(path)
        for known in itertools.chain(self.files, self.unknown):
            if os.path.basename(known) == name and not os.path.exists(known):
                return known
        return None

    def _tick_flush(self, _key: str) -> None:
        self.flush_pending = False
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
            if f is None or f.continuing:
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # moved or deleted: a move event or a rescan finds it again
            replaced = f.reader.inode is not None and (st.st_dev, st.st_ino) != f.reader.inode
            if replaced or st.st_size != f.reader.read_pos:
                self.counters["sweep_reads"] += 1
                self._process(path, f)
        for day in self._recent_dirs():
            for path, _, _ in self._scan(day, skip_known=True):
                self._on_hint(path)
        self._read_index(announce=True)
        self.timer.schedule(self.wcfg.sweep_interval_s, _Tick("sweep"))

    def _tick_idle(self, sid: str) -> None:
        s = self.sessions.get(sid)
        if s is None:
            return
        s.check_pending = False
        if s.idle_sent:
            return
        if any(p in self.files and self.files[p].continuing for p in s.paths):
            self._schedule_idle(sid, s, self.wcfg.sweep_interval_s)  # still importing
            return
        remaining = s.last_write + self.wcfg.inactivity_timeout_s - time.time()
        if remaining > 0:
            self._schedule_idle(sid, s, remaining)
            return
        s.idle_sent = True
        self.counters["idle_sent"] += 1
        self.supervisor.tell(RolloutIdle(sid))

    # ------------------------------------------------------------ reading
    def _track(self, path: str, offset: int, session_id: str | None, mtime: float) -> None:
        reader = RolloutReader(path, offset, chunk_bytes=self.wcfg.read_chunk_bytes,
                               max_line_bytes=self.wcfg.max_line_bytes)
        self.files[path] = _File(reader, RolloutParser(path, _file_tag(path)), prime=offset > 0,
                                 expect=session_id)
        if session_id:
            self._touch(session_id, path, mtime)

    def _process(self, path: str, f: _File, force_offset: bool = False) -> None:
        """Read one bounded batch from ``f`` and send what it yields."""
        try:
            self._read_batch(path, f, force_offset)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop watching the rest
            f.errors += 1
            f.last_error = repr(exc)
            logger.exception("rollout %s: read failed", path)

    def _read_batch(self, path: str, f: _File, force_offset: bool) -> None:
        if f.prime:
            f.prime = False
            first = RolloutReader(path, 0, chunk_bytes=self.wcfg.read_chunk_bytes,
                                  max_line_bytes=self.wcfg.max_line_bytes).read_lines(1).lines
            if first:
                f.parser.prime(first[0][0])
            if f.expect and f.parser.thread_id not in (None, f.expect):
                # Same path, another thread (the stale-binding guard upstream has too).
                f.reader.reset("replaced by another thread's rollout")
                f.parser = RolloutParser(path, _file_tag(path))
        before = f.reader.offset
        res = f.reader.read_lines(self.wcfg.batch_lines)
        if res.missing:
            return
        if res.reset:
            self.counters["resets"] += 1
            f.parser, f.meta, f.own = RolloutParser(path, _file_tag(path)), None, False
        if not res.eof:
            self._continue_later(f)
        if not res.lines and f.reader.offset == before and not force_offset and not res.reset:
            return
        offset = SaveRolloutOffset(path, f.reader.offset, f.parser.thread_id, res.size, res.mtime)
        if f.own:
            self.persistence.tell(offset)
            return
        parser, events = f.parser, []
        for line, end in res.lines:
            events.extend(parser.feed(line, end))
        sid = parser.thread_id
        offset.session_id = sid
        if parser.originator is not None and parser.originator == self.cfg.codex.client_name:
            f.own = True  # our own app-server thread: its direct session already shows it
            logger.info("rollout %s is our own app-server thread; not shadowing it", path)
            self.persistence.tell(offset)
            return
        if sid is None:
            self.persistence.tell(offset)  # no session_meta (yet): nothing to attach lines to
            return
        events = self._enrich(f, events)
        self.supervisor.tell(RolloutBatch(sid, events, offset, meta=f.meta))
        self.counters["batches"] += 1
        if res.lines:
            self._touch(sid, path, res.mtime)

    def _enrich(self, f: _File, events: list[Any]) -> list[Any]:
        """Add git and codex-name details; send ThreadStarted first in each process.

        Git is looked up only here (new session, new cwd, new turn), never per line;
        a lookup is a cached stat of .git/HEAD.
        """
        out = []
        for ev in events:
            if isinstance(ev, ThreadStarted):
                continue
            if isinstance(ev, ProjectInfo) and ev.cwd:
                info = self.git.resolve(ev.cwd)
                if info is not None:
                    f.branch = ev.git_branch or info.branch
                    ev = dataclasses.replace(ev, git_branch=f.branch,
                                             project_name=ev.project_name or info.project_name)
            elif isinstance(ev, TurnStarted) and f.meta is not None:
                info = self.git.resolve(f.parser.cwd)
                if info is not None and info.branch and info.branch != f.branch:
                    f.branch = info.branch  # switched branches between turns
                    out.append(ProjectInfo(git_branch=info.branch))
            out.append(ev)
        meta = f.parser.meta
        if f.meta is None and meta is not None:
            info = self.git.resolve(meta.cwd)
            f.branch = meta.git_branch or (info.branch if info else None)
            f.meta = dataclasses.replace(meta, git_branch=f.branch,
                                         name=self.names.get(meta.thread_id) or meta.name)
            head = [f.meta]
            if info is not None and meta.cwd and info.project_name != os.path.basename(meta.cwd):
                # e.g. a linked worktree or a subdirectory: group under the repository
                head.append(ProjectInfo(cwd=meta.cwd, git_branch=f.branch,
                                        project_name=info.project_name))
            out[:0] = head
        return out

    def _continue_later(self, f: _File, delay: bool = False) -> None:
        if f.continuing:
            return
        f.continuing = True
        msg = _Tick("continue", f.reader.path)
        if delay:
            step = self.wcfg.coalesce_ms / 1000.0
            self.backoff = min(max(step, self.backoff * 2), self.wcfg.sweep_interval_s)
            self.timer.schedule(self.backoff, msg)
        else:
            self.actor_ref.tell(msg)

    def _backlogged(self) -> bool:
        limit = self.wcfg.backlog_limit
        deep = any(ref.actor_inbox.qsize() > limit for ref in (self.supervisor, self.persistence))
        if not deep:
            self.backoff = 0.0
        else:
            self.counters["backlog_pauses"] += 1
        return deep

    # ------------------------------------------------------------ sessions, names, files
    def _touch(self, sid: str, path: str, mtime: float) -> None:
        s = self.sessions.setdefault(sid, _Session())
        s.paths.add(path)
        s.last_write = max(s.last_write, mtime)
        s.idle_sent = False
        if not s.check_pending:
            remaining = s.last_write + self.wcfg.inactivity_timeout_s - time.time()
            self._schedule_idle(sid, s, remaining)

    def _schedule_idle(self, sid: str, s: _Session, delay: float) -> None:
        s.check_pending = True
        if self.timer is None:  # on_start: the timer starts after the first scan
            self.actor_ref.tell(_Tick("idle", sid))
        else:
            self.timer.schedule(delay, _Tick("idle", sid))

    def _read_index(self, announce: bool) -> None:
        """Follow codex's session_index.jsonl: 0.169 keeps thread names there, not in rollouts."""
        try:
            lines = self.index.read_lines().lines
        except OSError as exc:
            logger.warning("cannot read %s: %s", self.index.path, exc)
            return
        for line, _ in lines:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            tid, name = entry.get("id"), entry.get("thread_name")
            if not (isinstance(tid, str) and isinstance(name, str)) or self.names.get(tid) == name:
                continue
            self.names[tid] = name
            if announce:
                self._announce_name(tid, name)

    def _announce_name(self, sid: str, name: str) -> None:
        for path in self.sessions.get(sid, _Session()).paths:
            f = self.files.get(path)
            if f is not None and f.meta is not None:
                offset = SaveRolloutOffset(path, f.reader.offset, sid, f.reader.size,
                                           f.reader.mtime)
                self.supervisor.tell(RolloutBatch(sid, [NameUpdated(name)], offset, meta=f.meta))
                return

    def _scan(self, top: str | None = None,
              skip_known: bool = False) -> list[tuple[str, int, float]]:
        found = []
        for root in [top] if top else self.roots:
            for dirpath, _dirs, names in os.walk(root):
                for name in names:
                    if name.endswith(".jsonl"):
                        path = os.path.join(dirpath, name)
                        if skip_known and (path in self.files or path in self.unknown):
                            continue
                        try:
                            st = os.stat(path)
                        except OSError:
                            continue
                        found.append((path, st.st_size, st.st_mtime))
        return found

    def _recent_dirs(self) -> list[str]:
        """Day directories codex writes new rollouts into (local and UTC, today and yesterday)."""
        now = time.time()
        days = {time.strftime("%Y/%m/%d", fn(t)) for t in (now, now - _DAY_S)
                for fn in (time.localtime, time.gmtime)}
        return [d for d in (os.path.join(self.roots[0], day) for day in sorted(days))
                if os.path.isdir(d)] + [r for r in self.roots[1:] if os.path.isdir(r)]
