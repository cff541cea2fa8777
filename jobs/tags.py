"""Entry file of the ``tags`` job for spark-submit and schedulers; the job is ``precis.jobs.tags``."""

import sys

from precis.jobs.tags import main, run  # noqa: F401  (run: for ``from jobs import tags`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
