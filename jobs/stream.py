"""Entry file of the ``stream`` job for spark-submit and schedulers; the job is ``precis.jobs.stream``."""

import sys

from precis.jobs.stream import main, run

# run: for ``from jobs import stream`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
