"""ActorTimer: one thread tells one real pykka actor its scheduled messages, in deadline
order; a keyed message is pending at most once; cancel and stop drop what is pending."""

from __future__ import annotations

import queue
import threading
import time

import pykka
import pytest

from orbitdock.timers import ActorTimer

WAIT_S = 5.0


class Inbox(pykka.ThreadingActor):
    def __init__(self, out: queue.Queue) -> None:
        super().__init__()
        self.out = out

    def on_receive(self, message):
        self.out.put((message, time.monotonic()))


@pytest.fixture
def inbox():
    out: queue.Queue = queue.Queue()
    ref = Inbox.start(out)
    timers: list[ActorTimer] = []

    def timer() -> ActorTimer:
        timers.append(ActorTimer(ref, "test-timer"))
        return timers[-1]

    yield timer, out
    for t in timers:
        t.stop()
    ref.stop()


def nothing_more(out: queue.Queue, wait: float = 0.2) -> bool:
    try:
        out.get(timeout=wait)
    except queue.Empty:
        return True
    return False


def test_messages_come_in_deadline_order_not_schedule_order(inbox):
    make, out = inbox
    timer = make()
    t0 = time.monotonic()
    timer.after(0.15, "late")
    timer.after(0.05, "early")
    timer.after(0.0, "now")
    got = [out.get(timeout=WAIT_S) for _ in range(3)]
    assert [m for m, _ in got] == ["now", "early", "late"]
    assert got[2][1] - t0 >= 0.15


def test_a_key_is_pending_once_and_free_again_once_told(inbox):
    make, out = inbox
    timer = make()
    first = timer.after(0.05, "flush-1", key="flush")
    assert timer.after(0.01, "flush-2", key="flush") is first  # served by the pending one
    assert out.get(timeout=WAIT_S)[0] == "flush-1"
    assert nothing_more(out)
    timer.after(0.01, "flush-3", key="flush")
    assert out.get(timeout=WAIT_S)[0] == "flush-3"


def test_cancel_drops_a_pending_message_and_frees_its_key(inbox):
    make, out = inbox
    timer = make()
    pending = timer.after(0.05, "dropped", key="k")
    timer.cancel(pending)
    timer.after(0.1, "kept", key="k")
    assert out.get(timeout=WAIT_S)[0] == "kept"
    assert nothing_more(out)


def test_stop_drops_everything_pending_and_ends_the_thread(inbox):
    make, out = inbox
    timer = make()
    timer.after(0.05, "never")
    timer.stop()
    assert nothing_more(out)
    assert not [t for t in threading.enumerate() if t.name == "test-timer" and t.is_alive()]


def test_a_dead_actor_ends_the_thread_quietly():
    out: queue.Queue = queue.Queue()
    ref = Inbox.start(out)
    timer = ActorTimer(ref, "test-timer-dead")
    ref.stop()
    timer.after(0.0, "to nobody")
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and any(
            t.name == "test-timer-dead" for t in threading.enumerate()):
        time.sleep(0.01)
    assert not any(t.name == "test-timer-dead" for t in threading.enumerate())
    timer.stop()
