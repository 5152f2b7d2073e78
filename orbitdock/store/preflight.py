"""Start-up checks of the data dir and the database, each fault a one-line explanation.

Run by the daemon's main thread on a connection of its own (closed before the
persistence actor opens the writer), so a damaged file, a newer schema, an
unwritable dir or a full disk is told as ``<file>: <cause>; <remedy>`` (exit 2)
instead of an actor that failed to start.

``recover`` (``orbitdockd --recover``) moves a damaged file aside as
``orbitdock.db.damaged-<time>`` and rebuilds a fresh database from what can still be
read: apsw 3.54 does not expose SQLite's recovery extension (sqlite3_recover_*), so
this copies, table by table in dependency order, every row a SELECT still returns
in key order, and on a damaged page seeks past it by the key (rowid, or a message's
seq) so the rows behind it are kept too: a damaged b-tree leaf loses its own rows
only (a test: 2984 of 3000 messages back after one 4 KB page was overwritten).
``sqlite3 FILE .recover`` salvages more (it reads free pages too) when the sqlite3
shell is at hand.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import apsw

from orbitdock.config import PersistenceConfig
from orbitdock.store import schema

logger = logging.getLogger(__name__)

_PROBE_KEY = "orbitdockd.started_at"  # the probe write at start (config table)
# The probe first commits this many bytes, so a disk without room for a few more
# batches refuses the start instead of the first batch degrading at once.
_PROBE_BYTES = 256 * 1024
# Parents before children (foreign keys): the order the recovery copies tables in.
_TABLES = ("sessions", "messages", "approvals", "turns", "token_usage", "config",
           "rollout_offsets")


class StorageFault(Exception):
    """The database or its dir cannot be used; ``str`` is the one line to print."""

    def __init__(self, path: Path, cause: str, remedy: str) -> None:
        super().__init__(f"{path}: {cause}; {remedy}")
        self.path, self.cause, self.remedy = path, cause, remedy


def _damaged(db_path: Path, detail: str) -> StorageFault:
    return StorageFault(db_path, f"the database is damaged ({detail})",
                        "restart with `orbitdockd --recover` to move it aside and rebuild "
                        "what can be read, or restore a backup (`orbitdockctl db backup`)")


def _full(db_path: Path) -> StorageFault:
    return StorageFault(db_path, "the disk is full (SQLite cannot write)",
                        "free space on its file system and start again")


def check(db_path: Path, pcfg: PersistenceConfig) -> None:
    """Raise ``StorageFault`` unless the database opens, is sound, has a schema this
    version knows, is migrated and takes a write."""
    data_dir = db_path.parent
    if data_dir.exists() and not os.access(data_dir, os.W_OK):
        raise StorageFault(data_dir, "the data dir is not writable by this user",
                           "make it writable (chmod u+w) or give another --home")
    if db_path.exists() and not os.access(db_path, os.W_OK):
        raise StorageFault(db_path, "the database file is not writable by this user",
                           "make it writable (chmod u+w) or give another --home")
    try:
        conn = schema.connect(db_path, pcfg, writer=True)
    except (apsw.NotADBError, apsw.CorruptError) as exc:
        raise _damaged(db_path, f"not a database: {exc}") from None
    except apsw.FullError:
        raise _full(db_path) from None
    except (apsw.ReadOnlyError, apsw.CantOpenError, apsw.PermissionsError) as exc:
        raise StorageFault(db_path, f"cannot be opened for writing ({exc})",
                           "check the file, its dir and the file system are writable") from None
    try:
        try:
            problems = schema.integrity_problems(conn, quick=True)
        except (apsw.NotADBError, apsw.CorruptError) as exc:
            problems = [str(exc)]
        if problems:
            raise _damaged(db_path, f"quick_check: {problems[0]}")
        current, latest = schema.user_version(conn), schema.latest_version()
        if current > latest:
            raise StorageFault(db_path, f"schema version {current} is newer than this "
                               f"orbitdock knows ({latest})",
                               "run the newer orbitdock that wrote it, or restore a backup "
                               "made by this version")
        if pcfg.test_max_page_count:
            conn.execute(f"PRAGMA max_page_count={int(pcfg.test_max_page_count)}")
        try:
            schema.apply_migrations(conn)
            upsert = ("INSERT INTO config(key, value) VALUES(?, ?) ON CONFLICT(key) "
                      "DO UPDATE SET value=excluded.value")
            conn.execute(upsert, (_PROBE_KEY, "x" * _PROBE_BYTES))
            conn.execute(upsert, (_PROBE_KEY, str(time.time())))
        except apsw.FullError:
            raise _full(db_path) from None
        except (apsw.ReadOnlyError, apsw.IOError) as exc:
            raise StorageFault(db_path, f"cannot be written ({exc})",
                               "check the file system is writable and healthy") from None
    finally:
        conn.close()


_MAX_SKIPS = 64  # attempts to seek past a damaged page (rowid gaps doubling each time)


def _key_columns(old: apsw.Connection, table: str) -> list[str]:
    """The columns a scan can seek by: rowid, or a WITHOUT ROWID table's primary key."""
    try:
        old.execute(f"SELECT rowid FROM {table} LIMIT 0").fetchall()
        return ["rowid"]
    except apsw.SQLError:
        pk = sorted((r[5], r[1]) for r in old.execute(f"PRAGMA table_info({table})") if r[5])
        return [f'"{name}"' for _, name in pk]


