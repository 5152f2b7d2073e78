"""The loss check: what clients saw vs what the database kept vs what the model said.

Definitions (the daemon persists asynchronously, one transaction per ≤100 ms):

* A message is *seen* by a client when its turn has ended and the message is
  complete in the client's mirror (recorded with the time, per subscriber).
* **lost**: a seen message (id + type/content digest) that the database does
  not hold at the end — unless a daemon kill -9 came after it was seen and the
  database read right after that kill did not hold it either: it was published
  but not yet committed when the process died, which the design allows
  (``uncommitted_at_kill``; how long before the kill it was seen is reported,
  and sightings older than ``grace_s`` are flagged as commit lag). Exception:
  if a *later* message of the same session was committed at that kill, the
  write was dropped, and that is lost. A message committed at a kill and
  missing later is lost. Also lost: a turn the driver saw complete whose final
  reply (the model transcript says it was generated) is not in the database
  and was committed, and passive turns written to a rollout that never
  reached it.
* **duplicated**: a tagged prompt, tool call or reply present more than once in
  a session in the database, a passive line imported twice, or a message id
  appearing twice in a client's mirror.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

from orbitdock.load.model import TAG_RE

TAGGED = ("[LOAD:", "[STEER:", "[PASSIVE:")
# A complete tag names one turn; an interrupted reply cut inside its tag ("Done [LOAD:s")
# does not, so several turns' cut replies can be identical without being duplicates.
WHOLE_TAG_RE = re.compile(TAG_RE.pattern + r"|\[PASSIVE:p\d+:t\d+\]")


def message_digest(mtype: str, content: str, tool_input: str | None) -> int:
    raw = f"{mtype}\0{content}\0{tool_input or ''}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


@dataclass
class DbMessages:
    rows: dict[str, list[tuple]] = field(default_factory=dict)  # sid -> [(id, seq, type, ...)]
    digests: dict[str, int] = field(default_factory=dict)  # message id -> digest
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)


DB_OPEN_ATTEMPTS = 50  # a daemon starting or stopping can briefly hold the file (~5 s)
DB_OPEN_RETRY_S = 0.1


def read_db(path: Path, with_rows: bool = True) -> DbMessages:
    """Read-only snapshot of messages and session rows (safe while the daemon runs: WAL).

    Retried briefly: while a daemon is being created or is closing, SQLite can refuse a
    read-only open (the WAL index is being set up or removed).
    """
    for attempt in range(DB_OPEN_ATTEMPTS):
        try:
            return _read_db_once(path, with_rows)
        except (apsw.CantOpenError, apsw.BusyError, apsw.SQLError):
            if attempt == DB_OPEN_ATTEMPTS - 1:
                raise
            time.sleep(DB_OPEN_RETRY_S)
    raise AssertionError("unreachable")


def _read_db_once(path: Path, with_rows: bool) -> DbMessages:
    out = DbMessages()
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.setbusytimeout(5000)
        for sid, mid, seq, mtype, content, tool_input, turn_id in conn.execute(
                "SELECT session_id, id, seq, type, content, tool_input, turn_id FROM messages "
                "ORDER BY session_id, seq"):
            out.digests[mid] = message_digest(mtype, content, tool_input)
            if with_rows:
                out.rows.setdefault(sid, []).append((mid, seq, mtype, content, tool_input, turn_id))
        for sid, work, turn, error, mode, count in conn.execute(
                "SELECT id, work_status, current_turn_id, last_error, integration_mode, "
                "total_message_count FROM sessions"):
            out.sessions[sid] = {"work_status": work, "current_turn_id": turn, "last_error": error,
                                 "integration_mode": mode, "total_message_count": count}
    finally:
        conn.close()
    return out


@dataclass
class Kill:
    at: float  # wall time of the SIGKILL
    db: DbMessages  # what was committed (read right after the kill)


@dataclass
class Verdict:
    lost: int = 0
    duplicated: int = 0
    uncommitted_at_kill: int = 0
    uncommitted_max_age_s: float = 0.0  # oldest sighting among them, before its kill
    uncommitted_late: int = 0  # of which seen more than grace_s before the kill (commit lag)
    seen_messages: int = 0
    checked_turns: int = 0
    phantom: int = 0  # replies in the DB the model never generated
    examples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text)


def check_seen(v: Verdict, finals: list[dict[str, Any]], final_db: DbMessages,
               kills: list[Kill], grace_s: float) -> None:
    """Every (id, digest) any subscriber saw must be in the final DB (see module docstring)."""
    sightings: dict[tuple[str, int], float] = {}
    texts: dict[str, str] = {}
    for fin in finals:
        texts.update(fin.get("seen_text", {}))
        for mid, (d, at) in fin["seen"].items():
            key = (mid, d)
            sightings[key] = min(at, sightings.get(key, at))
        for mid, old, _new, t_old, _t_new in fin["conflicts"]:
            key = (mid, old)
            sightings[key] = min(t_old, sightings.get(key, t_old))
    v.seen_messages = len(sightings)
    for (mid, d), at in sorted(sightings.items(), key=lambda kv: kv[1]):
        if final_db.digests.get(mid) == d:
            continue
        kill = next((k for k in kills if k.at >= at), None)
        if kill is not None and kill.db.digests.get(mid) != d:
            if _later_committed(mid, kill.db):
                v.lost += 1
                v.note(f"lost {mid}: the version seen {kill.at - at:.2f}s before a kill "
                       f"(last seen as {texts.get(mid, '?')}) was not "
                       f"committed by then although later messages of its session were: "
                       f"at the kill {_row(kill.db, mid)}, at the end {_row(final_db, mid)}")
            else:
                _uncommitted(v, kill.at - at, grace_s, mid)
            continue
        v.lost += 1
        state = "changed" if mid in final_db.digests else "missing"
        v.note(f"lost {mid}: seen by a client, {state} in the database")


def _uncommitted(v: Verdict, age: float, grace_s: float, what: str) -> None:
    """Published, not committed when the daemon died: allowed by design; its age is reported."""
    v.uncommitted_at_kill += 1
    v.uncommitted_max_age_s = max(v.uncommitted_max_age_s, age)
    if age > grace_s:
        v.uncommitted_late += 1
        v.note(f"{what}: seen {age:.2f}s before a kill and still not committed (commit lag)")


def _row(db: DbMessages, mid: str) -> str:
    """One message row, briefly, for an example line."""
    sid = mid.rpartition(":m")[0]
    for r in db.rows.get(sid, []):
        if r[0] == mid:
            return f"{r[2]} {r[3][:50]!r} (tool input {(r[4] or '')[:30]!r}, turn {r[5]})"
    return "absent"


def _later_committed(mid: str, db: DbMessages) -> bool:
    sid, _, seq = mid.rpartition(":m")
    rows = db.rows.get(sid, [])
    return seq.isdigit() and bool(rows) and max(r[1] for r in rows) > int(seq)


# An assistant reply's opening names the model step that generated it (see model.py).
REPLY_STEPS = (("Working on ", "slow"), ("Done ", "final"), ("Steered ", "steered"))


def generated_times(text: str, served: dict[str, list[str]] | None) -> int:
    """How often the model generated this assistant reply (at least once).

    Codex can sample the same turn again (a steer that lands after the first
    request, a retried stream), and the model then really says it twice."""
    found = TAG_RE.search(text)
    if served is None or found is None:
        return 1
    step = next((s for prefix, s in REPLY_STEPS if text.startswith(prefix)), None)
    return max(1, served.get(found.group(0), []).count(step)) if step else 1


def check_duplicates(v: Verdict, final_db: DbMessages, finals: list[dict[str, Any]],
                     served: dict[str, list[str]] | None = None) -> None:
    for sid, rows in final_db.rows.items():
        counts: Counter[tuple[str, str]] = Counter()
        for _mid, _seq, mtype, content, tool_input, _turn in rows:
            text = tool_input if mtype == "tool" else content
            if text and WHOLE_TAG_RE.search(text):
                counts[(mtype, text)] += 1
        for (mtype, text), n in counts.items():
            allowed = generated_times(text, served) if mtype == "assistant" else 1
            if n > allowed:
                v.duplicated += n - allowed
                v.note(f"duplicated in {sid}: {n}× {mtype} {text[:60]!r}")
            elif n > 1:
                v.note(f"{sid}: {mtype} {text[:60]!r} {n}×, generated {allowed}× by the model")
    for fin in finals:
        if fin["dup_ids"]:
            v.duplicated += fin["dup_ids"]
            v.note(f"{fin['dup_ids']} duplicate message ids in a client mirror")


def check_transcript(v: Verdict, outcomes: list[tuple], expected: dict[str, str],
                     served: dict[str, list[str]] | None, final_db: DbMessages,
                     kills: list[Kill], grace_s: float) -> None:
    """Turns the driver saw complete: the model generated the reply, the DB holds it once."""
    by_sid: dict[str, Counter[str]] = {}
    for sid, rows in final_db.rows.items():
        by_sid[sid] = Counter(r[3] for r in rows if r[2] == "assistant")
    for sid, tag, _kind, outcome, _sent, ended, _turn in outcomes:
        if outcome != "completed":
            continue
        v.checked_turns += 1
        text = expected.get(tag)
        if served is not None and not any(s in ("final", "steered") for s in served.get(tag, [])):
            v.phantom += 1
            v.note(f"{tag}: completed for the client but the model never generated its reply")
        if text is None or not any(t in text for t in TAGGED):
            continue  # scripted "Done.": not unique per turn, covered by check_seen
        if by_sid.get(sid, Counter())[text] == 0:
            kill = next((k for k in kills if k.at >= ended), None)
            if kill is not None and text not in (r[3] for r in kill.db.rows.get(sid, [])):
                continue  # not committed at the kill: counted (once) by check_seen
            else:
                v.lost += 1
                v.note(f"{tag}: completed turn's reply missing from the database")
    if served is not None:
        generated = {t for t, steps in served.items() if "final" in steps or "steered" in steps}
        for sid, rows in final_db.rows.items():
            for r in rows:
                if r[2] == "assistant" and r[3].startswith(("Done [LOAD:", "Steered [LOAD:")):
                    m = TAG_RE.search(r[3])
                    if m and m.group(0) not in generated:
                        v.phantom += 1
                        v.note(f"{m.group(0)} reply in the database was never generated")


def explain_timeouts(outcomes: list[tuple], served: dict[str, list[str]] | None) -> list[str]:
    """For each timed-out turn, what the model served for it: which side stalled.

    A direct turn is two samplings (a tool call, then after its output the final
    reply); ["call"] alone means codex never came back with the tool's result.
    """
    return [f"{tag} ({sid}) timed out; the model served {(served or {}).get(tag, [])}"
            for sid, tag, _kind, outcome, *_ in outcomes if outcome == "timeout"]


def check_passive(v: Verdict, written: dict[str, list[tuple[str, str]]],
                  final_db: DbMessages) -> dict[str, int]:
    """Every passive turn written must be in the DB exactly once (watcher offsets are atomic)."""
    missing_sessions = 0
    for sid, pairs in written.items():
        rows = final_db.rows.get(sid)
        if rows is None:
            if pairs:
                missing_sessions += 1
                v.lost += 2 * len(pairs)
                v.note(f"passive session {sid} never appeared ({len(pairs)} turns written)")
            continue
        have = Counter((r[2], r[3]) for r in rows)
        for prompt, reply in pairs:
            for key in (("user", prompt), ("assistant", reply)):
                n = have.get(key, 0)
                if n == 0:
                    v.lost += 1
                    v.note(f"passive {sid}: {key[0]} {key[1][:40]!r} not imported")
                elif n > 1:
                    v.duplicated += n - 1
                    v.note(f"passive {sid}: {key[0]} {key[1][:40]!r} imported {n}×")
    return {"sessions": len(written), "turns": sum(len(p) for p in written.values()),
            "missing_sessions": missing_sessions}


def restore_check(db: DbMessages, snapshots: dict[str, Any], direct: set[str],
                  limit: int) -> tuple[int, int, list[str]]:
    """After a restart: (status mismatches, message mismatches, examples) vs the DB at the kill.

    A turn open in the DB must come back closed as interrupted ("waiting", the
    restart in last_error); any other session keeps its work status. Its message
    window must be the DB's newest ``limit`` messages.
    """
    bad_status = bad_messages = 0
    notes: list[str] = []
    for sid in direct:
        row, snap = db.sessions.get(sid), snapshots.get(sid)
        if row is None or snap is None:
            continue
        if row["current_turn_id"]:
            ok = (snap.work_status == "waiting" and snap.current_turn_id is None
                  and "restarted" in (snap.last_error or "") and not snap.approvals)
        else:
            ok = snap.work_status == row["work_status"] and snap.current_turn_id is None
        if not ok:
            bad_status += 1
            notes.append(f"{sid}: db {row['work_status']}/{row['current_turn_id']} -> "
                         f"restored {snap.work_status}/{snap.current_turn_id} "
                         f"{(snap.last_error or '')[:60]!r}")
        want = [(r[0], r[2], r[3]) for r in db.rows.get(sid, [])][-limit:]
        got = [(x.id, x.type, x.content) for x in snap.messages][-len(want):] if want else []
        if want != got or snap.total_message_count != row["total_message_count"]:
            bad_messages += 1
            notes.append(f"{sid}: restored messages differ from the database "
                         f"({len(got)} vs {len(want)}, total {snap.total_message_count} vs "
                         f"{row['total_message_count']})")
    return bad_status, bad_messages, notes[:10]
