"""The ``precis`` command of an installed precis (also ``python -m precis``).

    precis <job> [--config FILE] [--set dotted.key=value ...] [--run-date YYYY-MM-DD]
                 [--triggered-on YYYY-MM-DD] [--env ENV]

The same arguments as ``spark-submit.sh``; the job runs in this process, on the session
:func:`precis.session.get_spark` finds or builds (local Spark, or Spark Connect when
``$SPARK_REMOTE`` is set).
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Sequence

from precis import jobs
from precis.errors import ConfigError, PrecisError
from precis.runner import fail

USAGE = "usage: precis <job> [--config FILE] [--set dotted.key=value ...] [--run-date YYYY-MM-DD] [--triggered-on YYYY-MM-DD] [--env ENV]"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``precis <job> ...``; the exit code. Called without ``argv`` (as an entry
    point), a failure also raises ``SystemExit``: a runner that ignores the return value
    (a Databricks wheel task calls ``main()`` and looks only at exceptions) sees it."""
    code = _run(list(sys.argv[1:] if argv is None else argv))
    if code and argv is None:
        raise SystemExit(code)
    return code


def _run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        print("jobs: " + ", ".join(jobs.JOBS))
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"precis {importlib.metadata.version('precis')}")
        return 0
    job, rest = argv[0], argv[1:]
    try:
        module = jobs.load(job)
    except LookupError as exc:
        return fail(job, ConfigError(str(exc)))
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "pyspark":
            raise
        # The wheel leaves Spark to the runtime (Databricks, a cluster image).
        return fail(
            job,
            PrecisError(
                "PySpark is not installed: pip install 'precis[local]' for local Spark, "
                "'precis[connect]' for a Spark Connect client, or run where Spark is provided"
            ),
        )
    return int(module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
