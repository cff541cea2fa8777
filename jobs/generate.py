"""Entry file of the ``generate`` job for spark-submit and schedulers; the job is ``precis.jobs.generate``."""

import sys

from precis.jobs.generate import main, run

# run: for ``from jobs import generate`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
