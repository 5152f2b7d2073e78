"""The persistence actor: the only writer of the SQLite database.

Thread ownership:
- THE apsw write connection is opened in ``on_start``, i.e. on this actor's own
  thread, and is used only there (writes, migrations and control-plane reads).
- The checkpointer thread (``schema.Checkpointer``) opens and owns a second
  connection, used only for ``PRAGMA wal_checkpoint``; it shares nothing with
  the actor but one float.
- The flush timer thread (``orbitdock.timers.ActorTimer``) owns nothing but its
  schedule: it only ``tell``s ``Tick("flush")``.

Writes arrive as ``tell(command)`` (orbitdock/store/commands.py) and are
buffered; a flush is one transaction, forced when the buffer holds
``batch_size`` commands or ``flush_interval_ms`` after the first buffered one.
Batching is what makes SQLite fast enough (perf-floor §3: ~27k single-row
commits/s vs 50-70k rows/s at 50 per transaction), and with
``wal_autocheckpoint=0`` no commit ever pays for a checkpoint.

A batch that fails with a storage fault (disk full, I/O error, read-only, busy
beyond the timeout: ``orbitdock.store.faults``) is kept, in order and still
coalescing, and retried with backoff (``Tick("retry")``, doubling from
``retry_initial_s`` to ``retry_max_s``); later commands queue behind it. Meanwhile
the actor is ``degraded`` (``full`` once ``max_unsaved_commands`` are kept) and
tells the gateway loop its ``StorageHealth`` through its outlet on every change, so
clients see it and new sessions and turns are refused; the log says it once per
change. Only ``drop_when_full`` lets it drop the oldest kept commands (counted).

Reads are ``ask``s (or proxy calls, which pykka also queues as messages, so they
are ordered after earlier tells); each flushes first so it sees every write told
before it. Never ``ask`` on the event path: a read waits for a flush. The one
told read is a client's ``get_messages`` request (the persistence scope), answered straight
to the client through this thread's own gateway ``Outlet`` when the actor was
given ``ctx`` and ``inproc_endpoint``.
"""

from __future__ import annotations

import logging
import queue
import time
from pathlib import Path
from typing import Any

import apsw
import pykka

from actors.messages import (CountMessages, Flush, GetConfigValue, LoadMessages,
                             LoadPendingApprovals, LoadRolloutOffsets, LoadSession,
                             LoadSessions, LoadTurns, Stats, Tick)
from orbitdock import config as config_mod
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode
from orbitdock.protocol.models import ApprovalRequest, Message, StorageHealth
from orbitdock.protocol.routing import ClientRequest, RequestTable, Scope, answers
from orbitdock.protocol.errors import ProtocolError
from orbitdock.store import batches, faults, queries, schema, sql
from orbitdock.store.commands import Atomic, SaveSession, SaveTurn
from orbitdock.timers import ActorTimer
from orbitdock.transport import Outlet

logger = logging.getLogger(__name__)

_FLUSH = "flush"
_RETRY = "retry"
_DROP_FRACTION = 10  # past the bound, drop_when_full drops the oldest tenth at once


# ---------------------------------------------------------------- the actor


def _merge(old: Any, new: Any) -> Any:
    """Coalesce two pending commands with the same key (later values win).

    In place: a pending command belongs to the batch alone (senders hand their
    commands over and keep no reference), and copying a full session row per
    streamed delta was a tenth of the daemon's time in a burst."""
    if isinstance(new, (SaveSession, SaveTurn)):
        old.fields.update(new.fields)
        return old
    return new  # SaveMessage, SetConfigValue, SaveRolloutOffset: the latest is the whole truth


