"""Entry file of the ``rekey`` job for spark-submit and schedulers; the job is ``precis.jobs.rekey``."""

import sys

from precis.jobs.rekey import main, run

# run: for ``from jobs import rekey`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
