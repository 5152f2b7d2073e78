"""Telling a storage fault (the database cannot be written now) from a bad command.

A storage fault is the file system's or SQLite's, not the command's: disk full, an I/O
error, a read-only file, a lock held beyond the busy timeout. A batch that fails with
one is kept and retried; a command that fails any other way (a constraint, a bad
value) is isolated and dropped, as before (``batches.run_isolated``).
"""

from __future__ import annotations

import apsw

# apsw's exception classes for SQLite's result codes that say nothing about the command.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    apsw.FullError,  # SQLITE_FULL: disk full, or PRAGMA max_page_count reached
    apsw.IOError,  # SQLITE_IOERR_*: the OS refused a read, write or fsync
    apsw.ReadOnlyError,  # SQLITE_READONLY: file, dir or file system not writable
    apsw.BusyError,  # SQLITE_BUSY beyond busy_timeout_ms: another process holds the lock
    apsw.LockedError,
    apsw.CantOpenError,  # the WAL or journal cannot be created
    apsw.NoMemError,
)

_WHAT = {
    apsw.FullError: "disk full",
    apsw.IOError: "I/O error",
    apsw.ReadOnlyError: "read-only",
    apsw.BusyError: "database busy",
    apsw.LockedError: "database locked",
    apsw.CantOpenError: "cannot open a database file",
    apsw.NoMemError: "out of memory",
}


def is_storage_error(exc: BaseException) -> bool:
    return isinstance(exc, STORAGE_ERRORS)


def describe(exc: BaseException) -> str:
    """One short phrase for status and the log, e.g. ``disk full (database or disk is full)``."""
    for cls, what in _WHAT.items():
        if isinstance(exc, cls):
            detail = str(exc).split(":", 1)[-1].strip() if str(exc) else ""
            return f"{what} ({detail})" if detail else what
    return f"{type(exc).__name__}: {exc}"
