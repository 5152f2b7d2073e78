"""A scripted OpenAI Responses API on 127.0.0.1, so codex can run with no network.

``SimServer`` is the Python API; ``orbitdock-sim`` (``python -m orbitdock.sim``) runs it
standalone. The script format is documented in :mod:`orbitdock.sim.script`.
"""

from orbitdock.sim.script import SCRIPT_EXHAUSTED_TEXT, load_script
from orbitdock.sim.server import SimServer

__all__ = ["SCRIPT_EXHAUSTED_TEXT", "SimServer", "load_script"]
