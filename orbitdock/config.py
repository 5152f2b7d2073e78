"""One typed configuration object, loaded as defaults < file < env < flags.

Every timeout, interval and batch size the daemon uses lives here with its
default; ``conf/orbitdock.toml`` documents each key (a test keeps the two in
step). Unknown keys are rejected with a did-you-mean hint, like Mopidy's
schema, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "ORBITDOCK_"


class ConfigError(ValueError):
    """A config file, env variable or flag that does not fit the schema."""


@dataclass
class PathsConfig:
    data_dir: str = "~/.orbitdock"  # ORBITDOCK_HOME overrides; holds the DB and logs
    runtime_dir: str = ""  # "" = derived from data_dir: /tmp/orbitdock-<uid>-<hash>, mode 0700
    codex_home: str = ""  # "" = $CODEX_HOME or ~/.codex


@dataclass
class GatewayConfig:
    request_endpoint: str = ""  # "" = ipc://<runtime_dir>/request.sock (ROUTER)
    event_endpoint: str = ""  # "" = ipc://<runtime_dir>/events.sock (XPUB)
    max_frame_bytes: int = 1_048_576  # larger request frames get `too_large`
    disconnect_frame_bytes: int = 16_777_216  # libzmq drops a peer sending more (no reply)
    subscriber_hwm: int = 200_000  # events queued per subscriber (~40 MB) before gaps start
    inbound_hwm: int = 200_000  # actor -> gateway queue depth before actors block
    heartbeat_interval_s: float = 1.0  # PUB heartbeat period; carries the server epoch
    list_coalesce_ms: float = 50.0  # session-list upserts are coalesced to this period
    drain_batch: int = 1000  # frames taken per socket per loop turn: heartbeats never starve
    tail_heartbeats: int = 3  # heartbeats that repeat a quiet session's latest revision
    log_raw_bytes: int = 256  # how much of an undecodable frame is logged


@dataclass
class ClientConfig:
    request_timeout_s: float = 5.0  # a request with no reply by then raises RequestTimeout
    heartbeat_liveness: int = 3  # missed heartbeats before the server counts as lost
    welcome_timeout_s: float = 2.0  # wait for the XPUB welcome before asking for a snapshot
    receive_hwm: int = 100_000  # SUB-side queue; beyond it events drop and a gap is detected


@dataclass
class PersistenceConfig:
    db_file: str = "orbitdock.db"  # relative to data_dir
    batch_size: int = 50  # commands per transaction before a flush is forced
    flush_interval_ms: float = 100.0  # a partial batch is flushed after this long
    busy_timeout_ms: int = 5000  # SQLite busy timeout for every connection
    synchronous: str = "NORMAL"  # NORMAL survives kill -9; FULL also survives power loss
    checkpoint_interval_s: float = 0.5  # PASSIVE WAL checkpoint period (off the write path)
    idle_truncate_s: float = 5.0  # TRUNCATE checkpoint after this long with no writes
    ask_timeout_s: float = 10.0  # control-plane reads (restore, paging) wait at most this


@dataclass
class SessionsConfig:
    memory_messages: int = 200  # messages kept in an actor (and sent in a snapshot)
    tool_output_max_chars: int = 262_144  # a tool row keeps the tail of its output beyond this
    flush_max_events: int = 64  # backend events an actor with more queued handles before it publishes
    restore_limit: int = 5000  # sessions brought back into actors at start, newest first
    restart_max: int = 5  # crashes within restart_window_s before a session is left failed
    restart_window_s: float = 60.0  # the window restart_max counts crashes in
    restart_backoff_s: float = 0.2  # first restart delay; doubles per crash in the window
    stop_timeout_s: float = 5.0  # per-actor stop wait at shutdown
    scripted_wait_timeout_s: float = 600.0  # scripted backend: longest wait for a decision


@dataclass
class CodexConfig:
    binary: str = ""  # "" = the pinned binary under <project>/.tools, then PATH
    expected_version: str = "0.169.0"  # the daemon warns loudly when the binary differs
    threads_per_process: int = 16  # sessions hosted by one app-server process
    client_name: str = "orbitdock"  # clientInfo.name; becomes the rollout originator
    start_timeout_s: float = 20.0  # spawn -> initialize reply
    request_timeout_s: float = 30.0  # any JSON-RPC request to app-server
    resume_timeout_s: float = 30.0  # thread/resume after a crash or restart (slow under load)
    setups_in_flight: int = 4  # thread/start + thread/resume sent at once per app-server; more wait
    recovery_batch: int = 4  # a dead app-server's sessions resumed on any one process at most
    recovery_attempts: int = 3  # resumes cut by another process death, in a row, before giving up
    resume_hold_s: float = 0.0  # a recovered session's new work waits for its process's resumes
    recovery_on_busy: bool = False  # resume on processes serving sessions too (fewer, slower)
    spare_processes: int = 1  # idle app-servers kept started while sessions run, for recovery
    spare_delay_s: float = 2.0  # a used spare is replaced this long after, not amid the resumes
    config_overrides: str = ""  # "key=value;key=value": codex -c overrides for our app-servers only
    session_nice: int = 10  # app-servers serving sessions run this much nicer; recovery does not
    shared_session: bool = True  # app-servers in the daemon's session, where session_nice counts
    stop_timeout_s: float = 3.0  # close stdin, then SIGTERM, then SIGKILL
    login_shell_warn_ms: float = 50.0  # warn when the login shell starts slower (0: no check)
    login_shell_timeout_s: float = 10.0  # the check's longest wait for one shell start


@dataclass
class WatcherConfig:
    enabled: bool = True  # tail CODEX_HOME/sessions for terminal-started sessions
    follow_recent_minutes: float = 15.0  # files modified within this are followed at start
    inactivity_timeout_s: float = 120.0  # no new lines for this long -> session ended
    sweep_interval_s: float = 3.0  # size sweep that catches events inotify missed
    coalesce_ms: float = 2.0  # changes after a read are read together this much later
    read_chunk_bytes: int = 1_048_576  # bounded reads: memory independent of file size
    batch_lines: int = 500  # lines per RolloutBatch (and per actor message), so big imports stream
    max_line_bytes: int = 67_108_864  # a longer line is skipped (logged), bounding reader memory
    backlog_limit: int = 16  # a long import pauses while a downstream inbox holds more batches


@dataclass
class WsConfig:
    address: str = "127.0.0.1"  # orbitdock-ws bind address; off loopback a token is required
    port: int = 4000  # ws://<address>:<port>/ws, the dashboard at http://<address>:<port>/
    allowed_origins: str = ""  # extra Origins allowed, comma-separated (own origin, null: always)
    token_file: str = "ws-token"  # relative to data_dir; generated 0600 when bound off loopback
    max_frame_bytes: int = 1_048_576  # larger client frames are refused with `too_large`
    hard_frame_bytes: int = 4_194_304  # beyond this the connection is closed (1009), unread
    send_buffer_bytes: int = 8_388_608  # unread bytes queued for one client before it is dropped
    health_timeout_s: float = 2.0  # /health waits this long for the daemon's status
    daemon_retry_s: float = 1.0  # retry period while the daemon is not running
    ping_interval_s: float = 20.0  # WebSocket keepalive ping period
    close_timeout_s: float = 2.0  # a closing handshake waits at most this (then the TCP is cut)
    restart_backoff_s: float = 1.0  # orbitdockd --ws: delay before restarting a dead bridge
    stop_timeout_s: float = 5.0  # orbitdockd --ws: SIGTERM, then SIGKILL after this long
    max_field_chars: int = 16_000  # message text sent longer is cut (upstream's rule; 0: never)
    link_tick_ms: int = 100  # the daemon link's longest sleep (retries and expiries)
    send_timeout_ms: int = 50  # a request the daemon link cannot hand to ZeroMQ by then fails
    page_limit: int = 200  # most messages one /api/.../messages page returns


@dataclass
class LoggingConfig:
    level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR
    file: str = "logs/orbitdockd.log"  # relative to data_dir; "" = no file
    stderr: bool = True  # also log to stderr (the file log is unaffected)


@dataclass
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    persistence: PersistenceConfig = field(default_factory=PersistenceConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    codex: CodexConfig = field(default_factory=CodexConfig)
    watcher: WatcherConfig = field(default_factory=WatcherConfig)
    ws: WsConfig = field(default_factory=WsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(value: Any, target: type, where: str) -> Any:
    if isinstance(value, str) and target is not str:
        text = value.strip()
        if target is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{where}: expected a boolean, got {value!r}")
        try:
            return target(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: expected {target.__name__}, got {value!r}") from exc
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, target) or (target is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {target.__name__}, got {value!r}")
    return value


def _apply(cfg: Config, section: str, key: str, value: Any, origin: str) -> None:
    sections = {f.name: f for f in dataclasses.fields(cfg)}
    if section not in sections:
        raise ConfigError(f"{origin}: unknown section [{section}]{_suggest(section, list(sections))}")
    sect = getattr(cfg, section)
    keys = {f.name: f for f in dataclasses.fields(sect)}
    if key not in keys:
        raise ConfigError(f"{origin}: unknown key {section}.{key}{_suggest(key, list(keys))}")
    target = type(getattr(sect, key))
    setattr(sect, key, _coerce(value, target, f"{origin}: {section}.{key}"))


def load(
    config_file: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Build the effective config.

    Precedence: ``overrides`` ("section.key" -> value, from flags) > env
    (``ORBITDOCK_<SECTION>__<KEY>``, plus ``ORBITDOCK_HOME`` and ``CODEX_HOME``)
    > ``config_file`` (or ``<data_dir>/orbitdock.toml`` when it exists) > defaults.
    """
    env = dict(os.environ if env is None else env)
    cfg = Config()
    if env.get("ORBITDOCK_HOME"):
        cfg.paths.data_dir = env["ORBITDOCK_HOME"]
    if overrides and overrides.get("paths.data_dir"):
        cfg.paths.data_dir = str(overrides["paths.data_dir"])
    path = Path(config_file) if config_file else Path(cfg.paths.data_dir).expanduser() / "orbitdock.toml"
    if config_file and not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: top-level key {section!r} must be a [section]")
            for key, value in values.items():
                _apply(cfg, section, key, value, str(path))
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
            _apply(cfg, section, key, value, f"env {name}")
    if env.get("ORBITDOCK_HOME"):
        cfg.paths.data_dir = env["ORBITDOCK_HOME"]
    if env.get("CODEX_HOME") and not cfg.paths.codex_home:
        cfg.paths.codex_home = env["CODEX_HOME"]
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        _apply(cfg, section, key, value, "flag")
    return cfg
