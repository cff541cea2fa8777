"""Entry file of the ``attribution`` job for spark-submit and schedulers; the job is ``precis.jobs.attribution``."""

import sys

from precis.jobs.attribution import main, run  # noqa: F401  (run: for ``from jobs import attribution`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
