"""Private by default: what the daemon writes is readable by its user only.

The database holds every prompt, reply and command output of every session, and the
log names them, so the daemon runs with a umask of 077 (data dir 0700, files 0600;
SQLite gives the WAL and SHM files the database file's mode) and tightens files an
earlier version left more open. Child processes get the user's own umask back: codex
writes files into the user's projects, which must keep their usual modes.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from orbitdock.paths import Layout

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
_user_umask = -1  # the umask the process started with; -1 = never restricted


def restrict_umask() -> None:
    """Call first thing in the daemon's main, before any file or directory is created."""
    global _user_umask
    previous = os.umask(PRIVATE_UMASK)
    if _user_umask == -1:
        _user_umask = previous


def child_umask() -> int:
    """``subprocess.Popen(umask=...)`` for children: the user's own umask (-1 = unchanged)."""
    return _user_umask


def private_paths(lay: Layout) -> list[Path]:
    """The files with the user's data in them: the database and its WAL/SHM, the log."""
    paths = [lay.db_path, lay.db_path.with_name(lay.db_path.name + "-wal"),
             lay.db_path.with_name(lay.db_path.name + "-shm"), lay.runtime_file, lay.lock_file]
    if lay.log_path is not None:
        paths.append(lay.log_path)
    return paths


def tighten_existing(lay: Layout) -> None:
    """chmod 0600 the data files (and 0700 the log dir) that exist with wider modes."""
    targets = [(p, 0o600) for p in private_paths(lay)]
    if lay.log_path is not None:
        targets.append((lay.log_path.parent, 0o700))
    for path, mode in targets:
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
            continue
        if stat.S_IMODE(st.st_mode) & ~mode:
            os.chmod(path, mode)
            logger.info("made %s private (mode %o -> %o)", path, stat.S_IMODE(st.st_mode), mode)
    data_mode = stat.S_IMODE(lay.data_dir.stat().st_mode)
    if data_mode & 0o077:
        logger.warning("the data dir %s is open to other users (mode %o); its files are "
                       "0600, but consider chmod 700", lay.data_dir, data_mode)
