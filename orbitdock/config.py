"""One typed configuration object, loaded as defaults < file < env < flags.

Every timeout, interval and batch size the daemon uses lives here with its
default; ``conf/orbitdock.toml`` documents each key (a test keeps the two in
step). Unknown keys are rejected with a did-you-mean hint, like Mopidy's
schema, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
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
    runtime_dir_wait_s: float = 2.0  # wait for a daemon removing our stale runtime dir at start


@dataclass
class GatewayConfig:
    request_endpoint: str = ""  # "" = ipc://<runtime_dir>/request.sock (ROUTER); tcp: loopback only
    event_endpoint: str = ""  # "" = ipc://<runtime_dir>/events.sock (XPUB)
    max_frame_bytes: int = 1_048_576  # larger request frames get `too_large`
    disconnect_frame_bytes: int = 16_777_216  # libzmq drops a peer sending more (no reply)
    subscriber_hwm: int = 200_000  # events queued per subscriber (~40 MB) before gaps start
    inbound_hwm: int = 200_000  # frames queued from all actors to the gateway before they wait
    zmq_max_sockets: int = 1024  # the daemon's ZeroMQ context limit (sessions use no socket)
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
    shutdown_timeout_s: float = 30.0  # `orbitdockctl shutdown` waits this long for the exit
    systemctl_timeout_s: float = 30.0  # `orbitdockctl service`: one systemctl call's bound
    list_limit: int = 50  # rows `session list` shows from the history by default (0: all)
    list_page: int = 200  # rows per list_sessions request (the daemon allows up to 500)


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
    # commands kept in memory while the database cannot be written (disk full, I/O error);
    # a message command is ~1-4 KB, so 100000 is a few hundred MB at most
    max_unsaved_commands: int = 100_000
    # true: past max_unsaved_commands the oldest unsaved commands are dropped (and counted
    # in status) instead of the daemon refusing new work; trades durability for availability
    drop_when_full: bool = False
    retry_initial_s: float = 0.1  # first retry of a failed write; doubles per failure
    retry_max_s: float = 5.0  # the longest wait between retries of a failed write
    # test-only: PRAGMA max_page_count for the writer (0 = SQLite's default); lets tests
    # make the database report full at a chosen size and raise the limit again
    test_max_page_count: int = 0
    # test-only: the name of an apsw VFS the test process registered (fault injection in
    # writes to the WAL or the database file); "" = SQLite's default VFS
    test_vfs: str = ""


@dataclass
class SessionsConfig:
    memory_messages: int = 200  # messages kept in an actor (and sent in a snapshot)
    tool_output_max_chars: int = 262_144  # a tool row keeps the tail of its output beyond this
    flush_max_events: int = 64  # backend events an actor with more queued handles before it publishes
    restore_limit: int = 5000  # unsettled sessions (turn or approval cut) restored at start, newest first
    passivate_after_s: float = 600.0  # an idle session's actor is released (0: never)
    passivate_ended_after_s: float = 30.0  # an ended session's actor is released this long after
    passivate_check_s: float = 5.0  # how often the supervisor looks for idle actors
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
    review_tail_bytes: int = 1_048_576  # a review's findings are read from this rollout tail


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
class ClaudeConfig:
    enabled: bool = True  # take Claude Code hooks (orbitdock-hook) as passive sessions
    hook_timeout_s: float = 2.0  # orbitdock-hook's longest wait for the daemon; then it spools
    permission_wait_s: float = 60.0  # a PermissionRequest waits this long for a client's decision
    pending_start_ttl_s: float = 60.0  # SessionStart metadata kept for a session's first activity
    replayed_ids: int = 10000  # delivered event ids remembered, so a spooled copy is dropped
    transcript_settle_ms: float = 10000.0  # a hook's tool row waits at most this for the transcript to show the call (rows in transcript order)
    transcript_poll_ms: float = 50.0  # ... re-reading the transcript this often meanwhile
    transcript_chunk_bytes: int = 1_048_576  # transcript reads in bounded chunks
    transcript_max_line_bytes: int = 67_108_864  # a longer transcript line is skipped (logged)
    owner_ask_timeout_s: float = 1.0  # asking the supervisor whether a direct session owns a hook's session id
    # Direct sessions (orbitdock runs `claude -p --input-format stream-json`, one per session)
    binary: str = ""  # "" = the pinned binary under <project>/.tools, then PATH
    expected_version: str = "2.1.332"  # another version is refused for direct sessions ("" = any)
    start_timeout_s: float = 30.0  # spawn -> the initialize control response
    control_timeout_s: float = 30.0  # an interrupt / set_model / set_permission_mode reply
    idle_stop_s: float = 600.0  # no turn for this long: the process stops, resumed on next send (0: never)
    stop_timeout_s: float = 5.0  # stdin closed -> SIGTERM -> SIGKILL, each after this long
    max_line_bytes: int = 67_108_864  # a longer stream-json line is skipped (logged)


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
    snapshot_target_bytes: int = 262_144  # a bigger snapshot cuts text harder, then drops old messages (0: never)
    link_tick_ms: int = 100  # the daemon link's longest sleep (retries and expiries)
    batch_ms: float = 5.0  # a busy stream is taken and sent at most once per this (0: per wake-up)
    send_timeout_ms: int = 50  # a request the daemon link cannot hand to ZeroMQ by then fails
    page_limit: int = 200  # most messages one /api/.../messages page returns


@dataclass
class LoggingConfig:
    level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR
    file: str = "logs/orbitdockd.log"  # relative to data_dir; "" = no file
    stderr: bool = True  # also log to stderr (the file log is unaffected)
    stderr_format: str = "auto"  # auto (text on a terminal, else JSON lines) | text | json
    max_bytes: int = 10_485_760  # the file is rotated past this size; 0 = never
    backups: int = 5  # rotated files kept (orbitdockd.log.1 ... .5)
    follow_poll_s: float = 0.2  # `orbitdockctl logs -f`: how often it looks for new lines


@dataclass
class McpConfig:
    request_timeout_s: float = 10.0  # orbitdock-mcp's wait for the daemon's reply to a tool call
    approve_wait_max_s: float = 120.0  # the longest `approve wait_s` waits for an approval
    approve_poll_s: float = 0.2  # how often that wait looks at the session
    follow_interval_s: float = 0.2  # poll of the session list behind resource notifications


@dataclass
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    persistence: PersistenceConfig = field(default_factory=PersistenceConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    codex: CodexConfig = field(default_factory=CodexConfig)
    watcher: WatcherConfig = field(default_factory=WatcherConfig)
    claude: ClaudeConfig = field(default_factory=ClaudeConfig)
    ws: WsConfig = field(default_factory=WsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    mcp: McpConfig = field(default_factory=McpConfig)

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


def _apply(cfg: Config, section: str, key: str, value: Any, origin: str,
           origins: dict[str, str] | None = None) -> None:
    sections = {f.name: f for f in dataclasses.fields(cfg)}
    if section not in sections:
        raise ConfigError(f"{origin}: unknown section [{section}]{_suggest(section, list(sections))}")
    sect = getattr(cfg, section)
    keys = {f.name: f for f in dataclasses.fields(sect)}
    if key not in keys:
        raise ConfigError(f"{origin}: unknown key {section}.{key}{_suggest(key, list(keys))}")
    target = type(getattr(sect, key))
    setattr(sect, key, _coerce(value, target, f"{origin}: {section}.{key}"))
    if origins is not None:
        origins[f"{section}.{key}"] = origin


def load(
    config_file: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Build the effective config (see ``load_with_origins``)."""
    return load_with_origins(config_file, env, overrides)[0]


