"""Entry file of the ``selfcheck`` job for spark-submit and schedulers; the job is ``precis.jobs.selfcheck``."""

import sys

from precis.jobs.selfcheck import main, run

# run: for ``from jobs import selfcheck`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
