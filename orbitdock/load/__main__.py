"""``python -m orbitdock.load``: the same as ``orbitdock-load``."""

import sys

if __name__ == "__main__":
    from orbitdock.load.cli import main

    sys.exit(main())
