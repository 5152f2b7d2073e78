"""orbitdockd: load config, start the actors in dependency order, stop them in reverse.

Before any actor: umask 077, the config checked (exit 2), the home locked (exit 1 when
another daemon has it), its files made private, dead daemons' runtime dirs removed.
Start: persistence -> supervisor (restores the sessions not ended) -> gateway (given
the list from the database) -> watcher.
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
from pathlib import Path
from typing import Any

import click
import pykka
from pykka.debug import log_thread_tracebacks
import zmq

from orbitdock import __version__, logs, privacy, runtime_dirs, threads
from orbitdock.config import Config, ConfigError, load_with_origins, render, validate
from orbitdock.locks import HeldLock, LockHeld, acquire
from orbitdock.paths import (DEMO_HOME, Layout, layout, prepare_dirs, read_runtime_file,
                             write_runtime_file)
from orbitdock.transport import inproc_endpoint

logger = logging.getLogger("orbitdockd")

EXIT_ALREADY_RUNNING = 1  # another daemon holds this data dir's lock
EXIT_BAD_CONFIG = 2  # a config value, endpoint or flag was refused before anything started
EXIT_BAD_STORAGE = 2  # the data dir or database cannot be used (damaged, newer, unwritable)


class Daemon:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.layout: Layout = layout(cfg)
        self.epoch = uuid.uuid4().hex[:16]
        self.ctx = zmq.Context()
        # Set, not assumed: only the gateway's and clients' sockets count against it now.
        self.ctx.set(zmq.MAX_SOCKETS, cfg.gateway.zmq_max_sockets)
        self.refs: dict[str, pykka.ActorRef] = {}
        self.extras: list[Any] = []  # things with a stop() started for the demo etc.
        self.providers: dict[str, Any] = {}  # name -> Provider (actors/providers.py)
        self.stop_event = threading.Event()
        self.signals = 0
        self.home_lock: HeldLock | None = None  # taken by main before anything is touched
        self.runtime_lock: HeldLock | None = None  # marks the runtime dir as in use
        self.exit_code = 0  # set when a long-lived thread dies (orbitdock.threads)
        self._previous_excepthook: Any = None

    def start(self) -> None:
        from actors.gateway import GatewayActor
        from actors.persistence import PersistenceActor
        from actors.providers import REGISTRY, start_providers
        from actors.supervisor import SupervisorActor

        self._guard_threads()
        prepare_dirs(self.layout)
        inproc = inproc_endpoint(self.epoch)
        self.refs["persistence"] = PersistenceActor.start(
            self.cfg, self.layout.db_path, ctx=self.ctx, inproc_endpoint=inproc)
        self.providers = start_providers(self.cfg, self.layout)
        self.refs["supervisor"] = SupervisorActor.start(
            self.cfg, ctx=self.ctx, inproc_endpoint=inproc, epoch=self.epoch,
            persistence=self.refs["persistence"], providers=self.providers,
            registered=tuple(REGISTRY))
        for provider in self.providers.values():  # before the gateway takes requests
            provider.attach(self.refs["supervisor"], self.refs["persistence"])
        # The list comes from the database's rows, not from actors (most have none).
        summaries = self.refs["persistence"].proxy().load_summaries().get(
            timeout=self.cfg.persistence.ask_timeout_s)
        self.refs["gateway"] = GatewayActor.start(
            self.cfg, self.ctx, epoch=self.epoch,
            request_endpoint=self.layout.request_endpoint,
            event_endpoint=self.layout.event_endpoint, inproc_endpoint=inproc,
            supervisor=self.refs["supervisor"], summaries=summaries)
        self._start_watcher()
        self._check_started()
        write_runtime_file(self.layout, {
            "pid": os.getpid(), "epoch": self.epoch, "version": __version__,
            "request_endpoint": self.layout.request_endpoint,
            "event_endpoint": self.layout.event_endpoint, "started_at": time.time(),
            # read by orbitdock-hook, which imports no config (orbitdock.claude.forward)
            "claude": {"hook_timeout_s": self.cfg.claude.hook_timeout_s,
                       "permission_wait_s": self.cfg.claude.permission_wait_s,
                       "max_frame_bytes": self.cfg.gateway.max_frame_bytes}})
        logger.info("orbitdockd %s up", __version__, extra={
            "epoch": self.epoch, "data_dir": str(self.layout.data_dir),
            "request_endpoint": self.layout.request_endpoint,
            "event_endpoint": self.layout.event_endpoint})

    def _guard_threads(self) -> None:
        """A long-lived thread that dies stops the daemon with a non-zero exit code."""
        from actors.gateway import GatewayLoop
        from orbitdock.store.schema import Checkpointer

        # (Timer threads, app-server threads: marked long-lived where they are made.)
        long_lived: tuple[type[threading.Thread], ...] = (GatewayLoop, Checkpointer)
        try:
            from watchdog.utils import BaseThread  # the watcher's observer and its emitters

            long_lived += (BaseThread,)
        except ImportError:
            pass
        self._previous_excepthook = threads.install_excepthook(self._on_thread_failure,
                                                               long_lived)

    def _on_thread_failure(self, name: str, exc: BaseException | None) -> None:
        self.exit_code = threads.EXIT_THREAD_FAILED
        self.stop_event.set()  # the main thread stops everything, as for SIGTERM

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
            if name == "supervisor":  # what providers hold back reaches it before it stops
                for provider in self.providers.values():
                    provider.quiesce()
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
        if self.runtime_lock is not None:
            runtime_dirs.remove(self.layout, self.runtime_lock)
            self.runtime_lock = None
        if self.home_lock is not None:
            self.home_lock.release()
            self.home_lock = None
        if self._previous_excepthook is not None:  # for a daemon run inside another program
            threading.excepthook = self._previous_excepthook
            self._previous_excepthook = None
        logger.info("orbitdockd stopped", extra={"exit_code": self.exit_code})

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


@click.command(context_settings={"auto_envvar_prefix": "ORBITDOCKD",
                                 "help_option_names": ["-h", "--help"]})
@click.option("--home", "data_dir", help="Data dir (default $ORBITDOCK_HOME or ~/.orbitdock).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Config file (default <data dir>/orbitdock.toml when it exists).")
@click.option("--runtime-dir", help="Dir for ipc sockets (created 0700).")
@click.option("--request-endpoint", help="ROUTER endpoint, e.g. tcp://127.0.0.1:4710.")
@click.option("--event-endpoint", help="XPUB endpoint, e.g. tcp://127.0.0.1:4711.")
@click.option("--codex-home", help="CODEX_HOME to watch and to run app-server with.")
@click.option("--no-watcher", is_flag=True, help="Do not tail CODEX_HOME rollouts.")
@click.option("--demo", is_flag=True, help="Also start the scripted model and a demo session "
              "(on <data dir>/demo, apart from your own sessions).")
@click.option("--ws", "with_ws", is_flag=True,
              help="Also run orbitdock-ws (WebSocket bridge + dashboard) as a supervised child.")
@click.option("--log-level", help="DEBUG, INFO, WARNING ...")
@click.option("--log-format", type=click.Choice(logs.STDERR_FORMATS),
              help="stderr lines: text for people, json lines, or auto (text on a terminal).")
@click.option("--recover", is_flag=True,
              help="Move a damaged database aside (orbitdock.db.damaged-<time>), rebuild "
              "what can be read into a fresh one, then run.")
@click.option("--print-config", is_flag=True,
              help="Print the effective configuration, each value with its source, and exit.")
@click.version_option(__version__)
def main(data_dir, config_file, runtime_dir, request_endpoint, event_endpoint, codex_home,
         no_watcher, demo, with_ws, log_level, log_format, recover, print_config) -> None:
    """Run the orbitdock daemon in the foreground."""
    from orbitdock import sd_notify

    privacy.restrict_umask()  # before anything is created: the data is the user's alone
    overrides = {
        "paths.data_dir": data_dir, "paths.runtime_dir": runtime_dir,
        "paths.codex_home": codex_home, "gateway.request_endpoint": request_endpoint,
        "gateway.event_endpoint": event_endpoint, "logging.level": log_level,
        "logging.stderr_format": log_format,
        "watcher.enabled": False if no_watcher else None,
    }
    cfg, origins = _checked_config(config_file, overrides, demo)
    if print_config:
        click.echo(render(cfg, origins), nl=False)
        return
    lay = layout(cfg)
    home_lock, runtime_lock = _claim(lay, cfg)
    _check_storage(lay, cfg, recover)
    demo_env = None
    if demo:
        from actors.demo import prepare_demo

        demo_env = prepare_demo(cfg, lay)  # before start: it sets the codex home
    daemon = Daemon(cfg)
    daemon.home_lock, daemon.runtime_lock = home_lock, runtime_lock
    if demo_env is not None:
        daemon.extras.append(demo_env)
    try:
        daemon.start()
    except Exception as exc:
        logger.exception("start-up failed")
        daemon.stop()
        raise click.ClickException(f"start-up failed: {exc}") from exc
    sd_notify.notify(f"READY=1\nMAINPID={os.getpid()}")  # under systemd Type=notify
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
        sd_notify.notify("STOPPING=1")
        daemon.stop()
    if daemon.exit_code:
        sys.exit(daemon.exit_code)


def _checked_config(config_file: str | None, overrides: dict[str, Any],
                    demo: bool) -> tuple[Config, dict[str, str]]:
    """The effective config and each value's source; exit 2 on a value we cannot run with."""
    try:
        cfg, origins = load_with_origins(config_file, overrides=overrides)
        validate(cfg, origins)
    except ConfigError as exc:
        click.echo(f"orbitdockd: bad configuration: {exc}", err=True)
        sys.exit(EXIT_BAD_CONFIG)
    if demo:  # the demo keeps its own home: its sessions never mix with the user's
        cfg.paths.data_dir = str(Path(cfg.paths.data_dir).expanduser() / DEMO_HOME)
        origins["paths.data_dir"] = (f"{origins.get('paths.data_dir', 'default')}, "
                                     f"+ /{DEMO_HOME} (--demo)")
    return cfg, origins


