"""Entry file of the ``experiments`` job for spark-submit and schedulers; the job is ``precis.jobs.experiments``."""

import sys

from precis.jobs.experiments import main, run

# run: for ``from jobs import experiments`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
