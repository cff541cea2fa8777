"""Entry file of the ``forget`` job for spark-submit and schedulers; the job is ``precis.jobs.forget``."""

import sys

from precis.jobs.forget import main, run

# run: for ``from jobs import forget`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
