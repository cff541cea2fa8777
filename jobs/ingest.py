"""Entry file of the ``ingest`` job for spark-submit and schedulers; the job is ``precis.jobs.ingest``."""

import sys

from precis.jobs.ingest import main, run  # noqa: F401  (run: for ``from jobs import ingest`` in notebooks)

if __name__ == "__main__":
    sys.exit(main())
