"""Rollout import throughput: RolloutReader + RolloutParser vs raw ``orjson.loads`` per line.

    .venv/bin/python bench/bench_rollout.py [--mb 200] [--runs 3] [--path FILE]

Generates a codex-0.169-like rollout of about ``--mb`` MB by repeating the turns of
the real fixtures (tests/fixtures/rollouts) with fresh turn/call/item ids, plus
the occasional large tool output, then measures in the same run:

* raw floor:     ``for line in open(path, "rb"): orjson.loads(line)``;
* reader only:   RolloutReader.read_lines(batch_lines) until EOF (no decoding);
* reader+parser: what the watcher does per batch, minus the actor messages.

With ``--daemon`` it also imports the file through a whole daemon (watcher -> session
actor -> persistence, into SQLite), from start to the file's offset committed, with the
daemon's peak RSS: what a user waits for when orbitdock meets a big transcript.

Each mode runs in its own child process (so peak RSS is that mode's alone), ``--runs``
times, interleaved; the table shows the median MB/s and lines/s and the child's peak
RSS (sampled every 5 ms) and its growth over the RSS after imports. The file is read
once first so every mode sees a warm page cache. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import psutil  # noqa: E402
from common import command_line, machine_line, markdown_table, median  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "rollouts"
TURN_SOURCES = ("exec_patch_question.jsonl", "mcp_plan_search.jsonl", "app_server_turns.jsonl",
                "text_turn.jsonl")
BIG_OUTPUT_EVERY = 50  # every 50th turn carries a 64 KB command output (logs, test runs)
MODES = ("raw", "reader", "parser")
RSS_SAMPLE_S = 0.005
DAEMON_POLL_S = 0.1  # how often the whole-daemon import is checked (and its RSS sampled)
DAEMON_IMPORT_TIMEOUT_S = 3600.0


def _turn_lines() -> list[list[bytes]]:
    """The non-meta lines of each fixture: one 'turn template' per file."""
    out = []
    for name in TURN_SOURCES:
        lines = (FIXTURES / name).read_bytes().splitlines()
        out.append([ln for ln in lines if b'"type":"session_meta"' not in ln[:120]])
    return out


def generate(path: Path, megabytes: int) -> tuple[int, int]:
    """Write the rollout; returns (bytes, lines)."""
    templates = _turn_lines()
    meta = (FIXTURES / "text_turn.jsonl").read_bytes().splitlines()[0]
    ids = (b"01a212c9-9bb3-77a0-b548-022d72954c6a", b"call_exec1", b"call_patch1", b"msg_3",
           b"01a212cd-13e5-7fe1-90e2-fc53a0fa59d1", b"call_mcp", b"call_ts0", b"msg_2", b"msg_4")
    target, written, lines, turn = megabytes * 1_000_000, 0, 0, 0
    big = json.dumps("x" * 65_536).encode()
    with open(path, "wb") as fh:
        fh.write(meta + b"\n")
        written += len(meta) + 1
        while written < target:
            fresh = uuid.uuid4().hex.encode()
            for line in templates[turn % len(templates)]:
                for old in ids:
                    line = line.replace(old, old[:8] + fresh[:12])
                if turn % BIG_OUTPUT_EVERY == 0 and b'"aggregated_output":"hi\\n"' in line:
                    line = line.replace(b'"hi\\n"', big)
                fh.write(line + b"\n")
                written += len(line) + 1
                lines += 1
            turn += 1
    return written, lines


def _child(mode: str, path: str) -> None:
    """Run one mode over the file and print a JSON result line."""
    import orjson

    from orbitdock.config import WatcherConfig
    from orbitdock.rollout.parser import RolloutParser
    from orbitdock.rollout.reader import RolloutReader

    cfg = WatcherConfig()
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:  # ru_maxrss would include the import-time peak; sample instead
        while not done.wait(RSS_SAMPLE_S):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = events = 0
    t0 = time.perf_counter()
    if mode == "raw":
        with open(path, "rb") as fh:
            for line in fh:
                orjson.loads(line)
                lines += 1
    else:
        reader = RolloutReader(path, chunk_bytes=cfg.read_chunk_bytes,
                               max_line_bytes=cfg.max_line_bytes)
        parser = RolloutParser(path) if mode == "parser" else None
        while True:
            res = reader.read_lines(cfg.batch_lines)
            lines += len(res.lines)
            if parser is not None:
                for line, end in res.lines:
                    events += len(parser.feed(line, end))
            if res.eof:
                break
    elapsed = time.perf_counter() - t0
    done.set()
    sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    print(json.dumps({"mode": mode, "seconds": elapsed, "lines": lines, "events": events,
                      "rss_base": base, "rss_peak": peak[0]}))


def _daemon_import(path: Path) -> dict:
    """Import ``path`` through a daemon on a throw-away CODEX_HOME; seconds to committed."""
    import apsw

    from common import bench_daemon
    from orbitdock.paths import layout

    codex_home = Path(tempfile.mkdtemp(prefix="orbitdock-bench-codex-"))
    day = codex_home / "sessions" / time.strftime("%Y/%m/%d")
    day.mkdir(parents=True)
    linked = day / f"rollout-2026-11-25T00-00-00-{uuid.uuid4()}.jsonl"
    os.link(path, linked)  # followed at start: modified just now
    size = linked.stat().st_size
    t0 = time.perf_counter()
    peak, rows, conn = 0, 0, None
    try:
        with bench_daemon(env={"CODEX_HOME": str(codex_home)}, watcher=True) as daemon:
            proc = psutil.Process(daemon.proc.pid)
            db_path = str(layout(daemon.config).db_path)
            deadline = time.monotonic() + DAEMON_IMPORT_TIMEOUT_S
            while time.monotonic() < deadline:
                peak = max(peak, proc.memory_info().rss)
                try:
                    if conn is None:  # one read connection, once the daemon made the file
                        conn = apsw.Connection(db_path, flags=apsw.SQLITE_OPEN_READONLY)
                        conn.set_busy_timeout(2000)
                    done = conn.execute("SELECT offset FROM rollout_offsets WHERE path=?",
                                        (str(linked),)).fetchall()
                    if done and done[0][0] >= size:
                        rows = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
                        break
                except apsw.Error:
                    pass  # no file or schema yet
                time.sleep(DAEMON_POLL_S)
            else:
                raise RuntimeError("the daemon did not finish the import in time")
        elapsed = time.perf_counter() - t0
    finally:
        if conn is not None:
            conn.close()
        shutil.rmtree(codex_home, ignore_errors=True)
    return {"seconds": elapsed, "rows": rows, "rss_peak": peak}


def _run(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--path", str(path)],
                         check=True, capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--path", help="use (or, with --child, read) this rollout file")
    ap.add_argument("--daemon", action="store_true",
                    help="also import through a whole daemon (slow: SQLite rows)")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.path)
        return
    tmp = None
    if args.path and Path(args.path).exists():
        path = Path(args.path)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="orbitdock-bench-rollout-"))
        path = Path(args.path) if args.path else tmp / "rollout-bench.jsonl"
        t0 = time.perf_counter()
        size, nlines = generate(path, args.mb)
        print(f"generated {size / 1e6:.0f} MB, {nlines} lines in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:  # warm the page cache once for every mode
            while fh.read(1 << 24):
                pass
        results: dict[str, list[dict]] = {m: [] for m in MODES}
        for _ in range(args.runs):
            for mode in MODES:
                results[mode].append(_run(mode, path))
        raw_s = median(r["seconds"] for r in results["raw"])
        rows = []
        labels = {"raw": "raw orjson.loads per line (floor)", "reader": "RolloutReader only",
                  "parser": "RolloutReader + RolloutParser"}
        for mode in MODES:
            runs = results[mode]
            secs = median(r["seconds"] for r in runs)
            grow = max(r["rss_peak"] - r["rss_base"] for r in runs) / 2**20
            peak = max(r["rss_peak"] for r in runs) / 2**20
            rows.append([labels[mode], f"{size / 1e6 / secs:.0f}",
                         f"{runs[0]['lines'] / secs / 1000:.0f}k", f"{raw_s / secs:.2f}x",
                         f"{peak:.0f} (+{grow:.1f})", runs[0]["events"] or ""])
        print(f"\n{command_line()}\n{machine_line()}\n"
              f"file: {size / 1e6:.0f} MB, {results['raw'][0]['lines']} lines "
              f"(mean {size / results['raw'][0]['lines']:.0f} B/line); median of {args.runs}\n")
        print(markdown_table(["mode", "MB/s", "lines/s", "vs raw", "peak RSS MB (+run)", "events"],
                             rows))
        if args.daemon:
            runs = [_daemon_import(path) for _ in range(args.runs)]
            secs = median(r["seconds"] for r in runs)
            print("\n" + markdown_table(
                ["whole daemon (start -> offset committed)", "MB/s", "rows/s", "vs raw",
                 "daemon peak RSS MB", "message rows"],
                [["watcher -> session actor -> SQLite", f"{size / 1e6 / secs:.1f}",
                  f"{runs[0]['rows'] / secs / 1000:.1f}k", f"{raw_s / secs:.3f}x",
                  f"{max(r['rss_peak'] for r in runs) / 2**20:.0f}", runs[0]["rows"]]]))
    finally:
        if tmp is not None:
            for p in tmp.iterdir():
                p.unlink()
            tmp.rmdir()


if __name__ == "__main__":
    main()
