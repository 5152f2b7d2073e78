"""The two threads that wake the WatcherActor, and the messages they send it.

The watchdog Observer thread (``FsEventHandler``) and one deadline thread
(``Timer``) exist only to ``tell`` the actor: neither reads nor writes its
state, so the actor stays the single owner of every reader, parser and
counter. Filesystem events are hints (they coalesce and inotify drops them on
overflow); the actor always reads a file from its offset to its end.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import pykka
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

# What the observer reports; deletions and attribute changes never mean new lines.
EVENT_KINDS = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, DirCreatedEvent, DirMovedEvent]


@dataclass(frozen=True, slots=True)
class Hint:
    path: str  # a file (or a directory) changed or appeared


@dataclass(frozen=True, slots=True)
class Moved:
    src: str
    dest: str


@dataclass(frozen=True, slots=True)
class Tick:
    kind: str  # flush | sweep | continue | idle
    key: str = ""  # the file (continue) or session (idle) the tick is for


class Timer:
    """One thread that tells the actor scheduled messages; it never touches actor state."""

    def __init__(self, ref: pykka.ActorRef, name: str = "watcher-timer") -> None:
        self._ref, self._heap, self._seq = ref, [], itertools.count()
        self._cond, self._stopped = threading.Condition(), False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def schedule(self, delay: float, message: Any) -> None:
        with self._cond:
            deadline = time.monotonic() + max(0.0, delay)
            heapq.heappush(self._heap, (deadline, next(self._seq), message))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                message = heapq.heappop(self._heap)[2]
            try:
                self._ref.tell(message)
            except pykka.ActorDeadError:
                return


class FsEventHandler(FileSystemEventHandler):
    """Runs on the Observer thread: turns fs events into hints and nothing else."""

    def __init__(self, ref: pykka.ActorRef) -> None:
        self._ref = ref

    def on_any_event(self, event: FileSystemEvent) -> None:
        src, dest = os.fsdecode(event.src_path), os.fsdecode(event.dest_path or b"")
        try:
            if event.is_directory:
                self._ref.tell(Hint(dest or src))
            elif event.event_type == "moved":
                self._ref.tell(Moved(src, dest))
            elif src.endswith(".jsonl"):
                self._ref.tell(Hint(src))
        except pykka.ActorDeadError:
            pass  # stopping: the observer is being torn down too
