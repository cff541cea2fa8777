"""``python -m precis <job> [args]``: the ``precis`` command."""

import sys

from precis.cli import main

sys.exit(main())