class PersistenceActor(pykka.ThreadingActor):
    """Batches write commands into transactions; answers control-plane reads."""

    def __init__(self, config: config_mod.Config, db_path: Path, *, ctx: Any = None,
                 inproc_endpoint: str | None = None) -> None:
        super().__init__()
        self._pcfg = config.persistence
        self._gateway = (ctx, inproc_endpoint, config.gateway.inbound_hwm)
        self._outlet: Outlet | None = None  # created and closed on the actor thread
        self._db_path = Path(db_path)
        self._conn: apsw.Connection | None = None
        # Pending batch: commands in arrival order; _slots maps a coalescing key to
        # its index. A keyed command keeps the position of its first occurrence,
        # which is never later than anything that depended on it (a session row is
        # created before its messages). An Atomic is a barrier: _slots is cleared, so
        # a later update is never moved in front of an Atomic that writes the same row.
        self._batch: list[Any] = []
        self._slots: dict[tuple, int] = {}
        self._units = 0  # commands in the batch (an Atomic counts its inner ones)
        self._timer: ActorTimer | None = None
        self._checkpointer: schema.Checkpointer | None = None
        self._stats = {
            "rows_written": 0, "batches": 0, "failed_commands": 0, "failed_batches": 0,
            "last_flush_ms": 0.0,
        }
        self._coalesced = 0  # hot-path counter kept out of the dict
        self._health = StorageHealth()  # ok until a write fails with a storage fault
        self._retry_delay = 0.0
        self._degraded_at = 0.0  # monotonic, for the time degraded in the log
        self._written_while_degraded = 0

    @staticmethod
    def _create_actor_inbox() -> Any:
        """A C ``queue.SimpleQueue`` instead of pykka's default ``queue.Queue``.

        This actor takes every write of the daemon, so its tell cost matters:
        without queue.Queue's Python-level Condition handshake the whole
        tell->commit path is ~30% faster (bench: 0.47x -> ~0.6x raw apsw). Safe
        because pykka 4.5 only calls put, get and empty on an inbox
        (ThreadingActor overrides this same hook to return its queue.Queue).
        """
        return queue.SimpleQueue()

    # -- lifecycle (all on the actor thread)

    def on_start(self) -> None:
        self._requests = RequestTable(self, Scope.PERSISTENCE)
        try:
            self._conn = schema.open_database(self._db_path, self._pcfg)
            if self._pcfg.test_max_page_count:
                self._conn.execute(f"PRAGMA max_page_count={int(self._pcfg.test_max_page_count)}")
            self._timer = ActorTimer(self.actor_ref, "persistence-flush-timer")
            self._checkpointer = schema.Checkpointer(self._db_path, self._pcfg)
            self._checkpointer.start()
            ctx, endpoint, hwm = self._gateway
            if ctx is not None and endpoint:
                self._outlet = Outlet(endpoint, hwm)
        except BaseException:
            # pykka does not call on_failure/on_stop when on_start raises.
            self._close()
            raise
        logger.info("persistence ready: %s", self._db_path)

    def on_stop(self) -> None:
        self._flush()
        if self._units:
            logger.error("persistence: stopping with %d unsaved commands the database did "
                         "not take (%s); they are lost", self._units, self._health.cause)
        self._close()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        logger.error(
            "persistence actor failed; flushing what is pending and closing",
            exc_info=(exception_type, exception_value, traceback),
        )
        self._flush()
        self._close()

    def _close(self) -> None:
        if self._outlet is not None:
            self._outlet.close()
            self._outlet = None
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._conn is not None:
            # Closed last, the writer's close checkpoints and removes the WAL. If that
            # checkpoint fails (disk full) the WAL stays, and the next open replays it.
            try:
                self._conn.close()
            except apsw.Error:
                logger.exception("persistence: closing the database failed; the WAL is "
                                 "kept and replayed at the next start")
            self._conn = None

    # -- messages

    def on_receive(self, message: Any) -> Any:
        if type(message) in sql.EXECUTORS:  # the hot path: one dict probe
            self._receive(message)
            return None
        if type(message) is list:  # one event's commands, in one actor message
            for command in message:
                self._receive(command)
            return None
        if isinstance(message, Tick):
            if message.name in (_FLUSH, _RETRY):
                self._flush()
            return None
        read = _READS.get(type(message))
        if read is not None:
            return read(self, message)
        if isinstance(message, ClientRequest):
            self._on_request(message)
            return None
        logger.warning("persistence: unexpected message %s dropped", type(message).__name__)
        return None

    def _receive(self, cmd: Any) -> None:
        """Buffer one command; never raises (a raise in a tell would stop the actor)."""
        was_empty = not self._batch
        try:
            if type(cmd) is Atomic:
                self._batch.append(cmd)
                self._slots.clear()
                self._units += max(1, len(cmd.commands))
            else:
                key = cmd.key  # a malformed command fails here, before it is buffered
                sql.check_fields(cmd)  # so a bad one never sinks a merged good one
                index = self._slots.get(key) if key is not None else None
                if index is None:
                    if key is not None:
                        self._slots[key] = len(self._batch)
                    self._batch.append(cmd)
                    self._units += 1
                else:
                    self._batch[index] = _merge(self._batch[index], cmd)
                    self._coalesced += 1
        except Exception:
            self._stats["failed_commands"] += 1
            logger.exception(
                "persistence: bad %s dropped", type(cmd).__name__,
                extra={"session_id": batches.session_id_of(cmd)},
            )
            return
        if self._health.state != "ok":  # only the retry tick writes while degraded
            self._bound_backlog()
        elif self._units >= self._pcfg.batch_size:
            self._flush()
        elif was_empty:
            self._arm_flush()

    def _arm_flush(self) -> None:
        """A flush tick one interval from now, unless one is pending: an arm that lands
        while a countdown runs is served by that countdown's tick, still within one
        interval of it."""
        if self._timer is not None:
            self._timer.after(self._pcfg.flush_interval_ms / 1000, Tick(_FLUSH), key=_FLUSH)

    def _flush(self) -> int:
        """Write the pending batch in one transaction; returns rows written. Never raises.

        On a storage fault the batch is kept (``_keep``) for the retry tick."""
        if not self._batch or self._conn is None:
            return 0
        batch, self._batch, self._slots, self._units = self._batch, [], {}, 0
        conn = self._conn
        started = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:
            # Nothing was written: keep the commands, e.g. another process held the lock.
            self._keep(batch)
            self._write_failed(exc)
            return 0
        try:
            written, failed = batches.run_batch(conn, batch)
            self._stats["failed_commands"] += failed
            conn.execute("COMMIT")
        except Exception as exc:
            try:
                if not conn.get_autocommit():
                    conn.execute("ROLLBACK")
            except Exception:
                logger.exception("persistence: rollback failed")
            if faults.is_storage_error(exc):
                self._keep(batch)
                self._write_failed(exc)
                return 0
            logger.exception("persistence: batch of %d commands lost", len(batch))
            self._stats["failed_batches"] += 1
            return 0
        if self._checkpointer is not None:
            self._checkpointer.last_write_at = time.monotonic()
        self._stats["rows_written"] += written
        self._stats["batches"] += 1
        self._stats["last_flush_ms"] = (time.perf_counter() - started) * 1000
        if self._health.state != "ok":
            self._written_while_degraded += len(batch)
            self._recovered()
        return written

    # -- storage faults: keep, retry, tell

    def _keep(self, batch: list[Any]) -> None:
        """Put a failed batch back in front of what arrived since, coalescing keys again
        (an Atomic stays a barrier), so the retry writes the same rows in the same order."""
        batch.extend(self._batch)
        self._batch, self._slots, self._units = batch, {}, 0
        for index, cmd in enumerate(batch):
            if type(cmd) is Atomic:
                self._slots.clear()
                self._units += max(1, len(cmd.commands))
                continue
            self._units += 1
            key = cmd.key
            if key is not None:
                self._slots.setdefault(key, index)

    def _write_failed(self, exc: BaseException) -> None:
        """A storage fault: degraded (logged once per change), retry with backoff."""
        self._stats["failed_writes"] = self._stats.get("failed_writes", 0) + 1
        cause = faults.describe(exc)
        if self._health.state == "ok":
            self._degraded_at = time.monotonic()
            self._written_while_degraded = 0
            self._retry_delay = self._pcfg.retry_initial_s
            logger.error("persistence: storage degraded: %s; %d unsaved commands kept and "
                         "retried, new sessions and turns refused", cause, self._units,
                         extra={"db_path": str(self._db_path)})
            self._set_health("degraded", cause, since=time.time())
        else:
            self._retry_delay = min(self._retry_delay * 2, self._pcfg.retry_max_s)
            self._set_health(self._health.state, cause, since=self._health.since)
        if self._timer is not None:
            self._timer.after(self._retry_delay, Tick(_RETRY), key=_RETRY)
        self._bound_backlog()

    def _bound_backlog(self) -> None:
        """At max_unsaved_commands: full (new work refused); with drop_when_full the
        oldest tenth is dropped and counted instead."""
        bound = self._pcfg.max_unsaved_commands
        if self._units < bound:
            return
        if self._pcfg.drop_when_full:
            drop = max(1, len(self._batch) // _DROP_FRACTION)
            dropped, rest = self._batch[:drop], self._batch[drop:]
            count = sum(max(1, len(c.commands)) if type(c) is Atomic else 1 for c in dropped)
            self._stats["dropped_commands"] = self._stats.get("dropped_commands", 0) + count
            logger.error("persistence: %d unsaved commands dropped (drop_when_full, bound "
                         "%d reached)", count, bound)
            self._batch = []
            self._keep(rest)
            self._set_health(self._health.state, self._health.cause, since=self._health.since)
        elif self._health.state != "full":
            logger.error("persistence: storage full: %d unsaved commands reached "
                         "persistence.max_unsaved_commands; nothing is dropped, new work "
                         "is refused until writes succeed", self._units)
            self._set_health("full", self._health.cause, since=self._health.since)

    def _recovered(self) -> None:
        degraded_s = time.monotonic() - self._degraded_at
        logger.warning("persistence: storage ok again after %.1fs degraded; %d commands "
                       "written from the backlog", degraded_s, self._written_while_degraded,
                       extra={"db_path": str(self._db_path)})
        self._stats["last_degraded_s"] = degraded_s
        self._stats["written_after_recovery"] = self._written_while_degraded
        self._set_health("ok", "", since=0.0)

    def _set_health(self, state: str, cause: str, *, since: float) -> None:
        dropped = self._stats.get("dropped_commands", 0)
        self._health = StorageHealth(
            state=state, cause=cause, since=since,  # type: ignore[arg-type]
            unsaved_commands=self._units if state != "ok" else 0, dropped_commands=dropped,
            refuse_new_work=state != "ok" and not self._pcfg.drop_when_full)
        if self._outlet is not None:
            try:
                self._outlet.storage(self._health)
            except Exception:
                logger.exception("persistence: storage state not sent to the gateway")

    def _on_request(self, req: ClientRequest) -> None:
        """Answer a persistence-scope request; never raises (it arrives by tell)."""
        r = req.request
        if self._outlet is None:
            logger.warning("persistence has no gateway outlet; %s dropped",
                           r.__struct_config__.tag)
            return
        try:
            reply = self._requests.handler(r)(req)
        except ProtocolError as exc:
            reply = m.Error(code=str(exc.code), message=exc.message, session_id=exc.session_id)
        except Exception as exc:
            logger.exception("%s failed", r.__struct_config__.tag)
            reply = m.Error(code=str(ErrorCode.INTERNAL),
                            message=f"{r.__struct_config__.tag} failed: {exc}",
                            session_id=getattr(r, "session_id", None))
        try:
            self._outlet.answer(req, reply)
        except Exception:
            logger.exception("%s reply not sent", r.__struct_config__.tag)

    @answers(m.GetMessages)
    def _messages_page(self, req: ClientRequest) -> m.MessagesPage:
        r: m.GetMessages = req.request
        # One extra row tells whether an older page exists.
        page = self.load_messages(r.session_id, r.limit + 1, r.before_seq)
        has_more = len(page) > r.limit
        return m.MessagesPage(session_id=r.session_id, messages=page[1:] if has_more else page,
                              has_more_before=has_more)

    @answers(m.ListSessions)
    def _sessions_page(self, req: ClientRequest) -> m.SessionsPage | m.Error:
        r: m.ListSessions = req.request
        if (r.before_activity is None) != (r.before_id is None):
            return m.Error(code=str(ErrorCode.INVALID_FIELD),
                           message="before_activity and before_id: give both (the previous "
                                   "page's last row) or neither")
        self._flush()
        before = None if r.before_id is None else (r.before_activity, r.before_id)
        rows, more = queries.page_summaries(
            self._db(), status=r.status, since=r.since, provider=r.provider, project=r.project,
            search=r.search, limit=r.limit, before=before)
        return m.SessionsPage(sessions=rows, has_more=more)

    @answers(m.BackupDatabase)
    def _backup(self, req: ClientRequest) -> m.Ack:
        """SQLite's online backup from this actor's own write connection.

        On this connection because it is the one that holds every committed write (the
        flush first writes what clients were shown) and because a backup from a second
        connection restarts whenever this one commits, which under a streaming load it
        may never finish. One ``step(-1)`` copies every page while writes wait in the
        inbox (~a few ms per MB); the copy is a consistent snapshot."""
        r: m.BackupDatabase = req.request
        target = Path(r.path).expanduser()
        if not target.is_absolute():
            raise ProtocolError(ErrorCode.INVALID_ARGUMENT, f"{r.path}: give an absolute path")
        if target.exists():
            raise ProtocolError(ErrorCode.INVALID_ARGUMENT, f"{target} exists; not overwritten")
        if not target.parent.is_dir():
            raise ProtocolError(ErrorCode.INVALID_ARGUMENT, f"{target.parent} is no directory")
        self._flush()
        if self._health.state != "ok":
            raise ProtocolError(ErrorCode.STORAGE_UNAVAILABLE,
                                f"storage {self._health.state}: {self._health.cause}; "
                                f"{self._units} commands are not in the database yet")
        started = time.perf_counter()
        dest = apsw.Connection(str(target))
        try:
            with dest.backup("main", self._db(), "main") as backup:
                while not backup.done:
                    backup.step(-1)
            pages = dest.execute("PRAGMA page_count").fetchall()[0][0]
        except apsw.Error as exc:
            dest.close()
            target.unlink(missing_ok=True)
            raise ProtocolError(ErrorCode.INVALID_ARGUMENT, f"backup to {target} failed: "
                                f"{faults.describe(exc)}") from None
        dest.close()
        return m.Ack(result={"path": str(target), "pages": pages,
                             "bytes": target.stat().st_size,
                             "ms": round((time.perf_counter() - started) * 1000, 1)})

    @answers(m.CheckDatabase)
    def _check(self, req: ClientRequest) -> m.Ack:
        self._flush()
        problems = schema.integrity_problems(self._db(), quick=False)
        return m.Ack(result={"ok": not problems, "problems": problems,
                             "path": str(self._db_path), "storage": self._health.state})

    @answers(m.SetPageLimit)
    def _set_page_limit(self, req: ClientRequest) -> m.Ack:
        if not self._pcfg.test_max_page_count:
            raise ProtocolError(ErrorCode.INVALID_STATE, "set_page_limit is for tests: the "
                                "daemon runs without persistence.test_max_page_count")
        pages = self._db().execute(
            f"PRAGMA max_page_count={int(req.request.pages)}").fetchall()[0][0]
        return m.Ack(result={"max_page_count": pages})

    # -- public, proxy-friendly reads (each sees every write told before it)

    def flush(self) -> int:
        """Write what is pending now; returns rows written by this flush."""
        return self._flush()

    def stats(self) -> dict[str, Any]:
        """Counters; does not flush, so it can observe the timer at work."""
        out: dict[str, Any] = dict(self._stats)
        out["coalesced"] = self._coalesced
        out["pending"] = self._units
        out["storage"] = self._health.state
        out["storage_cause"] = self._health.cause
        if self._checkpointer is not None:
            out["passive_checkpoints"] = self._checkpointer.passive_runs
            out["truncate_checkpoints"] = self._checkpointer.truncate_runs
            out["checkpoint_failing"] = self._checkpointer.failing
            # True once a checkpoint has copied every committed write into the DB file.
            out["wal_synced"] = (
                self._checkpointer.synced_write_at == self._checkpointer.last_write_at)
        return out

    def load_sessions(self, limit: int | None = None,
                      active_only: bool = False) -> list[dict[str, Any]]:
        self._flush()
        return queries.load_sessions(self._db(), limit, active_only)

    def load_for_restore(self, limit: int | None, messages: int) -> list[tuple]:
        """(row, latest ``messages`` messages, pending approvals) of every session the
        last daemon left unsettled (``queries.load_unsettled_sessions``), newest first: a
        cold start's reads in one ask instead of three per session."""
        self._flush()
        conn = self._db()
        return [(row, queries.load_messages(conn, row["id"], messages),
                 queries.load_pending_approvals(conn, row["id"]))
                for row in queries.load_unsettled_sessions(conn, limit)]

    def load_session_ids(self) -> list[str]:
        self._flush()
        return queries.load_session_ids(self._db())

    def load_owned_threads(self) -> dict[str, str]:
        self._flush()
        return queries.load_owned_threads(self._db())

    def load_summaries(self, active_only: bool = True) -> list[m.SessionSummary]:
        self._flush()
        return queries.load_summaries(self._db(), active_only)

    def load_session(self, session_id: str) -> dict[str, Any] | None:
        self._flush()
        return queries.load_session(self._db(), session_id)

    def load_messages(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Message]:
        self._flush()
        return queries.load_messages(self._db(), session_id, limit, before_seq)

    def count_messages(self, session_id: str) -> int:
        self._flush()
        return queries.count_messages(self._db(), session_id)

    def load_pending_approvals(self, session_id: str) -> list[ApprovalRequest]:
        self._flush()
        return queries.load_pending_approvals(self._db(), session_id)

    def load_turns(self, session_id: str) -> list[dict[str, Any]]:
        self._flush()
        return queries.load_turns(self._db(), session_id)

    def load_rollout_offsets(self) -> dict[str, dict[str, Any]]:
        self._flush()
        return queries.load_rollout_offsets(self._db())

    def get_config_value(self, key: str) -> str | None:
        self._flush()
        return queries.get_config_value(self._db(), key)

    def _db(self) -> apsw.Connection:
        if self._conn is None:
            raise RuntimeError("persistence database is not open")
        return self._conn


_READS = {
    Flush: lambda a, m: a.flush(),
    Stats: lambda a, m: a.stats(),
    LoadSessions: lambda a, m: a.load_sessions(m.limit, m.active_only),
    LoadSession: lambda a, m: a.load_session(m.session_id),
    LoadMessages: lambda a, m: a.load_messages(m.session_id, m.limit, m.before_seq),
    CountMessages: lambda a, m: a.count_messages(m.session_id),
    LoadPendingApprovals: lambda a, m: a.load_pending_approvals(m.session_id),
    LoadTurns: lambda a, m: a.load_turns(m.session_id),
    LoadRolloutOffsets: lambda a, m: a.load_rollout_offsets(),
    GetConfigValue: lambda a, m: a.get_config_value(m.key),
}
