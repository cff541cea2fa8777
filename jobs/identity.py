"""Entry file of the ``identity`` job for spark-submit and schedulers; the job is ``precis.jobs.identity``."""

import sys

from precis.jobs.identity import main, run  # noqa: F401  (run: for ``from jobs import identity`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
