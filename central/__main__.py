"""``python -m central``: the same as the ``warpd-central`` command (see central.cli)."""

import sys

from central.cli import main

if __name__ == "__main__":
    sys.exit(main())
