"""orbitdock-ws: a WebSocket bridge that speaks the upstream OrbitDock JSON protocol.

A separate process and an ordinary ZeroMQ client of the daemon (``orbitdock.client``):

- ``outbound``: daemon snapshots and events -> upstream-shaped JSON objects (pure);
- ``inbound``: upstream client messages -> daemon requests (pure);
- ``link``: the ZeroMQ client and the mirrors, on the server's event loop; fans frames out;
- ``access``: who may connect (loopback, token, Origin allow-list);
- ``server``: the asyncio WebSocket and HTTP server (``/ws``, ``/health``, the dashboard);
- ``static/``: the browser dashboard (no build step).

``docs/WS_PROTOCOL.md`` is the mapping table.
"""
