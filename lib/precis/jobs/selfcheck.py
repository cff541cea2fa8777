"""selfcheck: prove this installation works end to end.

Writes a tiny Delta table, MERGEs into it, time-travels to version 0, logs an MLflow run,
and prints where tables and runs land. Safe to rerun: the table is overwritten first.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import Config
from precis.errors import PrecisError
from precis.progress import Progress, log
from precis.redact import redact_text
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import job_run, tracking_uri

JOB = "selfcheck"


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, int]:
    lake = Lakehouse.from_config(spark, cfg)
    progress = Progress(JOB, 3)
    with job_run(cfg, JOB) as tracker:
        with progress.step("write meta/selfcheck") as step:
            first = spark.range(3).select(F.col("id"), F.lit("v0").alias("value"))
            lake.overwrite(first, T.SELFCHECK)
            step.rows = 3
        with progress.step("merge into meta/selfcheck") as step:
            v0 = lake.version(T.SELFCHECK)
            update = spark.range(2, 5).select(F.col("id"), F.lit("v1").alias("value"))
            lake.merge_upsert(update, T.SELFCHECK)
            step.rows = rows_now = lake.read(T.SELFCHECK).count()
        with progress.step("time travel to the first version") as step:
            step.rows = lake.read(T.SELFCHECK, version=v0).count()
        result = {"rows_now": rows_now, "rows_first_version": step.rows}
        tracker.log_metrics(result)
        expected = {"rows_now": 5, "rows_first_version": 3}
        if result != expected:
            raise PrecisError(f"selfcheck failed: expected {expected}, got {result}")
    log.info("[%s] tables under %s", JOB, redact_text(cfg.root))
    log.info("[%s] MLflow runs in %s (run %s)", JOB, redact_text(tracking_uri(cfg)), tracker.run_id)
    progress.finish()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
