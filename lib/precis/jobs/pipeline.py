"""pipeline: run the configured jobs in order for one run date, in one Spark session."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from types import ModuleType

from pyspark.sql import SparkSession

from precis import jobs
from precis.config import Config
from precis.errors import ConfigError
from precis.progress import log
from precis.runner import job_main
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


def run(spark: SparkSession, cfg: Config) -> None:
    modules = resolve(cfg.pipeline.jobs)
    started = time.monotonic()
    for i, (name, module) in enumerate(zip(cfg.pipeline.jobs, modules), start=1):
        log.info("[pipeline] job %d/%d: %s (run date %s)", i, len(modules), name, cfg.run_date)
        t0 = time.monotonic()
        module.run(spark, cfg)
        log.info(
            "[pipeline] job %d/%d: %s done in %.1fs", i, len(modules), name, time.monotonic() - t0
        )
    log.info("[pipeline] all %d jobs done in %.1fs", len(modules), time.monotonic() - started)
    print(f"Tables:      {cfg.root}/<layer>/<table>  (landing, bronze, silver, gold)")
    if cfg.mlflow.enabled:
        print(f"MLflow runs: {tracking_uri(cfg)}")
        print(
            f"             browse with: {sys.executable} -m mlflow ui --backend-store-uri {tracking_uri(cfg)}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
