"""orbitdockd: load config, start the actors in dependency order, stop them in reverse.

Start: persistence -> supervisor (restores sessions) -> gateway -> watcher.
Stop (SIGTERM/SIGINT): watcher (stop producing) -> supervisor (sessions) ->
gateway (final replies and events go out) -> persistence (flush last).
Signal handlers only set a flag; the main thread does the work (uvicorn's rule).
A second SIGINT forces an immediate exit; SIGUSR1 logs every thread's stack.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid
from typing import Any

import click
import pykka
from pykka.debug import log_thread_tracebacks
import zmq

from orbitdock import __version__, logs
from orbitdock.config import Config, ConfigError, load
from orbitdock.paths import Layout, layout, prepare_dirs, read_runtime_file, write_runtime_file
from orbitdock.transport import inproc_endpoint

logger = logging.getLogger("orbitdockd")


class Daemon:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.layout: Layout = layout(cfg)
        self.epoch = uuid.uuid4().hex[:16]
        self.ctx = zmq.Context()
        self.refs: dict[str, pykka.ActorRef] = {}
        self.extras: list[Any] = []  # things with a stop() started for the demo etc.
        self.providers: dict[str, Any] = {}  # name -> Provider (actors/providers.py)
        self.stop_event = threading.Event()
        self.signals = 0

    def start(self) -> None:
        from actors.gateway import GatewayActor
        from actors.persistence import PersistenceActor
        from actors.providers import REGISTRY, start_providers
        from actors.supervisor import SupervisorActor

        prepare_dirs(self.layout)
        inproc = inproc_endpoint(self.epoch)
        self.refs["persistence"] = PersistenceActor.start(
            self.cfg, self.layout.db_path, ctx=self.ctx, inproc_endpoint=inproc)
        self.providers = start_providers(self.cfg, self.layout)
        self.refs["supervisor"] = SupervisorActor.start(
            self.cfg, ctx=self.ctx, inproc_endpoint=inproc, epoch=self.epoch,
            persistence=self.refs["persistence"], providers=self.providers,
            registered=tuple(REGISTRY))
        self.refs["gateway"] = GatewayActor.start(
            self.cfg, self.ctx, epoch=self.epoch,
            request_endpoint=self.layout.request_endpoint,
            event_endpoint=self.layout.event_endpoint, inproc_endpoint=inproc,
            supervisor=self.refs["supervisor"])
        self._start_watcher()
        self._check_started()
        write_runtime_file(self.layout, {
            "pid": os.getpid(), "epoch": self.epoch, "version": __version__,
            "request_endpoint": self.layout.request_endpoint,
            "event_endpoint": self.layout.event_endpoint, "started_at": time.time()})
        logger.info("orbitdockd %s up", __version__, extra={
            "epoch": self.epoch, "data_dir": str(self.layout.data_dir),
            "request_endpoint": self.layout.request_endpoint,
            "event_endpoint": self.layout.event_endpoint})

    def _check_started(self) -> None:
        """pykka only logs a failing on_start; make start-up fail loudly instead."""
        timeout = self.cfg.persistence.ask_timeout_s
        self.refs["persistence"].proxy().stats().get(timeout=timeout)
        self.refs["supervisor"].ask("count", timeout=timeout)
        for name, ref in self.refs.items():
            if not ref.is_alive():
                raise RuntimeError(f"{name} actor failed to start (see the log)")

    def _start_watcher(self) -> None:
        from actors.messages import AttachWatcher

        if not self.cfg.watcher.enabled:
            return
        try:
            from actors.watcher import WatcherActor
        except ImportError:
            logger.warning("rollout watcher not available in this build")
            return
        self.refs["watcher"] = WatcherActor.start(
            self.cfg, self.layout.codex_home, self.refs["supervisor"], self.refs["persistence"],
            ctx=self.ctx, inproc_endpoint=inproc_endpoint(self.epoch))
        self.refs["supervisor"].tell(AttachWatcher(self.refs["watcher"]))

    def stop(self) -> None:
        timeout = self.cfg.sessions.stop_timeout_s
        for name in ("watcher", "supervisor", "gateway", "persistence"):
            ref = self.refs.pop(name, None)
            if ref is None:
                continue
            try:
                ref.stop(timeout=timeout)
            except (pykka.Timeout, pykka.ActorDeadError):
                logger.error("actor %s did not stop within %.1fs", name, timeout)
            if name == "supervisor":
                for provider in reversed(list(self.providers.values())):
                    provider.stop()
                for extra in reversed(self.extras):
                    extra.stop()
        leftover = pykka.ActorRegistry.get_all()
        if leftover:
            logger.warning("stopping %d leftover actors", len(leftover))
            pykka.ActorRegistry.stop_all(timeout=timeout)
        info = read_runtime_file(self.layout)
        if info and info.get("pid") == os.getpid():  # never remove a successor's file
            try:
                self.layout.runtime_file.unlink()
            except OSError:
                pass
        self.ctx.term()
        logger.info("orbitdockd stopped")

    # ------------------------------------------------------------ signals
    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals += 1
        if self.signals > 1 and signum == signal.SIGINT:
            os._exit(130)  # a second Ctrl-C: the user wants out now
        self.stop_event.set()

    def run_forever(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGUSR1, lambda *_: log_thread_tracebacks())
        while not self.stop_event.wait(1.0):
            pass


@click.command(context_settings={"auto_envvar_prefix": "ORBITDOCKD"})
@click.option("--home", "data_dir", help="Data dir (default $ORBITDOCK_HOME or ~/.orbitdock).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Config file (default <data dir>/orbitdock.toml when it exists).")
@click.option("--runtime-dir", help="Dir for ipc sockets (created 0700).")
@click.option("--request-endpoint", help="ROUTER endpoint, e.g. tcp://127.0.0.1:4710.")
@click.option("--event-endpoint", help="XPUB endpoint, e.g. tcp://127.0.0.1:4711.")
@click.option("--codex-home", help="CODEX_HOME to watch and to run app-server with.")
@click.option("--no-watcher", is_flag=True, help="Do not tail CODEX_HOME rollouts.")
@click.option("--demo", is_flag=True, help="Also start the scripted model and a demo session.")
@click.option("--ws", "with_ws", is_flag=True,
              help="Also run orbitdock-ws (WebSocket bridge + dashboard) as a supervised child.")
@click.option("--log-level", help="DEBUG, INFO, WARNING ...")
@click.version_option(__version__)
def main(data_dir, config_file, runtime_dir, request_endpoint, event_endpoint, codex_home,
         no_watcher, demo, with_ws, log_level) -> None:
    """Run the orbitdock daemon in the foreground."""
    overrides = {
        "paths.data_dir": data_dir, "paths.runtime_dir": runtime_dir,
        "paths.codex_home": codex_home, "gateway.request_endpoint": request_endpoint,
        "gateway.event_endpoint": event_endpoint, "logging.level": log_level,
        "watcher.enabled": False if no_watcher else None,
    }
    try:
        cfg = load(config_file, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    lay = layout(cfg)
    prepare_dirs(lay)
    logs.setup(cfg.logging.level, lay.log_path, cfg.logging.stderr)
    demo_env = None
    if demo:
        from actors.demo import prepare_demo

        demo_env = prepare_demo(cfg, lay)  # before start: it sets the codex home
    daemon = Daemon(cfg)
    if demo_env is not None:
        daemon.extras.append(demo_env)
    try:
        daemon.start()
    except Exception as exc:
        logger.exception("start-up failed")
        daemon.stop()
        raise click.ClickException(f"start-up failed: {exc}") from exc
    try:
        if demo_env is not None:
            from actors.demo import start_demo
            from orbitdock.client import Endpoints

            start_demo(Endpoints(daemon.layout.request_endpoint, daemon.layout.event_endpoint),
                       demo_env, cfg.codex.start_timeout_s)
        if with_ws:
            from orbitdock.ws.child import BridgeChild

            daemon.extras.append(BridgeChild(cfg, config_file).start())
        daemon.run_forever()
    finally:
        daemon.stop()


if __name__ == "__main__":
    sys.exit(main())
