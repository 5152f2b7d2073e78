"""``orbitdock-sim --port P --script FILE [--backlog N]``: run the scripted Responses API
until a signal.

Prints the base URL (the value for ``model_providers.<id>.base_url``) as its first
line on stdout, so a wrapper script can read it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from orbitdock import __version__
from orbitdock.sim.script import load_script
from orbitdock.sim.server import LISTEN_BACKLOG, SimServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="orbitdock-sim",
        description="Scripted OpenAI Responses API on 127.0.0.1 for running codex offline.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument("--script", help="JSON file with the list of scripted replies")
    parser.add_argument("--backlog", type=int, default=LISTEN_BACKLOG,
                        help=f"listen backlog: connections queued before accept "
                             f"(default: {LISTEN_BACKLOG})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        script = load_script(args.script) if args.script else []
    except (OSError, ValueError) as exc:
        parser.error(f"cannot load script {args.script}: {exc}")

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()  # only a flag: the main thread does the shutdown

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if args.backlog < 1:
        parser.error(f"--backlog must be at least 1, got {args.backlog}")
    try:
        server = SimServer(script, port=args.port, listen_backlog=args.backlog).start()
    except OSError as exc:
        print(f"orbitdock-sim: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(server.url, flush=True)
    try:
        while not stop.wait(1.0):  # wake periodically so signals are handled promptly
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
