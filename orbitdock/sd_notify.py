"""systemd's readiness protocol: tell the service manager we are up, or stopping.

With ``Type=notify`` systemd sets ``NOTIFY_SOCKET`` (a unix datagram socket; a leading
``@`` means the abstract namespace) and waits for ``READY=1`` before it counts the
service as started. Outside systemd the variable is unset and ``notify`` does nothing.
A few lines with the socket module instead of a dependency (the protocol is one
datagram of ``KEY=value`` lines).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to ``$NOTIFY_SOCKET``; True if it was sent."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:  # the service manager went away: nothing to tell, keep running
        logger.warning("sd_notify %r to %s failed: %s", state, address, exc)
        return False
    return True
