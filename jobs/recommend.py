"""Entry file of the ``recommend`` job for spark-submit and schedulers; the job is ``precis.jobs.recommend``."""

import sys

from precis.jobs.recommend import main, run

# run: for ``from jobs import recommend`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
