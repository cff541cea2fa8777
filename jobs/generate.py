"""Entry file of the ``generate`` job for spark-submit and schedulers; the job is ``precis.jobs.generate``."""

import sys

from precis.jobs.generate import main, run  # noqa: F401  (run: for ``from jobs import generate`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
