"""The watchdog thread that wakes the WatcherActor, and the messages it and the
actor's timer (``orbitdock.timers.ActorTimer``) send it.

The watchdog Observer thread (``FsEventHandler``) and the timer thread exist only to
``tell`` the actor: neither reads nor writes its
state, so the actor stays the single owner of every reader, parser and
counter. Filesystem events are hints (they coalesce and inotify drops them on
overflow); the actor always reads a file from its offset to its end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