def _claim(lay: Layout, cfg: Config) -> tuple[HeldLock, HeldLock]:
    """Lock the home (exit 1 if another daemon has it), then set up its dirs and log,
    make its files private and remove runtime dirs of dead daemons; lock our own."""
    home_lock = _lock_home(lay)  # before the database, the sockets or the log are touched
    prepare_dirs(lay)
    try:
        logs.setup(cfg.logging.level, lay.log_path, cfg.logging.stderr,
                   stderr_format=cfg.logging.stderr_format, max_bytes=cfg.logging.max_bytes,
                   backups=cfg.logging.backups)
    except ValueError as exc:
        click.echo(f"orbitdockd: bad configuration: logging: {exc}", err=True)
        sys.exit(EXIT_BAD_CONFIG)
    if home_lock.previous_pid is not None:
        logger.warning("took over the lock of a previous orbitdockd (pid %d) that is gone",
                       home_lock.previous_pid, extra={"lock_file": str(lay.lock_file)})
    privacy.tighten_existing(lay)
    runtime_dirs.sweep_stale(lay.runtime_dir)
    try:
        return home_lock, runtime_dirs.hold(lay, cfg.paths.runtime_dir_wait_s)
    except LockHeld as exc:
        click.echo(f"orbitdockd: the runtime dir {lay.runtime_dir} is in use by another "
                   f"orbitdockd (pid {exc.holder_pid or 'unknown'}); give this one its own "
                   "--runtime-dir", err=True)
        sys.exit(EXIT_ALREADY_RUNNING)


