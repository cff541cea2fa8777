"""Entry file of the ``pipeline`` job for spark-submit and schedulers; the job is ``precis.jobs.pipeline``."""

import sys

from precis.jobs.pipeline import main, run

# run: for ``from jobs import pipeline`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
