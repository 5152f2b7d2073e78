"""Who may talk to the bridge: loopback by default, a token off loopback, an Origin allow-list.

A token is required exactly when the bridge is bound off loopback; it is generated once
into ``$ORBITDOCK_HOME/<ws.token_file>`` (mode 0600) and accepted as
``Authorization: Bearer <token>`` or a ``token`` query parameter (browsers cannot set
headers on a WebSocket). Every upgrade's ``Origin`` must be the bridge's own origin,
``null`` or absent (native apps), or one configured in ``ws.allowed_origins``: a web page
elsewhere must not drive sessions through the user's browser.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from orbitdock.config import Config
from orbitdock.paths import layout

LOOPBACK_NAMES = ("localhost",)


def is_loopback(address: str) -> bool:
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(address, None))
        except OSError:
            return False


def token_path(cfg: Config) -> Path:
    return layout(cfg).data_dir / cfg.ws.token_file


def read_token(cfg: Config) -> str | None:
    try:
        return token_path(cfg).read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_token(cfg: Config) -> str:
    """The bridge's token, generated (0600, created exclusively) on first need."""
    path = token_path(cfg)
    existing = read_token(cfg)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def request_token(path_and_query: str, authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    values = parse_qs(urlsplit(path_and_query).query).get("token")
    return values[0] if values else None


def token_ok(expected: str | None, given: str | None) -> bool:
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def own_origins(address: str, port: int) -> list[str]:
    hosts = {address}
    if is_loopback(address):
        hosts |= {"127.0.0.1", "localhost", "[::1]"}
    elif address in ("0.0.0.0", "::"):
        hosts |= {"127.0.0.1", "localhost", socket.gethostname()}
        try:
            hosts |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
    return sorted(f"http://{h}:{port}" for h in hosts)


def allowed_origins(cfg: Config) -> list[str | None]:
    """The fixed allow-list: None is a request without an Origin header."""
    extra = [o.strip() for o in cfg.ws.allowed_origins.split(",") if o.strip()]
    return [None, "null", *own_origins(cfg.ws.address, cfg.ws.port), *extra]


def origin_ok(origin: str | None, host: str | None, cfg: Config) -> bool:
    """An upgrade's Origin: on the allow-list; or, bound off loopback (where the token is
    required too), the origin of the page this bridge served under that Host (a phone
    reaches it by a LAN name or address the bridge cannot list). On loopback only the
    fixed list counts: a DNS-rebound name would match its own Host."""
    if origin in allowed_origins(cfg):
        return True
    return (not is_loopback(cfg.ws.address) and host is not None
            and origin in (f"http://{host}", f"https://{host}"))
