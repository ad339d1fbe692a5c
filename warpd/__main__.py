"""``python -m warpd`` is the same as the ``warpd`` command."""

from warpd.cli import main

raise SystemExit(main())
