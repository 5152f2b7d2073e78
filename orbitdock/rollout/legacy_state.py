"""Import upstream OrbitDock's rollout positions (``codex-rollout-state.json``, version 1).

A person switching from upstream should not see every Codex session replayed
from the start. Upstream (and its Swift predecessor) kept, per rollout path,
the byte offset read so far and whether existing history was deliberately
skipped (``ignoreExisting``). Format (upstream-orbitdock.md §3.1)::

    {"version": 1, "files": {"<abs path>": {"offset": 123, "sessionId": "<uuid>|null",
        "projectPath": ..., "modelProvider": ..., "ignoreExisting": false}}}

Upstream persisted the file size even when a partial line was buffered, so an
offset may sit inside a line; the reader re-aligns to the next line start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson

from orbitdock.store.commands import SaveRolloutOffset

logger = logging.getLogger(__name__)

LEGACY_FILE = "codex-rollout-state.json"
SUPPORTED_VERSION = 1


def load_legacy_offsets(state_file: str | os.PathLike[str]) -> list[SaveRolloutOffset]:
    """SaveRolloutOffset commands for every usable entry; [] if absent or unreadable."""
    path = Path(state_file)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        logger.warning("cannot read legacy rollout state %s: %s", path, exc)
        return []
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        logger.warning("legacy rollout state %s is not JSON: %s", path, exc)
        return []
    if not isinstance(doc, dict) or doc.get("version") != SUPPORTED_VERSION:
        logger.warning("legacy rollout state %s has unsupported version %r", path,
                       doc.get("version") if isinstance(doc, dict) else None)
        return []
    files = doc.get("files")
    if not isinstance(files, dict):
        return []
    out = []
    for file_path, entry in files.items():
        cmd = _entry(file_path, entry)
        if cmd is None:
            logger.warning("legacy rollout state: skipping bad entry for %r", file_path)
        else:
            out.append(cmd)
    logger.info("imported %d rollout offsets from %s", len(out), path)
    return out


def _entry(file_path: Any, entry: Any) -> SaveRolloutOffset | None:
    if not (isinstance(file_path, str) and os.path.isabs(file_path) and isinstance(entry, dict)):
        return None
    offset = entry.get("offset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return None
    session_id = entry.get("sessionId")
    size = mtime = None
    try:
        st = os.stat(file_path)
    except OSError:
        pass  # keep the position anyway: the file may be on an unmounted volume
    else:
        size, mtime = st.st_size, st.st_mtime
    return SaveRolloutOffset(
        path=file_path, offset=offset,
        session_id=session_id if isinstance(session_id, str) and session_id else None,
        size=size, mtime=mtime, ignore_existing=entry.get("ignoreExisting") is True)
