"""How app-servers are started, and their CPU priority: sessions' work yields to recovery.

An app-server serving sessions (and every command its sessions run) has the nice
increment ``codex.session_nice``; an idle spare, and a process resuming a dead
process's sessions, keeps the daemon's own priority until those resumes are done.
On a saturated machine a resume costs 50-75 ms of CPU (more with codex's shell
snapshot) but waits seconds for a core behind every other session's work; with the
others niced it gets a larger share, and the daemon itself stays responsive while
codex saturates the cores (docs/RELIABILITY.md has the measurements).

Nice values only weigh threads of one session against each other: Linux's autogroup
scheduler (on by default) first splits the CPU evenly between sessions. So by default
(``codex.shared_session``) app-servers stay in the daemon's session, each still its own
process group, where the daemon and a recovering process outweigh the niced sessions'
work. With a session each, every app-server would get an equal share whatever its nice
value, and ``session_nice`` would change nothing between processes. The trade-off is
measured in docs/RELIABILITY.md: with codex saturating the cores, approvals and deltas
reach clients with a 10-50x lower tail and a killed process's sessions resume about
twice as fast, while codex completes 15-35% fewer turns and 200 sessions created at once
are set up 15-25 s later. Commands codex runs in its sandbox start sessions of their own
either way.

Only ever *raising* nice values needs no privilege, so a process is started at the
lower value when it may recover, and raised once it serves sessions. Linux keeps a
nice value per thread, so raising a running process walks its threads (and those of
the commands it started).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys

import psutil

logger = logging.getLogger(__name__)


AUTOGROUP_FLAG = "/proc/sys/kernel/sched_autogroup_enabled"


def nice_is_inert(session_nice: int, shared_session: bool, flag: str = AUTOGROUP_FLAG) -> bool:
    """True when ``session_nice`` cannot weigh app-servers against each other or the daemon:
    each leads a session of its own and the kernel schedules sessions as groups."""
    if session_nice <= 0 or shared_session:
        return False
    try:
        with open(flag) as f:
            return f.read().strip() == "1"
    except OSError:  # no autogroup (another OS, or a kernel built without it)
        return False


def app_server_argv(binary: str, config_overrides: str, increment: int) -> list[str]:
    """``binary app-server`` with the ``-c`` overrides of ``codex.config_overrides``, niced."""
    overrides = [arg for item in config_overrides.split(";") if item.strip()
                 for arg in ("-c", item.strip())]
    return nice_argv([binary, "app-server", *overrides], increment)


def nice_argv(argv: list[str], increment: int) -> list[str]:
    """``argv`` run under ``nice -n increment`` (unchanged for 0, or without ``nice``)."""
    if increment <= 0:
        return argv
    nice = shutil.which("nice")
    if nice is None:
        logger.warning("no nice(1) on PATH: app-servers run at the daemon's priority")
        return argv
    return [nice, "-n", str(increment), *argv]


def raise_nice(pid: int, increment: int) -> int:
    """Give ``pid``, its threads and its descendants ``increment`` more than ours.

    Returns how many threads or processes changed; never lowers a value (that needs
    privileges), and a process that is gone is skipped.
    """
    target = min(os.getpriority(os.PRIO_PROCESS, 0) + increment, 19)
    changed = 0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            ids = [t.id for t in proc.threads()] if sys.platform == "linux" else [proc.pid]
        except psutil.Error:
            continue
        for tid in ids:
            try:
                if os.getpriority(os.PRIO_PROCESS, tid) < target:
                    os.setpriority(os.PRIO_PROCESS, tid, target)
                    changed += 1
            except OSError:
                continue  # exited meanwhile
    return changed
