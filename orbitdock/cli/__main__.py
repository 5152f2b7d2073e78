"""`python -m orbitdock.cli` runs orbitdockctl."""

import sys

from orbitdock.cli import main

sys.exit(main())
