"""Entry file of the ``ingest`` job for spark-submit and schedulers; the job is ``precis.jobs.ingest``."""

import sys

from precis.jobs.ingest import main, run

# run: for ``from jobs import ingest`` in notebooks and schedulers.
__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
