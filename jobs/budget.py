"""Entry file of the ``budget`` job for spark-submit and schedulers; the job is ``precis.jobs.budget``."""

import sys

from precis.jobs.budget import main, run

# run: for ``from jobs import budget`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
