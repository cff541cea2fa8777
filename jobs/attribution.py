"""Entry file of the ``attribution`` job for spark-submit and schedulers; the job is ``precis.jobs.attribution``."""

import sys

from precis.jobs.attribution import main, run

# run: for ``from jobs import attribution`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
