"""Entry file of the ``recommend`` job for spark-submit and schedulers; the job is ``precis.jobs.recommend``."""

import sys

from precis.jobs.recommend import main, run  # noqa: F401  (run: for ``from jobs import recommend`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
