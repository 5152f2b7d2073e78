"""orbitdock: mission control for AI coding agents.

This package is the pure core (protocol, codecs, state machines, config, client).
It never imports ``actors``; the daemon in ``actors`` builds on it.
"""

__version__ = "0.1.0"

# Bumped on any incompatible change to the wire envelope or a message definition.
PROTOCOL_VERSION = 1
