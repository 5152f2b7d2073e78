"""Shared helpers for the benchmarks: throw-away daemons, percentiles, medians, tables.

Not a test and not part of the package. Everything here is bounded in time:
a daemon that does not come up (or go down) within its timeout is killed.
"""

from __future__ import annotations

import atexit
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0

_LIVE: "set[BenchDaemon]" = set()  # started and not yet stopped: stopped at exit


@atexit.register
def _stop_leftovers() -> None:
    for daemon in list(_LIVE):
        daemon.stop()


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
class BenchDaemon:
    """One ``python -m actors.daemon --no-watcher`` on a throw-away ORBITDOCK_HOME under /tmp."""

    def __init__(self, env: dict[str, str] | None = None, cmd: list[str] | None = None,
                 watcher: bool = False):
        """``env``: extra environment (e.g. ORBITDOCK_GATEWAY__SUBSCRIBER_HWM); ``cmd``: the
        daemon command instead of ``python -m actors.daemon`` (for A/B runs of a patch);
        ``watcher``: run the rollout watcher (on the CODEX_HOME given in ``env``)."""
        self.watcher = watcher
        self.home = Path(tempfile.mkdtemp(prefix="orbitdock-bench-"))
        self.env = dict(env or {})
        self.cmd = list(cmd or [sys.executable, "-m", "actors.daemon"])
        self.proc: subprocess.Popen | None = None
        self.endpoints = None

    @property
    def config(self):
        from orbitdock.config import load
        return load(env={"ORBITDOCK_HOME": str(self.home), **self.env})

    def start(self) -> "BenchDaemon":
        from orbitdock.client import Client, find_daemon
        from orbitdock.protocol import messages as m

        env = dict(os.environ, **self.env, ORBITDOCK_HOME=str(self.home))
        env.setdefault("ORBITDOCK_LOGGING__STDERR", "false")
        self._stderr = open(self.home / "daemon.stderr", "wb")
        self.proc = subprocess.Popen(
            [*self.cmd, *([] if self.watcher else ["--no-watcher"])],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("orbitdockd exited at start: "
                                   + (self.home / "daemon.stderr").read_text()[-2000:])
            try:
                endpoints = find_daemon(self.config)
                if endpoints.pid == self.proc.pid:
                    with Client(endpoints, timeout=1.0) as client:
                        client.request(m.GetStatus())
                    self.endpoints = endpoints
                    return self
            except Exception:  # not up yet
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("orbitdockd did not come up in time")

    def stop(self, keep_home: bool = False) -> None:
        """SIGTERM (then SIGKILL), remove the runtime dir and, unless ``keep_home``, the home."""
        from orbitdock.config import load
        from orbitdock.paths import layout

        _LIVE.discard(self)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        try:
            runtime_dir = layout(load(env={"ORBITDOCK_HOME": str(self.home)})).runtime_dir
            shutil.rmtree(runtime_dir, ignore_errors=True)
        except Exception:
            pass
        if getattr(self, "_stderr", None):
            self._stderr.close()
        if keep_home:
            print(f"bench: daemon home kept for inspection: {self.home}", file=sys.stderr)
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "BenchDaemon":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def pipelined(client, requests: list, timeout: float, spread_s: float = 0.0) -> dict[str, Any]:
    """Send every request without waiting, then collect the replies (by request id).

    ``spread_s`` > 0 spaces the sends evenly over that many seconds (staggered starts).
    Returns {request id: reply}; raises TimeoutError if some reply is missing at the deadline.
    """
    ids = []
    t0 = time.monotonic()
    for i, r in enumerate(requests):
        if spread_s > 0:
            delay = t0 + i * spread_s / len(requests) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        ids.append(client.send(r))
    want = set(ids)
    replies: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(want)} of {len(ids)} replies missing after {timeout:.0f}s")
        reply = client.recv_reply(left)
        if reply is not None and reply.id in want:
            want.discard(reply.id)
            replies[reply.id] = reply
    return {i: replies[i] for i in ids}
