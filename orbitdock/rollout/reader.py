"""Incremental, offset-based reader of one growing JSONL file.

Filesystem events are only hints (they coalesce, and inotify drops them on
overflow), so the reader never counts on them: every call reads from the byte
offset of the last complete line it handed out up to the current end of the
file. Memory is bounded by ``chunk_bytes`` plus the longest line it keeps
(lines longer than ``max_line_bytes`` are skipped whole, never buffered), so a
600 MB rollout streams through a 1 MB window.

The reader is pure: no threads, no parsing, and the file is opened per call, so
a file replaced by rename is noticed through its inode rather than read from a
stale descriptor.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

TRUNCATED = "truncated"  # the file is shorter than what was already consumed
REPLACED = "replaced"  # same path, different inode (rewritten via rename)


@dataclass(slots=True)
class ReadResult:
    """What one ``read_lines`` call found.

    ``lines`` holds ``(line, end_offset)`` pairs: the line without its newline
    and the offset just past that newline, which is what a caller persists
    once it has committed everything derived from the lines up to it.
    """

    lines: list[tuple[bytes, int]] = field(default_factory=list)
    reset: str | None = None  # TRUNCATED / REPLACED: the reader restarted at offset 0
    missing: bool = False
    eof: bool = False  # everything up to ``size`` was consumed (a partial line may remain)
    size: int = 0
    mtime: float = 0.0
    skipped: list[tuple[int, int]] = field(default_factory=list)  # oversized: (offset, length)


class RolloutReader:
    """Reads complete lines from ``path`` starting at ``offset``.

    ``offset`` always sits just after a newline (or at 0), so persisting it
    after the rows derived from the lines before it gives exactly-once reads:
    a crash replays at most the lines whose rows were not committed.
    """

    def __init__(self, path: str, offset: int = 0, *, chunk_bytes: int = 1 << 20,
                 max_line_bytes: int = 64 << 20, align: bool = True) -> None:
        if chunk_bytes <= 0 or max_line_bytes <= 0:
            raise ValueError("chunk_bytes and max_line_bytes must be positive")
        self.path = path
        self.offset = offset  # end of the last complete line consumed (handed out or skipped)
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.size = 0  # file size at the last read
        self.mtime = 0.0
        self.inode: tuple[int, int] | None = None  # (st_dev, st_ino) once seen
        self.resets = 0
        self._next_read = offset  # file position of the next byte to read
        self._pending: list[tuple[bytes, int]] = []  # split from the last chunk, not handed out
        self._pending_at = 0
        self._complete_end = offset  # end of the last complete line split so far
        self._partial = bytearray()  # bytes of the unfinished last line
        self._skipping = False  # inside an oversized line: discard up to its newline
        # A resumed offset from an older writer (upstream persisted the file size, even in
        # the middle of a line) is moved to the next line start before the first read.
        self._align = align and offset > 0

    @property
    def read_pos(self) -> int:
        """File position of the next byte to read."""
        return self._next_read

    @property
    def lag(self) -> int:
        """Bytes written but not yet consumed as complete lines."""
        return max(0, self.size - self.offset)

    def reset(self, reason: str) -> None:
        """Forget everything and start again from offset 0."""
        logger.info("rollout %s: %s, reading again from 0", self.path, reason)
        self.offset = self._next_read = self._complete_end = 0
        self._pending.clear()
        self._pending_at = 0
        self._partial.clear()
        self._skipping = False
        self._align = False
        self.resets += 1

    def read_lines(self, max_lines: int | None = None) -> ReadResult:
        """Hand out up to ``max_lines`` complete lines appended since the last call.

        Lines not handed out stay queued for the next call, so a caller can stop
        early (bounded batches) without losing or re-reading anything.
        """
        result = ReadResult()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            result.missing = True
            return result
        try:
            st = os.fstat(fd)
            inode = (st.st_dev, st.st_ino)
            if self.inode is not None and inode != self.inode:
                self.reset(REPLACED)
                result.reset = REPLACED
            elif st.st_size < self._next_read:
                self.reset(TRUNCATED)
                result.reset = TRUNCATED
            self.inode = inode
            self.size, self.mtime = st.st_size, st.st_mtime
            result.size, result.mtime = st.st_size, st.st_mtime
            if self._align:
                self._align_offset(fd)
            want = max_lines if max_lines is not None else -1
            while want != 0:
                if self._pending_at < len(self._pending):
                    want = self._hand_out(result.lines, want)
                elif not self._read_chunk(fd, result):
                    break
        finally:
            os.close(fd)
        if self._pending_at >= len(self._pending):
            self.offset = self._complete_end
        result.eof = self._next_read >= result.size and self._pending_at >= len(self._pending)
        return result

    def _hand_out(self, out: list[tuple[bytes, int]], want: int) -> int:
        pending, at = self._pending, self._pending_at
        stop = len(pending) if want < 0 else min(len(pending), at + want)
        out.extend(pending[at:stop])
        self.offset = pending[stop - 1][1]
        if stop == len(pending):
            pending.clear()
            self._pending_at = 0
        else:
            self._pending_at = stop
        return want if want < 0 else want - (stop - at)

    def _align_offset(self, fd: int) -> None:
        self._align = False
        if self.offset > self.size or os.pread(fd, 1, self.offset - 1) == b"\n":
            return  # at a line start (or truncated below it: the size check resets next call)
        logger.warning("rollout %s: offset %d is inside a line; skipping to the next line",
                       self.path, self.offset)
        self._skipping = True

    def _read_chunk(self, fd: int, result: ReadResult) -> bool:
        """Read one chunk and split it into pending lines; False at end of file."""
        pos = self._next_read
        data = os.pread(fd, self.chunk_bytes, pos)
        if not data:
            return False
        self._next_read = pos + len(data)
        if self._skipping:
            nl = data.find(b"\n")
            if nl == -1:
                return True
            self._skipping = False
            data = data[nl + 1:]
            pos += nl + 1
            self.offset = self._complete_end = pos
        if self._partial:
            nl = data.find(b"\n")
            if nl == -1:
                self._partial += data
                if len(self._partial) > self.max_line_bytes:
                    self._start_skip(result)
                return True
            line = bytes(self._partial) + data[:nl]
            self._partial.clear()
            pos += nl + 1
            self._add(line, pos)
            data = data[nl + 1:]
        parts = data.split(b"\n")
        tail = parts.pop()
        pending = self._pending
        for part in parts:
            pos += len(part) + 1
            line = part.strip()
            if line:
                pending.append((line, pos))
        self._complete_end = pos
        if tail:
            self._partial += tail
            if len(self._partial) > self.max_line_bytes:
                self._start_skip(result)
        return True

    def _add(self, line: bytes, end: int) -> None:
        line = line.strip()
        if line:
            self._pending.append((line, end))
        self._complete_end = end

    def _start_skip(self, result: ReadResult) -> None:
        logger.warning("rollout %s: line at offset %d is longer than %d bytes; skipping it",
                       self.path, self._complete_end, self.max_line_bytes)
        result.skipped.append((self._complete_end, len(self._partial)))
        self._partial.clear()
        self._skipping = True
