"""orbitdock-ws: a WebSocket bridge that speaks the upstream OrbitDock JSON protocol.

A separate process and an ordinary ZeroMQ client of the daemon (``orbitdock.client``):

- ``outbound``: daemon snapshots and events -> upstream-shaped JSON objects (pure);
- ``inbound``: upstream client messages -> daemon requests (pure);
- ``link``: the ZeroMQ client and the mirrors, on the server's event loop;
- ``followers``: who follows which session or the list; the daemon's stream as their frames;
- ``answers``: the daemon's replies in upstream terms (error codes, decision results, HTTP);
- ``access``: who may connect (loopback, token, Origin allow-list);
- ``server``: the asyncio WebSocket and HTTP server (``/ws``, ``/health``, the dashboard);
- ``static/``: the browser dashboard (no build step).

``docs/WS_PROTOCOL.md`` is the mapping table.
"""
