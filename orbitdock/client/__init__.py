"""The client library every client uses (orbitdockctl, the load tool, benchmarks, tests,
the bridges): ``requests`` finds the daemon and sends requests; ``subscription`` keeps
exact mirrors of sessions and of the list (Clone pattern)."""

from orbitdock.client.requests import (
    Client,
    ClientError,
    DaemonNotRunning,
    Endpoints,
    RemoteError,
    RequestTimeout,
    find_daemon,
)
from orbitdock.client.subscription import Mirror, Subscription, SyncStats, snapshot_bytes

__all__ = ["Client", "ClientError", "DaemonNotRunning", "Endpoints", "Mirror", "RemoteError",
           "RequestTimeout", "Subscription", "SyncStats", "find_daemon", "snapshot_bytes"]
