"""Entry file of the ``report`` job for spark-submit and schedulers; the job is ``precis.jobs.report``."""

import sys

from precis.jobs.report import main, run

# run: for ``from jobs import report`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
