"""Entry file of the ``share`` job for spark-submit and schedulers; the job is ``precis.jobs.share``."""

import sys

from precis.jobs.share import main, run

# run: for ``from jobs import share`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
