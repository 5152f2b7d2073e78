"""Finding rollout files in CODEX_HOME, and codex's thread-name index next to them.

Pure functions over the filesystem (no threads, no actor state): the watcher
calls them at start, on a sweep, when a directory appears and on import.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator

import orjson

INDEX_FILE = "session_index.jsonl"  # codex's thread names (thread/name/set, /rename)
_DAY_S = 86_400.0


def scan(roots: Iterable[str],
         skip: Callable[[str], bool] | None = None) -> list[tuple[str, int, float]]:
    """``(path, size, mtime)`` of each ``*.jsonl`` under ``roots`` that ``skip`` does not reject."""
    found = []
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                if name.endswith(".jsonl"):
                    path = os.path.join(dirpath, name)
                    if skip is not None and skip(path):
                        continue
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    found.append((path, st.st_size, st.st_mtime))
    return found


def recent_dirs(sessions_root: str, flat_roots: Iterable[str],
                now: float | None = None) -> list[str]:
    """Directories codex writes new rollouts into: today's and yesterday's day directories
    (local and UTC, since codex names them in local time) and the flat ``flat_roots``."""
    now = time.time() if now is None else now
    days = {time.strftime("%Y/%m/%d", fn(t)) for t in (now, now - _DAY_S)
            for fn in (time.localtime, time.gmtime)}
    return [d for d in (os.path.join(sessions_root, day) for day in sorted(days))
            if os.path.isdir(d)] + [r for r in flat_roots if os.path.isdir(r)]


def file_tag(path: str) -> str:
    """"_<uuid>" for the extra files thread/revert writes (their offsets restart at 0)."""
    stem = os.path.basename(path)[:-len(".jsonl")]
    return stem[stem.rindex("_"):] if "_" in stem[-40:] else ""


def moved_twin(path: str, known: Iterable[str]) -> str | None:
    """A known path with the same file name that is gone: the file was moved there."""
    name = os.path.basename(path)
    for candidate in known:
        if os.path.basename(candidate) == name and not os.path.exists(candidate):
            return candidate
    return None


def index_names(lines: Iterable[tuple[bytes, int]]) -> Iterator[tuple[str, str]]:
    """``(thread id, name)`` from session_index.jsonl lines; anything else is skipped."""
    for line, _end in lines:
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            continue
        tid, name = entry.get("id"), entry.get("thread_name")
        if isinstance(tid, str) and isinstance(name, str):
            yield tid, name
