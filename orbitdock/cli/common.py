"""What every orbitdockctl command shares: config, the client, errors, output."""

from __future__ import annotations

import enum
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import click
import msgspec

from orbitdock.client import (
    Client,
    DaemonNotRunning,
    RemoteError,
    RequestTimeout,
    Subscription,
    find_daemon,
)
from orbitdock.config import Config
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_TIMEOUT = 4


class CliErrorCode(enum.StrEnum):
    """Codes of failures the CLI finds itself (the daemon's own are ``ErrorCode``)."""

    DAEMON_NOT_RUNNING = "daemon_not_running"  # no daemon for this data dir
    USAGE = "usage"  # bad command line
    AMBIGUOUS_ID = "ambiguous_id"  # an id prefix matching more than one session or approval
    WRONG_VERB = "wrong_verb"  # e.g. `approve` on a question: it needs `answer`
    DATABASE_DAMAGED = "database_damaged"  # `db check` found integrity problems


class CommandFailed(click.ClickException):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED,
                 code: str = ErrorCode.INVALID_STATE):
        super().__init__(message)
        self.exit_code = exit_code
        self.code = str(code)


def not_running(exc: DaemonNotRunning) -> CommandFailed:
    return CommandFailed(str(exc), EXIT_NOT_RUNNING, CliErrorCode.DAEMON_NOT_RUNNING)


def timed_out(message: str) -> CommandFailed:
    return CommandFailed(message, EXIT_TIMEOUT, ErrorCode.TIMEOUT)


def show_error(exc: click.ClickException, as_json: bool) -> None:
    """An error on stderr: ``{"error": {"code", "message"}}`` with --json, else one line."""
    if not as_json:
        exc.show()
        return
    if isinstance(exc, CommandFailed):
        code = exc.code
    elif isinstance(exc, click.UsageError):
        code = CliErrorCode.USAGE
    else:
        code = ErrorCode.INVALID_STATE
    click.echo(json.dumps({"error": {"code": str(code), "message": exc.format_message()}}),
               err=True)


@dataclass
class Context:
    cfg: Config
    as_json: bool
    _client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            try:
                endpoints = find_daemon(self.cfg)
            except DaemonNotRunning as exc:
                raise not_running(exc) from None
            self._client = Client(endpoints, timeout=self.cfg.client.request_timeout_s)
        return self._client

    def subscription(self) -> Subscription:
        """The live side (mirrors); exits 3 when no daemon runs."""
        try:
            return Subscription(find_daemon(self.cfg), config=self.cfg)
        except DaemonNotRunning as exc:
            raise not_running(exc) from None

    def request(self, msg: m.Request, timeout: float | None = None) -> m.Reply:
        try:
            return self.client().request(msg, timeout)
        except RemoteError as exc:
            raise CommandFailed(f"error {exc.code}: {exc.message}", EXIT_FAILED, exc.code) from None
        except RequestTimeout as exc:
            raise timed_out(str(exc)) from None

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print ``data`` as JSON with --json, else ``text`` (or a readable form)."""
        if self.as_json:
            click.echo(json.dumps(to_builtins(data), indent=2, sort_keys=True))
        else:
            click.echo(text if text is not None else json.dumps(to_builtins(data), indent=2))

    @property
    def on_terminal(self) -> bool:
        return not self.as_json and sys.stdout.isatty()


pass_ctx = click.make_pass_decorator(Context)


class OrderedGroup(click.Group):
    """Lists its commands in the order they were added (the order the README uses)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def to_builtins(data: Any) -> Any:
    """Plain JSON-able data with *every* field, defaults included.

    The wire structs omit fields equal to their defaults (``omit_defaults``: smaller
    frames), but a script reading ``--json`` must find ``status: active`` and friends;
    only ``UNSET`` (a delta's "unchanged") is left out.
    """
    if isinstance(data, msgspec.Struct):
        out: dict[str, Any] = {}
        config = data.__struct_config__
        if isinstance(config.tag_field, str):
            out[config.tag_field] = config.tag
        for name, wire_name in zip(data.__struct_fields__, data.__struct_encode_fields__):
            value = getattr(data, name)
            if value is not msgspec.UNSET:
                out[wire_name] = to_builtins(value)
        return out
    if isinstance(data, (list, tuple)):
        return [to_builtins(item) for item in data]
    if isinstance(data, dict):
        return {key: to_builtins(value) for key, value in data.items()}
    return msgspec.to_builtins(data)


def ago(ts: float | None) -> str:
    if not ts:
        return "-"
    delta = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return f"{int(delta)}s ago"