def load_with_origins(
    config_file: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Config, dict[str, str]]:
    """The effective config, and where each value not left at its default came from.

    Precedence: ``overrides`` ("section.key" -> value, from flags) > env
    (``ORBITDOCK_<SECTION>__<KEY>``, plus ``ORBITDOCK_HOME`` and ``CODEX_HOME``)
    > ``config_file`` (or ``<data_dir>/orbitdock.toml`` when it exists) > defaults.
    Origins map "section.key" to "file <path>", "env <NAME>" or "command line".
    """
    env = dict(os.environ if env is None else env)
    cfg = Config()
    origins: dict[str, str] = {}
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
                _apply(cfg, section, key, value, f"file {path}", origins)
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
            _apply(cfg, section, key, value, f"env {name}", origins)
    if env.get("ORBITDOCK_HOME"):
        cfg.paths.data_dir = env["ORBITDOCK_HOME"]
        origins["paths.data_dir"] = "env ORBITDOCK_HOME"
    if env.get("CODEX_HOME") and not cfg.paths.codex_home:
        cfg.paths.codex_home = env["CODEX_HOME"]
        origins["paths.codex_home"] = "env CODEX_HOME"
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        _apply(cfg, section, key, value, "command line", origins)
    return cfg, origins


# ---------------------------------------------------------------- checks at start

