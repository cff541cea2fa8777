"""Entry file of the ``lifecycle`` job for spark-submit and schedulers; the job is ``precis.jobs.lifecycle``."""

import sys

from precis.jobs.lifecycle import main, run  # noqa: F401  (run: for ``from jobs import lifecycle`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
