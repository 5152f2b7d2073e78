"""``orbitdockd --ws``: the bridge as a child process the daemon keeps running.

The bridge stays a separate process (a ZeroMQ client like any other: a bug in it cannot
take the daemon down); this thread only starts it, restarts it ``ws.restart_backoff_s``
after it dies, and stops it (SIGTERM, then SIGKILL) when the daemon stops.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

from orbitdock.config import Config
from orbitdock.paths import layout

logger = logging.getLogger("orbitdockd.ws")


class BridgeChild:
    def __init__(self, cfg: Config, config_file: str | None = None):
        self.cfg = cfg
        self.argv = [sys.executable, "-m", "orbitdock.ws",
                     "--home", str(layout(cfg).data_dir),
                     *(["--config", config_file] if config_file else [])]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ws-bridge-child", daemon=True)
        self.proc: subprocess.Popen | None = None  # owned by the thread, read by stop()
        self.starts = 0

    def start(self) -> "BridgeChild":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         env=dict(os.environ, ORBITDOCK_LOGGING__STDERR="false"))
            self.starts += 1
            logger.info("orbitdock-ws started", extra={"pid": self.proc.pid,
                                                       "starts": self.starts})
            code = self.proc.wait()
            if self._stop.is_set():
                return
            logger.warning("orbitdock-ws exited with %s; restarting in %.1fs", code,
                           self.cfg.ws.restart_backoff_s)
            self._stop.wait(self.cfg.ws.restart_backoff_s)

    def stop(self) -> None:
        self._stop.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.cfg.ws.stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(self.cfg.ws.stop_timeout_s)
        self._thread.join(self.cfg.ws.stop_timeout_s)