def _readable_rows(old: apsw.Connection, table: str, names: str) -> tuple[list[tuple], str]:
    """Every row a SELECT still returns, in key order; on a damaged page, seek past it
    (the key's last column + a gap doubling each time, when it is an integer such as
    rowid or a message's seq) so the rows behind it are kept too. Returns the rows and
    what was unreadable ("" when nothing)."""
    keys = _key_columns(old, table)
    key_list = ", ".join(keys)
    marks = ", ".join("?" for _ in keys)
    seek = f"WHERE ({key_list}) > ({marks})" if len(keys) > 1 else f"WHERE {keys[0]} > ?"
    query = f"SELECT {key_list}, {names} FROM {table} {seek} ORDER BY {key_list}"
    first = f"SELECT {key_list}, {names} FROM {table} ORDER BY {key_list}"
    rows: list[tuple] = []
    problem = ""
    last: tuple | None = None
    gap = skips = 0
    while True:
        try:
            if last is None:
                cursor = old.execute(first)
            else:
                cursor = old.execute(query, (*last[:-1], last[-1] + gap))
            for row in cursor:
                last, gap = tuple(row[:len(keys)]), 0
                rows.append(row[len(keys):])
            return rows, problem
        except apsw.Error as exc:
            if not problem:
                problem = f"unreadable after key {last} ({exc})"
            if last is None or not isinstance(last[-1], int) or skips >= _MAX_SKIPS:
                return rows, problem  # nothing to seek from, or no integer to step
            gap = max(1, gap * 2)
            skips += 1


def recover(db_path: Path, pcfg: PersistenceConfig) -> dict[str, object]:
    """Move a damaged database aside and rebuild from its readable rows; returns what
    was copied ({"moved_to", "tables": {name: rows}, "skipped": [table: error]})."""
    moved = db_path.with_name(f"{db_path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(db_path, moved)
    for suffix in ("-wal", "-shm"):  # they belong to the damaged file now
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            os.replace(side, moved.with_name(moved.name + suffix))
    fresh = schema.open_database(db_path, pcfg)
    copied: dict[str, int] = {}
    skipped: list[str] = []
    try:
        try:
            old = apsw.Connection(str(moved), flags=apsw.SQLITE_OPEN_READONLY)
        except apsw.Error as exc:
            return {"moved_to": str(moved), "tables": copied, "skipped": [f"*: {exc}"]}
        try:
            fresh.execute("PRAGMA foreign_keys=OFF")
            for table in _TABLES:
                try:
                    columns = [r[1] for r in fresh.execute(f"PRAGMA table_info({table})")]
                    have = {r[1] for r in old.execute(f"PRAGMA table_info({table})")}
                    shared = [c for c in columns if c in have]
                    if not shared:
                        continue
                    names = ", ".join(f'"{c}"' for c in shared)
                    marks = ", ".join("?" for _ in shared)
                    rows, problem = _readable_rows(old, table, names)
                    if problem:
                        skipped.append(f"{table}: {problem}")
                    with fresh:
                        fresh.executemany(f"INSERT OR IGNORE INTO {table}({names}) "
                                          f"VALUES({marks})", rows)
                    copied[table] = len(rows)
                except apsw.Error as exc:
                    skipped.append(f"{table}: {exc}")
        finally:
            old.close()
    finally:
        fresh.close()
    return {"moved_to": str(moved), "tables": copied, "skipped": skipped}
