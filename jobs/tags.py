"""Entry file of the ``tags`` job for spark-submit and schedulers; the job is ``precis.jobs.tags``."""

import sys

from precis.jobs.tags import main, run

# run: for ``from jobs import tags`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
