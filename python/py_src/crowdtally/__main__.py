"""``python -m crowdtally``: the ``crowdtally`` command (see :mod:`crowdtally.cli`)."""

from crowdtally.cli import main

raise SystemExit(main())
