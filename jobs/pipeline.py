"""Entry file of the ``pipeline`` job for spark-submit and schedulers; the job is ``precis.jobs.pipeline``."""

import sys

from precis.jobs.pipeline import main, run  # noqa: F401  (run: for ``from jobs import pipeline`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