def _check_storage(lay: Layout, cfg: Config, recover: bool) -> None:
    """The database opens, is sound, has a schema we know and takes a write; else one
    line naming the file, the cause and the remedy, and exit 2. ``--recover`` first
    moves a damaged file aside and rebuilds what can be read."""
    from orbitdock.store import preflight

    try:
        preflight.check(lay.db_path, cfg.persistence)
    except preflight.StorageFault as fault:
        if not (recover and "damaged" in fault.cause):
            logger.error("start-up refused: %s", fault)
            click.echo(f"orbitdockd: {fault}", err=True)
            sys.exit(EXIT_BAD_STORAGE)
        report = preflight.recover(lay.db_path, cfg.persistence)
        logger.warning("recovered the damaged database: %s", report)
        click.echo(f"orbitdockd: moved the damaged database to {report['moved_to']}; "
                   f"rows recovered: {report['tables']}; unreadable: "
                   f"{report['skipped'] or 'none'}", err=True)
        _check_storage(lay, cfg, recover=False)


def _lock_home(lay: Layout) -> HeldLock:
    """One daemon per data dir: a second one would restore the same sessions, take over
    the sockets and, on exit, remove the first one's runtime file."""
    lay.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not os.access(lay.data_dir, os.W_OK):
        click.echo(f"orbitdockd: {lay.data_dir}: the data dir is not writable by this user; "
                   "make it writable (chmod u+w) or give another --home", err=True)
        sys.exit(EXIT_BAD_STORAGE)
    try:
        return acquire(lay.lock_file)
    except LockHeld as exc:
        holder = f"pid {exc.holder_pid}" if exc.holder_pid else "pid unknown"
        click.echo(f"orbitdockd: another orbitdockd ({holder}) is already running for "
                   f"{lay.data_dir}; stop it first or use another --home", err=True)
        sys.exit(EXIT_ALREADY_RUNNING)


if __name__ == "__main__":
    sys.exit(main())
