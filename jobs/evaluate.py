"""Entry file of the ``evaluate`` job for spark-submit and schedulers; the job is ``precis.jobs.evaluate``."""

import sys

from precis.jobs.evaluate import main, run  # noqa: F401  (run: for ``from jobs import evaluate`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
