"""pipeline: run the configured jobs in order, for one run date or each date of a range.

``pipeline --from D1 --to D2`` (a backfill) runs every job for D1, then for the next
date, up to D2. Each (date, job) that finishes is recorded in ``meta/pipeline_runs``
with the versions of the tables it read; a rerun skips those and starts at the first
one not done (``--force``: run everything again). One Spark session throughout.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from pyspark.sql import SparkSession

from precis import jobs, ledger
from precis import tables as T
from precis.columns import RUN_DATE
from precis.config import Config
from precis.errors import ConfigError
from precis.progress import log
from precis.redact import redact_text
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import tracking_uri

JOB = "pipeline"


def resolve(names: Sequence[str]) -> list[ModuleType]:
    """Import every job up front so a typo in ``pipeline.jobs`` fails before any work."""
    modules = []
    for name in names:
        if name == JOB:
            raise ConfigError("config key 'pipeline.jobs': the pipeline cannot run itself")
        try:
            modules.append(jobs.load(name))
        except LookupError as exc:
            raise ConfigError(f"config key 'pipeline.jobs': {exc}") from None
    return modules


@one_writer(JOB, runs=lambda cfg: cfg.pipeline.jobs)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    modules = dict(zip(cfg.pipeline.jobs, resolve(cfg.pipeline.jobs)))
    try:
        dates = ledger.run_dates(cfg.pipeline.from_date, cfg.run_date)
    except ValueError as exc:
        raise ConfigError(f"config key 'pipeline.from_date': {exc}") from None
    lake = Lakehouse.from_config(spark, cfg)
    done = [] if cfg.pipeline.force else done_before(lake, dates)
    steps = ledger.plan(dates, cfg.pipeline.jobs, done)
    skipped = sum(s.done for s in steps)
    span = f"{dates[0]} to {dates[-1]}" if len(dates) > 1 else f"run date {dates[0]}"
    log.info("[pipeline] %d jobs x %d dates (%s)", len(modules), len(dates), span)
    if skipped:
        log.info("[pipeline] %d done before, skipped (--force runs them again)", skipped)
    started = time.monotonic()
    for i, step in enumerate(steps, start=1):
        where = f"{i}/{len(steps)}: {step.job} for {step.run_date}"
        if step.done:
            log.info("[pipeline] %s: done before, skipped", where)
            continue
        log.info("[pipeline] %s", where)
        seconds = run_step(lake, spark, cfg, step, modules[step.job])
        log.info("[pipeline] %s done in %.1fs", where, seconds)
    log.info(
        "[pipeline] %d ran, %d skipped, %.1fs",
        len(steps) - skipped,
        skipped,
        time.monotonic() - started,
    )
    print(f"Tables:      {redact_text(cfg.root)}/<layer>/<table>  (landing, bronze, silver, gold)")
    if cfg.mlflow.enabled:
        uri = redact_text(tracking_uri(cfg))
        print(f"MLflow runs: {uri}")
        print(f"             browse with: {sys.executable} -m mlflow ui --backend-store-uri {uri}")
    return {
        "dates": [d.isoformat() for d in dates],
        "ran": len(steps) - skipped,
        "skipped": skipped,
    }


def done_before(lake: Lakehouse, dates: Sequence[dt.date]) -> list[tuple[dt.date, str]]:
    """The (date, job)s of ``dates`` the ledger has as done."""
    if not lake.exists(T.PIPELINE_RUNS):
        return []
    rows = (
        lake.read(T.PIPELINE_RUNS)
        .filter(
            f"status = '{ledger.DONE}' AND {RUN_DATE} BETWEEN DATE'{dates[0]}' AND DATE'{dates[-1]}'"
        )
        .select(RUN_DATE, "job")
        .collect()
    )
    return [(r[RUN_DATE], r["job"]) for r in rows]


def run_step(
    lake: Lakehouse, spark: SparkSession, cfg: Config, step: ledger.Step, module: ModuleType
) -> float:
    """Run one (date, job) and record it in the ledger, done or failed; its seconds."""
    inputs = lake.versions(T.READS.get(step.job, ()))
    started = _now()
    try:
        module.run(spark, cfg.for_date(step.run_date))
    except BaseException as exc:  # an interrupted job is not done either
        _record(lake, ledger.row(step, started, _now(), inputs, exc))
        raise
    finished = _now()
    _record(lake, ledger.row(step, started, finished, inputs))
    return (finished - started).total_seconds()


def _record(lake: Lakehouse, entry: tuple[object, ...]) -> None:
    lake.merge_upsert(
        lake.spark.createDataFrame([entry], ledger.SCHEMA), T.PIPELINE_RUNS, unique=True
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # aware: stored as the same instant in any time zone


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
