"""Shared helpers for the benchmarks: throw-away daemons, percentiles, medians, tables.

Not a test and not part of the package. Everything here is bounded in time:
a daemon that does not come up (or go down) within its timeout is killed.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import signal
import statistics
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so finally blocks (and the atexit stop) run."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# ------------------------------------------------------------------ numbers
# One implementation of the statistics, shared with the load tool.
from orbitdock.load.report import percentile, summarize  # noqa: E402,F401


def median(values: Iterable[float]) -> float:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vals) if vals else math.nan


def fmt_ms(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    ms = seconds * 1000.0
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def fmt_rate(per_s: float) -> str:
    if per_s is None or math.isnan(per_s):
        return "—"
    return f"{per_s / 1000:.1f}k" if per_s >= 1000 else f"{per_s:.0f}"


def fmt_ratio(x: float) -> str:
    if x is None or math.isnan(x) or math.isinf(x):
        return "—"
    return f"{x:.2f}×" if x < 10 else f"{x:.0f}×"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def machine_line() -> str:
    try:
        load1, load5, _ = os.getloadavg()
        load = f"load avg {load1:.2f}/{load5:.2f} at start"
    except OSError:
        load = ""
    from importlib.metadata import version

    import zmq
    return (f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}, "
            f"msgspec {version('msgspec')}, pykka {version('pykka')}, apsw {version('apsw')}; "
            f"{load}")


def command_line() -> str:
    exe = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) \
        else sys.executable
    script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO)
    return " ".join(shlex.quote(a) for a in [exe, script, *sys.argv[1:]])


# ------------------------------------------------------------------ daemon
# One daemon harness and one pipelining helper, shared with the tests and the load tool.
from orbitdock.harness import DaemonProcess, pipelined  # noqa: E402,F401


def bench_daemon(env: dict[str, str] | None = None, cmd: list[str] | None = None,
                 watcher: bool = False) -> DaemonProcess:
    """A daemon on a throw-away ORBITDOCK_HOME under the temp dir (not started yet).

    ``env``: extra environment (e.g. ORBITDOCK_GATEWAY__SUBSCRIBER_HWM); ``cmd``: the
    daemon command instead of ``python -m actors.daemon`` (for A/B runs of a patch);
    ``watcher``: run the rollout watcher (on the CODEX_HOME given in ``env``).
    """
    return DaemonProcess(env=env, cmd=cmd, watcher=watcher, home_prefix="orbitdock-bench-")
