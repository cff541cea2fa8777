"""Entry file of the ``identity`` job for spark-submit and schedulers; the job is ``precis.jobs.identity``."""

import sys

from precis.jobs.identity import main, run

# run: for ``from jobs import identity`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
