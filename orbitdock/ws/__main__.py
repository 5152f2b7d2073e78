"""``python -m orbitdock.ws``: the same as the ``orbitdock-ws`` console script."""

import sys

from orbitdock.ws.server import run_cli

sys.exit(run_cli())
