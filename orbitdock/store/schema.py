"""Opening SQLite connections and applying the schema migrations.

Migrations are the files ``migrations/NNNN_name.sql``; ``NNNN`` is the schema
version they lead to. ``PRAGMA user_version`` records the version a database is
at, so applying is idempotent: only newer files run, each in its own
``BEGIN IMMEDIATE`` transaction together with the ``user_version`` bump (the
pragma is part of the database header and rolls back with the transaction), so
a crash mid-migration leaves the previous version intact. The version is read
again inside the write lock, so two processes opening a fresh file at once do
not both apply the same migration.

``Checkpointer`` keeps the WAL bounded from its own thread and connection, since
the writer runs with ``wal_autocheckpoint=0``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import apsw

from orbitdock.config import PersistenceConfig

logger = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SchemaError(RuntimeError):
    """The database cannot be used by this version of orbitdock."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The packaged migrations, ordered by version; gaps or duplicates are a bug."""
    found: list[Migration] = []
    for entry in resources.files("orbitdock.store").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    if not found:  # e.g. a wheel built without its package data
        raise SchemaError("no migrations found next to orbitdock.store (package data missing?)")
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        names = [m.name for m in found]
        raise SchemaError(f"migration versions must be 1..n without gaps: {names}")
    return found


def latest_version() -> int:
    return len(migrations())


def user_version(conn: apsw.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchall()[0][0])


def connect(db_path: Path | str, pcfg: PersistenceConfig, *, writer: bool) -> apsw.Connection:
    """Open a connection with orbitdock's pragmas.

    The writer (the persistence actor's connection) also disables automatic
    checkpoints: with ``wal_autocheckpoint`` on, the commit that crosses the
    threshold runs the checkpoint itself and stalls 5-17 ms (perf-floor §3);
    a separate checkpointer connection does that work off the write path.
    Readers and the checkpointer must not create the file, so only the writer
    opens with ``SQLITE_OPEN_CREATE``.
    """
    sync = pcfg.synchronous.upper()
    if sync not in _SYNCHRONOUS:
        raise SchemaError(
            f"persistence.synchronous must be one of {_SYNCHRONOUS}, got {pcfg.synchronous!r}")
    flags = apsw.SQLITE_OPEN_READWRITE
    if writer:
        flags |= apsw.SQLITE_OPEN_CREATE
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    conn = apsw.Connection(str(db_path), flags=flags, vfs=pcfg.test_vfs or None)
    try:
        conn.set_busy_timeout(int(pcfg.busy_timeout_ms))
        # journal_mode is persistent in the file, but setting it is cheap and makes
        # a DB created by an older tool (or by hand) WAL too.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchall()[0][0]
        if str(mode).lower() != "wal":
            raise SchemaError(f"{db_path}: could not switch to WAL (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("PRAGMA foreign_keys=ON")
        if writer:
            conn.execute("PRAGMA wal_autocheckpoint=0")
    except BaseException:
        conn.close()
        raise
    return conn


def apply_migrations(conn: apsw.Connection) -> int:
    """Bring the database to the latest version; return how many migrations ran.

    Refuses a database from a newer orbitdock (its user_version is above every
    packaged migration) rather than writing rows that version does not expect.
    """
    known = migrations()
    current = user_version(conn)
    if current > len(known):
        raise SchemaError(
            f"database schema version {current} is newer than this orbitdock ({len(known)})"
        )
    applied = 0
    for migration in known:
        if migration.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Someone else may have migrated between our read and the lock.
            if user_version(conn) >= migration.version:
                conn.execute("COMMIT")
                continue
            conn.execute(migration.sql)
            conn.execute(f"PRAGMA user_version={migration.version:d}")
            conn.execute("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            raise
        applied += 1
        logger.info("applied migration %s", migration.name)
    return applied


def open_database(db_path: Path | str, pcfg: PersistenceConfig) -> apsw.Connection:
    """The writer connection, migrated to the latest schema."""
    conn = connect(db_path, pcfg, writer=True)
    try:
        apply_migrations(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def integrity_problems(conn: apsw.Connection, *, quick: bool) -> list[str]:
    """``PRAGMA quick_check`` (quick) or ``integrity_check``: the problems, [] when ok."""
    pragma = "quick_check" if quick else "integrity_check"
    rows = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}").fetchall()]
    return [] if rows == ["ok"] else rows


class Checkpointer(threading.Thread):
    """WAL checkpoints off the write path, on a connection of its own.

    PASSIVE every ``checkpoint_interval_s`` when something was written (it never
    waits for the writer), TRUNCATE once per idle period of ``idle_truncate_s``
    so the WAL file shrinks back to zero. ``last_write_at`` is a monotonic float
    the actor thread assigns after each commit and this thread only reads: a
    single attribute store/load is atomic in CPython, so no lock is needed.

    The connection is opened and closed in ``run``, on this thread. apsw drops
    the GIL while SQLite works, so checkpoints do not stall the actor; only a
    TRUNCATE (after an idle period) holds back a writer that arrives meanwhile.
    """

    def __init__(self, db_path: Path, pcfg: PersistenceConfig) -> None:
        super().__init__(name="persistence-checkpointer", daemon=True)
        self._db_path = db_path
        self._pcfg = pcfg
        self._stopping = threading.Event()
        self.last_write_at = 0.0
        self.synced_write_at = -1.0  # last_write_at as of the latest complete checkpoint
        self.passive_runs = 0
        self.truncate_runs = 0
        self.failing = ""  # why checkpoints fail now ("" while they work); read by stats

    def stop(self) -> None:
        """Signal and join; bounded by one busy timeout (a checkpoint in progress)."""
        self._stopping.set()
        if self.is_alive():
            self.join(self._pcfg.busy_timeout_ms / 1000 + self._pcfg.checkpoint_interval_s)
            if self.is_alive():
                logger.warning("persistence checkpointer did not stop in time")

    def run(self) -> None:
        try:
            conn = connect(self._db_path, self._pcfg, writer=False)
        except Exception:
            logger.exception("persistence checkpointer could not open %s", self._db_path)
            return
        passive_for = truncated_for = None  # the last_write_at each mode last covered
        try:
            while not self._stopping.wait(self._pcfg.checkpoint_interval_s):
                last = self.last_write_at
                idle = time.monotonic() - last >= self._pcfg.idle_truncate_s
                try:
                    if idle and truncated_for != last:
                        result = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                        truncated_for = passive_for = last
                        self.truncate_runs += 1
                    elif passive_for != last:
                        result = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        passive_for = last
                        self.passive_runs += 1
                    else:
                        continue
                    busy, wal_frames, done = result[0]
                    if not busy and wal_frames == done:  # every frame is in the database
                        self.synced_write_at = last
                    if self.failing:
                        logger.warning("wal checkpoint works again (it failed: %s)",
                                       self.failing)
                        self.failing = ""
                except apsw.BusyError:
                    logger.debug("wal checkpoint busy; retrying next interval")
                except Exception as exc:
                    # Nothing is lost (commits still go to the WAL, which grows until a
                    # checkpoint works); said once per failing period, not per interval.
                    if not self.failing:
                        logger.exception("wal checkpoint failed; the WAL grows until one "
                                         "works again")
                    self.failing = f"{type(exc).__name__}: {exc}"
                    passive_for = truncated_for = None  # retry next interval
        finally:
            conn.close()
