"""One followed rollout file: reader -> parser -> enrichment, one bounded batch at a time.

``FollowedFile.read`` turns the lines appended since the last call into the
events (with the time codex wrote each line) and the offset to commit with
them. It decides nothing about where they go: the watcher actor routes the
batch (session, or persistence for files that create no session) and
schedules the next read. Git and codex-name lookups happen here, per new
session, cwd or turn, never per line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orbitdock.connectors.events import ProjectInfo, ThreadStarted, TurnStarted
from orbitdock.rollout.git import GitResolver
from orbitdock.rollout.parser import RolloutParser
from orbitdock.rollout.reader import RolloutReader
from orbitdock.rollout.scan import file_tag
from orbitdock.store.commands import SaveRolloutOffset

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class FileBatch:
    """What one read produced. ``offset.session_id`` is None until session_meta is seen."""

    offset: SaveRolloutOffset
    events: list[Any] = field(default_factory=list)
    times: list[float | None] = field(default_factory=list)  # parallel to events
    reset: str | None = None  # the file was truncated or replaced: read again from 0
    eof: bool = True  # False: more complete lines are waiting (bounded batch)
    changed: bool = True  # False: nothing new to send or commit
    lines: int = 0
    mtime: float = 0.0


class FollowedFile:
    """A rollout file being read: its reader, parser and what was already reported."""

    def __init__(self, path: str, offset: int = 0, session_id: str | None = None, *,
                 chunk_bytes: int, max_line_bytes: int) -> None:
        self._chunk_bytes, self._max_line_bytes = chunk_bytes, max_line_bytes
        self.reader = RolloutReader(path, offset, chunk_bytes=chunk_bytes,
                                    max_line_bytes=max_line_bytes)
        self.parser = RolloutParser(path, file_tag(path))
        self.prime = offset > 0  # resumed past session_meta: bind the thread from line 1 first
        self.expect = session_id  # the thread the stored offset was saved for
        self.own = False  # our own app-server thread: its direct session shows it already
        self.meta: ThreadStarted | None = None  # enriched (git, codex name) and already sent
        self.branch: str | None = None  # git branch last reported for this file's session
        self.continuing = False  # a bounded batch left lines behind; a read is queued
        self.errors = 0
        self.last_error: str | None = None

    @property
    def path(self) -> str:
        return self.reader.path

    def move_to(self, dest: str) -> None:
        """Archive/unarchive move the file and keep its inode: the position stays valid."""
        self.reader.path = self.parser.path = dest

    def position(self) -> SaveRolloutOffset:
        """The offset committed so far, as a command (for batches that carry no lines)."""
        return SaveRolloutOffset(self.path, self.reader.offset, self.parser.thread_id,
                                 self.reader.size, self.reader.mtime)

    def changed_on_disk(self) -> bool:
        """The size sweep's test: grown, shrunk or replaced since the last read."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # moved or deleted: a move event or a rescan finds it again
        replaced = self.reader.inode is not None and (st.st_dev, st.st_ino) != self.reader.inode
        return replaced or st.st_size != self.reader.read_pos

    def report(self) -> dict[str, Any]:
        """One row of ``rollouts status``."""
        size = self.reader.size
        if self.reader.inode is None:  # not read yet (queued import): ask the filesystem
            try:
                size = os.stat(self.path).st_size
            except OSError:
                size = 0
        return {"path": self.path, "session_id": self.parser.thread_id, "own": self.own,
                "offset": self.reader.offset, "size": size,
                "lag": max(0, size - self.reader.offset), "lines": self.parser.lines,
                "malformed": self.parser.malformed, "errors": self.errors,
                "last_error": self.last_error}

    # ------------------------------------------------------------ reading
    def read(self, max_lines: int, *, git: GitResolver, names: Mapping[str, str],
             own_originator: str, force_offset: bool = False) -> FileBatch | None:
        """Read up to ``max_lines`` new lines; None when the file is gone (a move hint follows).

        ``force_offset`` makes an empty read still produce a batch, so a moved
        file's new path is committed.
        """
        if self.prime:
            self._prime()
        before = self.reader.offset
        res = self.reader.read_lines(max_lines)
        if res.missing:
            return None
        if res.reset:
            self.parser = RolloutParser(self.path, file_tag(self.path))
            self.meta, self.own = None, False
        batch = FileBatch(SaveRolloutOffset(self.path, self.reader.offset, self.parser.thread_id,
                                            res.size, res.mtime),
                          reset=res.reset, eof=res.eof, lines=len(res.lines), mtime=res.mtime)
        if not res.lines and self.reader.offset == before and not force_offset and not res.reset:
            batch.changed = False
            return batch
        if self.own:
            return batch
        parser = self.parser
        for line, end in res.lines:
            events = parser.feed(line, end)
            batch.events.extend(events)
            batch.times.extend([parser.line_time] * len(events))
        batch.offset.session_id = parser.thread_id
        if parser.originator is not None and parser.originator == own_originator:
            self.own = True
            batch.events, batch.times = [], []
            logger.info("rollout %s is our own app-server thread; not shadowing it", self.path)
        elif parser.thread_id is not None:
            batch.events, batch.times = self._enrich(batch.events, batch.times, git, names)
        return batch

    def _prime(self) -> None:
        self.prime = False
        first = RolloutReader(self.path, 0, chunk_bytes=self._chunk_bytes,
                              max_line_bytes=self._max_line_bytes).read_lines(1).lines
        if first:
            self.parser.prime(first[0][0])
        if self.expect and self.parser.thread_id not in (None, self.expect):
            # Same path, another thread (the stale-binding guard upstream has too).
            self.reader.reset("replaced by another thread's rollout")
            self.parser = RolloutParser(self.path, file_tag(self.path))

    def _enrich(self, events: list[Any], times: list[float | None], git: GitResolver,
                names: Mapping[str, str]) -> tuple[list[Any], list[float | None]]:
        """Add git and codex-name details; send ThreadStarted first in each process.

        A lookup is a cached stat of .git/HEAD, done for a new session, a new cwd
        or a new turn (a ``git switch`` between turns shows up), never per line.
        """
        out: list[Any] = []
        out_times: list[float | None] = []
        meta_time = None
        for ev, ts in zip(events, times):
            if isinstance(ev, ThreadStarted):
                meta_time = ts
                continue
            if isinstance(ev, ProjectInfo) and ev.cwd:
                info = git.resolve(ev.cwd)
                if info is not None:
                    self.branch = ev.git_branch or info.branch
                    ev = dataclasses.replace(ev, git_branch=self.branch,
                                             project_name=ev.project_name or info.project_name)
            elif isinstance(ev, TurnStarted) and self.meta is not None:
                info = git.resolve(self.parser.cwd)
                if info is not None and info.branch and info.branch != self.branch:
                    self.branch = info.branch  # switched branches between turns
                    out.append(ProjectInfo(git_branch=info.branch))
                    out_times.append(ts)
            out.append(ev)
            out_times.append(ts)
        meta = self.parser.meta
        if self.meta is None and meta is not None:
            info = git.resolve(meta.cwd)
            self.branch = meta.git_branch or (info.branch if info else None)
            self.meta = dataclasses.replace(meta, git_branch=self.branch,
                                            name=names.get(meta.thread_id) or meta.name)
            head = [self.meta]
            if info is not None and meta.cwd and info.project_name != os.path.basename(meta.cwd):
                # e.g. a linked worktree or a subdirectory: group under the repository
                head.append(ProjectInfo(cwd=meta.cwd, git_branch=self.branch,
                                        project_name=info.project_name))
            if meta_time is None:  # resumed past session_meta: as old as the batch's first line
                meta_time = next((t for t in out_times if t is not None), None)
            out[:0] = head
            out_times[:0] = [meta_time] * len(head)
        return out, out_times
