"""WatcherActor: every terminal-started Codex session, live, from its rollout JSONL.

Threads: the watchdog Observer owns the inotify watch and a small timer thread
owns the deadlines; both only ``tell`` this actor, which owns every reader,
parser and counter. Filesystem events are hints: a file is always read from
its byte offset to its end, a burst of events for a file is read once after
``coalesce_ms`` (from the first event, so a file written continuously is still
read every window), and a size sweep every ``sweep_interval_s`` catches what
inotify dropped (queue overflow) or never saw.

Exactly-once: the offset of the last complete line travels in the same
RolloutBatch as the events derived from the lines before it, and the session
actor commits both in one transaction. Offsets of files that create no session
(our own app-server threads, lines before any session_meta) go straight to
persistence. Work per message is bounded (``batch_lines``), so a 600 MB import
streams in batches interleaved with live files and ``status()`` calls, and it
pauses while a downstream mailbox is deeper than ``backlog_limit``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pykka

from actors.messages import RolloutBatch, RolloutIdle
from orbitdock.connectors.events import NameUpdated, ProjectInfo, ThreadStarted
from orbitdock.rollout.fswatch import DirHint, FileHint, Moved, start_observer, stop_observer
from orbitdock.rollout.git import GitResolver
from orbitdock.rollout.legacy_state import LEGACY_FILE, load_legacy_offsets
from orbitdock.rollout.parser import RolloutParser
from orbitdock.rollout.reader import RolloutReader
from orbitdock.rollout.timer import Timer
from orbitdock.store.commands import SaveRolloutOffset

logger = logging.getLogger(__name__)
