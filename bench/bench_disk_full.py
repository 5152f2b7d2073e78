"""A full disk in the middle of streaming sessions: nothing the clients saw is lost.

Starts a throw-away daemon with the test-only ``persistence.test_max_page_count`` (which
enables the ``set_page_limit`` request), starts ``--sessions`` scripted sessions streaming
(``/stream``), then makes the database full at its current size (SQLite's
``PRAGMA max_page_count``: SQLITE_FULL, as a full disk). While degraded it samples
``get_status`` (unsaved commands), tries new sessions (each must be refused with
storage_unavailable), lets every turn finish in memory and holds the fault ``--hold``
seconds more; then lifts the limit and times the return to ``ok``. After a clean stop it
compares the database with what the clients were shown: every message, in order, none
twice, each with the content the last snapshot showed.

    .venv/bin/python bench/bench_disk_full.py --sessions 20 --hold 5 [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from orbitdock.client.requests import RemoteError  # noqa: E402
from orbitdock.harness import DaemonProcess  # noqa: E402
from orbitdock.protocol import messages as m  # noqa: E402


def _wait(predicate, timeout: float, every=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if every is not None:
            every()
        if predicate():
            return True
        time.sleep(0.05)
    return False


def run(args: argparse.Namespace) -> dict:
    d = DaemonProcess(env={"ORBITDOCK_PERSISTENCE__TEST_MAX_PAGE_COUNT": "1000000"})
    d.start()
    try:
        client = d.client(timeout=10)
        ids = [client.request(m.CreateSession(provider="scripted", cwd=f"/w/{i}")).session.id
               for i in range(args.sessions)]
        for sid in ids:
            client.request(m.SendMessage(session_id=sid,
                                         content=f"/stream {args.chunks} {args.rate} 2000"))
        time.sleep(0.3)
        client.request(m.SetPageLimit(pages=1))
        peak = {"unsaved": 0}
        refused = accepted = 0

        def sample() -> None:
            st = client.request(m.GetStatus())
            peak["unsaved"] = max(peak["unsaved"], st.unsaved_commands)
            peak["state"] = st.storage

        if not _wait(lambda: peak.get("state") in ("degraded", "full"), 10, sample):
            raise SystemExit("the database never reported full")
        degraded_at = time.monotonic()
        cause = client.request(m.GetStatus()).storage_cause
        for i in range(5):
            try:
                client.request(m.CreateSession(provider="scripted", cwd=f"/w/new{i}"))
                accepted += 1
            except RemoteError as exc:
                refused += exc.code == "storage_unavailable"
        done = lambda: all(client.request(m.SubscribeSession(session_id=s)).session  # noqa: E731
                           .work_status == "reply" for s in ids)
        if not _wait(done, 120, sample):
            raise SystemExit("the turns did not finish")
        hold_until = time.monotonic() + args.hold
        _wait(lambda: time.monotonic() >= hold_until, args.hold + 1, sample)
        live = {s: client.request(m.SubscribeSession(session_id=s)).session for s in ids}
        lifted_at = time.monotonic()
        client.request(m.SetPageLimit(pages=1_000_000))
        _wait(lambda: client.request(m.GetStatus()).storage == "ok", 60)
        ok_at = time.monotonic()
        d.close_clients()
        rc = d.stop()
        conn = apsw.Connection(str(d.db_path), flags=apsw.SQLITE_OPEN_READONLY)
        rows: dict[str, list[tuple]] = {}
        for sid, seq, mid, content in conn.execute(
                "SELECT session_id, seq, id, content FROM messages ORDER BY 1, 2"):
            rows.setdefault(sid, []).append((seq, mid, content))
        conn.close()
        shown = lost = dup = mismatched = 0
        for sid, state in live.items():
            got = rows.get(sid, [])
            shown += state.total_message_count
            lost += max(0, state.total_message_count - len(got))
            dup += len(got) - len({mid for _, mid, _ in got})
            by_seq = {seq: content for seq, _, content in got}
            mismatched += sum(1 for x in state.messages if by_seq.get(x.seq) != x.content)
        log = "\n".join(d.log_lines())
        backlog = re.findall(r"(\d+) commands written from the backlog", log)
        return {
            "sessions": args.sessions, "cause": cause, "peak_unsaved_commands": peak["unsaved"],
            "new_sessions_refused": refused, "new_sessions_accepted": accepted,
            "degraded_s": round(ok_at - degraded_at, 2),
            "recovery_s": round(ok_at - lifted_at, 3),
            "written_after_recovery": int(backlog[-1]) if backlog else None,
            "messages_shown": shown, "messages_in_db": sum(len(v) for v in rows.values()),
            "lost": lost, "duplicated": dup, "content_mismatches": mismatched,
            "degraded_log_lines": log.count("storage degraded"), "exit_code": rc,
        }
    finally:
        d.close_clients()
        d.stop()
        d.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=150, help="stream deltas per turn")
    parser.add_argument("--rate", type=float, default=60.0, help="deltas per second")
    parser.add_argument("--hold", type=float, default=5.0,
                        help="seconds the fault stays after every turn finished")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if result["lost"] or result["duplicated"] or result["content_mismatches"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
