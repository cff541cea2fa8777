"""Entry file of the ``lifecycle`` job for spark-submit and schedulers; the job is ``precis.jobs.lifecycle``."""

import sys

from precis.jobs.lifecycle import main, run

# run: for ``from jobs import lifecycle`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
