"""PoolBook and HeldWork: the codex pool's placement rules and held work, without
processes (test_codex_pool_faults runs them against fake app-servers,
test_codex_connector against the real codex)."""

from __future__ import annotations

import queue
from dataclasses import dataclass

import pykka
import pytest

from orbitdock.codex.held_work import HeldWork
from orbitdock.codex.placement import PoolBook
from orbitdock.config import CodexConfig
from orbitdock.timers import ActorTimer


@dataclass(eq=False)
class Sink:
    thread_id: str | None = None


class Proc:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def book_with(loads: list[int], **config) -> tuple[PoolBook, list[Proc]]:
    book: PoolBook = PoolBook(CodexConfig(**config))
    procs = [Proc(f"p{i}") for i in range(len(loads))]
    for proc, load in zip(procs, loads):
        book.add(proc)
        for _ in range(load):
            book.assign(Sink(), proc)
    return book, procs


def test_new_sessions_fill_busy_processes_least_loaded_first_and_the_spare_last():
    book, (full, busy, busier, spare) = book_with([4, 1, 2, 0], threads_per_process=4)
    assert book.least_loaded() is busy
    book.assign(Sink(), busy)
    book.assign(Sink(), busy)
    book.assign(Sink(), busier)
    book.assign(Sink(), busier)
    book.assign(Sink(), busy)  # every busy process is full now
    assert book.least_loaded() is spare
    for _ in range(4):
        book.assign(Sink(), spare)
    assert book.least_loaded() is None  # all full: the pool starts a process


def test_a_thread_goes_back_to_the_live_process_that_loaded_it():
    book, (a, b) = book_with([0, 3])
    sink = Sink("t1")
    book.assign(sink, a)
    book.bound(sink, "t1")
    book.unassign(sink)  # unsubscribed: codex keeps the thread loaded in a
    again = Sink("t1")
    assert book.live_home(again) is a
    book.drop(a)  # a died: nowhere is home
    assert book.live_home(again) is None and book.threads_of(a) == []


def test_dropping_a_process_returns_its_sessions_and_forgets_them():
    book, (a, b) = book_with([2, 1])
    sinks = set(book.hosted[a])
    assert book.drop(a) == sinks
    assert all(s not in book.where for s in sinks) and book.procs == [b]
    assert book.drop(a) == set()  # a retired process's exit comes back: nothing twice


def test_a_recovery_wave_spreads_over_idle_processes_and_skips_busy_ones():
    book, (busy, idle1, idle2) = book_with([3, 0, 0], threads_per_process=16, recovery_batch=2)
    wave: dict = {}
    idle = set(book.idle())
    placed = []
    for _ in range(5):
        proc = book.recovery_target(wave, idle)
        if proc is None:
            break
        wave[proc] = wave.get(proc, 0) + 1
        book.start_resume(Sink(), proc)
        placed.append(proc)
    # two per idle process, alternating; none on the busy one; the fifth needs a new one
    assert placed == [idle1, idle2, idle1, idle2]
    book.config.recovery_on_busy = True
    assert book.recovery_target(wave, idle) is busy


def test_recovery_batch_is_capped_by_the_room_in_a_process():
    book, _ = book_with([0], threads_per_process=4, recovery_batch=8)
    assert book.recovery_batch() == 4
    book.config.recovery_batch = 0
    assert book.recovery_batch() == 1


def test_no_spare_starts_while_resumes_run_and_the_last_resume_names_its_process():
    book, (busy, spare) = book_with([2, 0], spare_processes=1)
    assert book.spares_missing() == 0  # the spare is there
    first, second = Sink(), Sink()
    book.start_resume(first, spare)
    book.start_resume(second, spare)
    assert book.spares_missing() == 0  # used, but its replacement would slow the resumes
    assert book.resume_done(first) is None and book.is_resuming(spare)
    assert book.resume_done(Sink()) is None  # not resuming: nothing to report
    assert book.resume_done(second) is spare and not book.is_resuming(spare)
    assert book.spares_missing() == 1


def test_no_spare_without_sessions_and_idle_excess_stops_threadless_processes_first():
    book, (a, b, c) = book_with([0, 0, 0], spare_processes=1)
    assert book.spares_missing() == 0  # nothing runs: nothing to keep warm
    sink = Sink("t1")
    book.assign(sink, a)
    book.bound(sink, "t1")
    book.unassign(sink)  # a still has t1 loaded
    assert book.idle_excess() == [b, c]  # a is kept: t1 can come back to it


def test_requests_tied_to_no_session_go_to_the_least_busy_process():
    book, (a, b, c) = book_with([3, 1, 2])
    assert book.least_busy() is b
    assert PoolBook(CodexConfig()).least_busy() is None  # the pool starts one


def test_sessions_of_a_recovery_are_held_back_until_its_last_resume_or_the_hold_ends():
    book, (busy, fresh) = book_with([1, 0])
    (bystander,) = book.hosted[busy]
    first, second = Sink("t1"), Sink("t2")
    for sink in (first, second):
        book.start_resume(sink, fresh)
    assert book.resume_done(first) is None  # resumed, but the process still resumes
    assert book.held_back(first) and book.held_back(second)
    assert not book.held_back(bystander)  # sessions outside the recovery never wait
    assert book.resume_done(second) is fresh
    assert not book.held_back(first) and not book.held_back(second)
    book.start_resume(first, busy)  # another wave, cut short by the hold's end
    book.end_hold(busy)
    assert not book.held_back(first) and book.is_resuming(busy)


class Inbox(pykka.ThreadingActor):
    """The timer's actor: what it is told goes to a queue the test reads."""

    def __init__(self, out: queue.Queue) -> None:
        super().__init__()
        self.out = out

    def on_receive(self, message):
        self.out.put(message)


@pytest.fixture
def timer():
    expired: queue.Queue = queue.Queue()
    ref = Inbox.start(expired)
    timer = ActorTimer(ref, "test-timer")
    yield timer, expired
    timer.stop()
    ref.stop()


def test_held_work_keeps_its_order_and_a_timer_bounds_each_hold(timer):
    timer, expired = timer
    held: HeldWork = HeldWork(0.05, timer, lambda proc, hold_id: (proc, hold_id))
    held.hold("p1", "op1")
    held.hold("p1", "op2")
    proc, hold_id = expired.get(timeout=5)
    assert proc == "p1" and held.is_current("p1", hold_id) and held.holding() == ["p1"]
    assert held.take("p1") == ["op1", "op2"] and held.take("p1") == []
    assert not held.is_current("p1", hold_id)  # a late expiry of an ended hold is ignored
    held.hold("p2", "op3")
    assert held.take("p2") == ["op3"]  # ended before its time: the timer never tells
    with pytest.raises(queue.Empty):
        expired.get(timeout=0.2)
