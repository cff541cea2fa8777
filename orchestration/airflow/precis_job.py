"""Main file that spark-submit runs for one precis job, from an installed precis or a checkout:

    spark-submit ... precis_job.py <job> [--run-date D] [--config F] [--env E] [--set k=v]

The same arguments as the ``precis`` command; the job reuses the session spark-submit
started. Run it with the interpreter that has precis (``PYSPARK_PYTHON``).
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Python puts this file's folder first on sys.path; modules beside it must not
    # shadow what precis and its dependencies import.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    from precis.cli import main

    sys.exit(main())
