"""Persistence throughput: the actor (tell + final flush) vs raw apsw, same schema.

Both sides insert the same SaveMessage rows, 50 per transaction, into a fresh
database with orbitdock's pragmas (WAL, synchronous from config,
wal_autocheckpoint=0). The actor side pays for everything the daemon pays for:
the tell queue, coalescing bookkeeping, a SAVEPOINT per command and its
checkpointer thread; raw apsw is ``executemany`` of prebuilt tuples, the floor.
Target: actor >= 0.5x raw.

    .venv/bin/python bench/bench_persistence.py [--rows 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.persistence import PersistenceActor  # noqa: E402
from orbitdock.config import Config  # noqa: E402
from orbitdock.protocol.models import Message  # noqa: E402
from orbitdock.store import schema, sql  # noqa: E402
from orbitdock.store.commands import SaveMessage, SaveSession  # noqa: E402

SESSION = "bench-session"


def _messages(rows: int) -> list[Message]:
    return [
        Message(id=f"m{i}", seq=i, type="assistant", content=f"message {i} " + "x" * 80,
                turn_id="t1", timestamp=1_700_000_000.0 + i)
        for i in range(1, rows + 1)
    ]


def run_actor(cfg: Config, db: Path, messages: list[Message]) -> float:
    ref = PersistenceActor.start(cfg, db)
    try:
        proxy = ref.proxy()
        ref.tell(SaveSession(SESSION, {"provider": "codex"}))
        proxy.flush().get(timeout=cfg.persistence.ask_timeout_s)
        commands = [SaveMessage(SESSION, m) for m in messages]
        started = time.perf_counter()
        for command in commands:
            ref.tell(command)
        proxy.flush().get(timeout=cfg.persistence.ask_timeout_s)
        elapsed = time.perf_counter() - started
        stats = proxy.stats().get(timeout=cfg.persistence.ask_timeout_s)
        assert stats["rows_written"] == len(messages) + 1, stats
    finally:
        ref.stop()
    return len(messages) / elapsed


def run_raw(cfg: Config, db: Path, messages: list[Message]) -> float:
    conn = schema.open_database(db, cfg.persistence)
    try:
        conn.execute("INSERT INTO sessions(id, provider) VALUES(?, 'codex')", (SESSION,))
        rows = [sql.message_row(SESSION, m) for m in messages]
        batch = cfg.persistence.batch_size
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql.MESSAGE_UPSERT, rows[i:i + batch])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return len(messages) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cfg = Config()
    messages = _messages(args.rows)
    actor: list[float] = []
    raw: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):  # interleaved so drift hits both sides alike
            actor.append(run_actor(cfg, Path(tmp) / f"actor{run}.db", messages))
            raw.append(run_raw(cfg, Path(tmp) / f"raw{run}.db", messages))
    p = cfg.persistence
    print(f"{args.rows} SaveMessage inserts, batch_size={p.batch_size}, "
          f"synchronous={p.synchronous}, {args.runs} runs")
    print(f"{'':<14}{'median rows/s':>15}{'min':>11}{'max':>11}")
    for name, values in (("actor (tell)", actor), ("raw apsw", raw)):
        print(f"{name:<14}{statistics.median(values):>15,.0f}{min(values):>11,.0f}"
              f"{max(values):>11,.0f}")
    print(f"ratio actor/raw (medians): {statistics.median(actor) / statistics.median(raw):.2f}x")


if __name__ == "__main__":
    main()
