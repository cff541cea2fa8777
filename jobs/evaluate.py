"""Entry file of the ``evaluate`` job for spark-submit and schedulers; the job is ``precis.jobs.evaluate``."""

import sys

from precis.jobs.evaluate import main, run

# run: for ``from jobs import evaluate`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
