"""The codex pool's report: its recovery counters and its rows, built from a real PoolBook."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from orbitdock.codex.login_shell import ShellStart
from orbitdock.codex.placement import PoolBook
from orbitdock.codex.pool_report import RecoveryStats, pool_report
from orbitdock.config import CodexConfig


@dataclass(eq=False)
class Proc:  # stands in for an AppServerProcess: the report reads these three
    proc_id: int
    pid: int | None
    version: str | None = "0.169.0"


@dataclass(eq=False)
class Sink:
    session_id: str
    thread_id: str | None = None
    was_busy: bool = False


def test_recoveries_are_timed_from_the_first_loss_and_counted_once():
    stats = RecoveryStats()
    quick, slow, doomed, stopped = Sink("a"), Sink("b"), Sink("c"), Sink("d")
    stats.lost([quick, slow, doomed, stopped], [])
    stats.resumed_ok(quick)
    stats.forget(stopped)  # its session ended while it resumed: neither outcome
    time.sleep(0.05)
    stats.lost([slow], [doomed])  # the second process died mid-resume; doomed had no tries left
    stats.resumed_ok(slow)
    stats.resumed_ok(Sink("e"))  # a plain thread start: no crash behind it
    stats.gave_up(doomed)  # already counted: once is enough
    got = stats.as_dict()
    assert {k: got[k] for k in ("processes_lost", "resumed", "failed", "resuming")} == \
        {"processes_lost": 2, "resumed": 2, "failed": 1, "resuming": 0}
    assert got["slowest_s"] >= 0.05 and got["last_s"] == got["slowest_s"]  # from the first loss
    assert got["mean_s"] < got["slowest_s"]  # the quick one pulls it down


def test_rows_say_what_each_process_does_and_costs():
    book: PoolBook[Proc] = PoolBook(CodexConfig(spare_processes=1))
    serving, spare = Proc(1, os.getpid()), Proc(2, None)
    gone = Proc(3, 2 ** 22 + 1)  # above Linux's largest pid_max: no such process
    for proc in (serving, spare, gone):
        book.add(proc)
    book.assign(Sink("od-1"), serving)
    book.start_resume(Sink("od-2"), gone)  # a resume in flight makes it "recovering"
    report = pool_report(book, RecoveryStats(), ShellStart("/bin/bash", 0.2), warn_s=0.05)
    rows = {row["proc_id"]: row for row in report["processes"]}
    assert (rows[1]["state"], rows[1]["sessions"], rows[1]["load"]) == ("serving", ["od-1"], 1)
    assert rows[1]["rss_bytes"] > 0 and rows[1]["nice"] == os.getpriority(os.PRIO_PROCESS, 0)
    assert rows[2]["state"] == "spare" and "rss_bytes" not in rows[2]  # not started: no figures
    assert rows[3]["state"] == "recovering" and "rss_bytes" not in rows[3]  # no such pid
    assert report["login_shell"]["ms"] == 200.0 and "200 ms to start" in \
        report["login_shell"]["warning"]