# Keys with a fixed set of values (compared case-insensitively).
CHOICES: dict[str, tuple[str, ...]] = {
    "persistence.synchronous": ("OFF", "NORMAL", "FULL", "EXTRA"),
    "logging.level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
}
# Every number is a size, count, interval or timeout, so none may be negative; these
# must also be above zero (a zero would spin a loop, or hold nothing).
POSITIVE = frozenset({
    "gateway.max_frame_bytes", "gateway.disconnect_frame_bytes", "gateway.heartbeat_interval_s",
    "gateway.drain_batch", "client.request_timeout_s", "client.heartbeat_liveness",
    "persistence.batch_size", "persistence.checkpoint_interval_s", "persistence.ask_timeout_s",
    "persistence.max_unsaved_commands", "persistence.retry_initial_s", "persistence.retry_max_s",
    "sessions.restart_window_s", "sessions.stop_timeout_s",
    "codex.threads_per_process", "codex.start_timeout_s", "codex.request_timeout_s",
    "codex.resume_timeout_s", "codex.setups_in_flight", "codex.recovery_batch",
    "codex.stop_timeout_s", "codex.login_shell_timeout_s",
    "watcher.sweep_interval_s", "watcher.read_chunk_bytes", "watcher.batch_lines",
    "watcher.max_line_bytes", "watcher.backlog_limit",
})
# Numbers with a range of their own instead of ">= 0".
RANGES: dict[str, tuple[float, float]] = {
    "codex.session_nice": (-20, 19),  # nice(2) increments; below 0 needs privileges
}


ENDPOINT_KEYS = ("gateway.request_endpoint", "gateway.event_endpoint")
LOOPBACK_HOSTS = ("localhost", "[::1]")  # plus 127.0.0.0/8


def is_local_endpoint(endpoint: str) -> bool:
    """ipc:// (a 0700 runtime dir), or tcp:// on a loopback address: nothing else may
    reach a daemon whose requests are not authenticated (ZeroMQ CURVE is not built)."""
    if endpoint == "" or endpoint.startswith("ipc://"):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host, sep, _port = endpoint[len("tcp://"):].rpartition(":")
    if not sep:
        return False
    octets = host.split(".")
    return host.lower() in LOOPBACK_HOSTS or (
        len(octets) == 4 and octets[0] == "127"
        and all(o.isdigit() and int(o) < 256 for o in octets))


def _describe(dotted: str, value: Any, origins: dict[str, str]) -> str:
    return f"{dotted} = {value!r} (from {origins.get(dotted, 'default')})"


def validate(cfg: Config, origins: dict[str, str] | None = None) -> None:
    """Raise ConfigError for the first value the daemon cannot run with, naming the key,
    where it came from and what is allowed: before anything starts, not as a traceback
    from deep inside an actor."""
    origins = origins or {}
    for dotted in ENDPOINT_KEYS:
        section, _, key = dotted.partition(".")
        endpoint = getattr(getattr(cfg, section), key)
        if not is_local_endpoint(endpoint):
            raise ConfigError(
                f"{_describe(dotted, endpoint, origins)}: only ipc:// or a loopback tcp "
                "address (tcp://127.0.0.1:PORT, tcp://[::1]:PORT, tcp://localhost:PORT) is "
                "allowed: requests are not authenticated yet (no ZeroMQ CURVE), so anyone who "
                "can reach the port could drive your agents")
    for section, values in cfg.as_dict().items():
        for key, value in values.items():
            dotted = f"{section}.{key}"
            if dotted in CHOICES and str(value).upper() not in CHOICES[dotted]:
                raise ConfigError(f"{_describe(dotted, value, origins)}: must be one of "
                                  f"{', '.join(CHOICES[dotted])}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            low, high = RANGES.get(dotted, (0, float("inf")))
            if not low <= value <= high:
                allowed = (f"from {low} to {high}" if dotted in RANGES
                           else "0 or more")
                raise ConfigError(f"{_describe(dotted, value, origins)}: must be {allowed}")
            if dotted in POSITIVE and not value > 0:
                raise ConfigError(f"{_describe(dotted, value, origins)}: must be above 0")


def render(cfg: Config, origins: dict[str, str]) -> str:
    """The effective config as TOML, each value followed by where it came from."""
    lines = ["# orbitdockd: effective configuration (value  # source)"]
    for section, values in cfg.as_dict().items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            text = json.dumps(value) if isinstance(value, (str, bool)) else repr(value)
            lines.append(f"{key} = {text}  # {origins.get(f'{section}.{key}', 'default')}")
    return "\n".join(lines) + "\n"
