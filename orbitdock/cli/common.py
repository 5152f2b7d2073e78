"""What every orbitdockctl command shares: config, the client, errors, output."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import click
import msgspec

from orbitdock.client import Client, DaemonNotRunning, RemoteError, RequestTimeout, find_daemon
from orbitdock.config import Config
from orbitdock.protocol import messages as m

EXIT_FAILED = 1
EXIT_NOT_RUNNING = 3
EXIT_TIMEOUT = 4


class CommandFailed(click.ClickException):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


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
                raise CommandFailed(str(exc), EXIT_NOT_RUNNING) from None
            self._client = Client(endpoints, timeout=self.cfg.client.request_timeout_s)
        return self._client

    def request(self, msg: m.Request, timeout: float | None = None) -> m.Reply:
        try:
            return self.client().request(msg, timeout)
        except RemoteError as exc:
            raise CommandFailed(f"error {exc.code}: {exc.message}") from None
        except RequestTimeout as exc:
            raise CommandFailed(str(exc), EXIT_TIMEOUT) from None

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print ``data`` as JSON with --json, else ``text`` (or a readable form)."""
        if self.as_json:
            click.echo(json.dumps(to_builtins(data), indent=2, sort_keys=True))
        else:
            click.echo(text if text is not None else json.dumps(to_builtins(data), indent=2))


pass_ctx = click.make_pass_decorator(Context)


def to_builtins(data: Any) -> Any:
    return msgspec.to_builtins(data)


def ago(ts: float | None) -> str:
    if not ts:
        return "-"
    delta = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return f"{int(delta)}s ago"
