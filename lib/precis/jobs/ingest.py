"""ingest: landing files -> bronze (as landed + lineage) -> silver (typed, clean, hashed).

Incremental and idempotent: a registry of ingested (and rejected) files
(``meta/ingest_files``) means a rerun over the same files does nothing; a new or
rewritten file replaces exactly its own rows in bronze and quarantine; silver is MERGEd
on the contract's keys, where a late-arriving older copy of a record never overwrites a
newer one. Which files a batch takes is ``precis.ingest.landing.next_batch``; bronze to
silver is ``precis.ingest.build_batch``; a batch's writes are ``precis.ingest.writes``
(every batch's quarantine rows in one commit per run); the accounting is
``precis.ingest.summary``.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Sequence
from dataclasses import asdict

from pyspark.sql import SparkSession

from precis import tables as T
from precis.columns import INGESTED_AT
from precis.config import DATASETS, Config
from precis.ingest import batch as ib
from precis.ingest import conform
from precis.ingest import summary as sm
from precis.ingest.batch import DatasetFailed
from precis.ingest.files import Rejected
from precis.ingest.landing import landed_files, next_batch, present_datasets, read_through
from precis.ingest.writes import ingest_dataset, write_quarantine
from precis.keys import job_key
from precis.progress import Progress, log
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse, LandingFile
from precis.tracking import job_run

JOB = "ingest"


def append(lake: Lakehouse, rows: list[tuple], schema: str, table: T.Table) -> None:
    frame = lake.spark.createDataFrame(rows, schema)
    lake.add_new_columns(table, frame.schema)  # a table written before a column was added
    lake.append_log(frame, table)


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, sm.Summary]:
    lake = Lakehouse.from_config(spark, cfg)
    settings = conform.IdentifierSettings.of(cfg.ingest, cfg.privacy.pii_types, job_key(lake, cfg))
    landing = {d: landed_files(spark, cfg, d) for d in cfg.ingest.datasets or DATASETS}
    present = present_datasets(landing, cfg.ingest.datasets, cfg.landing_path, cfg.root)
    suppressions = lake.read_if_exists(T.SUPPRESSIONS)
    summaries: dict[str, sm.Summary] = {}
    done: dict[str, list[LandingFile]] = {}
    rejected: dict[str, list[Rejected]] = {}
    written: list[ib.Quarantined] = []
    progress = Progress(JOB, len(present))
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with job_run(cfg, JOB) as tracker:
        for dataset in present:
            with progress.step(dataset) as step:
                summary = sm.Summary(dataset)
                try:
                    batch = next_batch(spark, cfg, lake, dataset, landing[dataset])
                    if batch.files:
                        job = functools.partial(
                            ingest_dataset, cfg, lake, dataset, settings=settings,
                            suppressions=suppressions, run_id=tracker.key, ingested_at=ingested_at,
                        )  # fmt: skip
                        got, batch = read_through(spark, cfg, lake, dataset, batch, job)
                        if got:
                            summary, quarantined = got
                            written.append(quarantined)
                        done[dataset] = batch.files
                    rejected[dataset] = batch.rejected
                    summary.skipped(batch.rejected, len(batch.waiting))
                except DatasetFailed as exc:
                    summary.error = str(exc)
                    log.error("[%s] %s", JOB, exc)
                summaries[dataset] = summary
                step.rows = summary.rows_in if summary.files else None
                step.detail = summary.describe()
        write_quarantine(lake, written)
        # Written last: if a run dies before this, the rerun redoes those files, which
        # every step above makes harmless.
        if done or any(rejected.values()):
            files = sm.file_rows(done, rejected, tracker.key, ingested_at)
            append(lake, files, sm.FILES_SCHEMA, T.INGEST_FILES)
        if cfg.bronze.retention_days:  # bronze keeps landed rows this long, then forgets
            oldest = cfg.run_date - dt.timedelta(days=cfg.bronze.retention_days)
            # Every bronze table, also of a source whose landing folder is empty now.
            for table in (*T.BRONZE.values(), T.QUARANTINE):
                lake.expire(table, INGESTED_AT, oldest)
        rows = sm.run_rows(summaries, tracker.key, cfg.run_date, ingested_at)
        append(lake, rows, sm.RUNS_SCHEMA, T.INGEST_RUNS)
        tracker.log_metrics(sm.metrics(summaries))
        tracker.log_dict({d: asdict(s) for d, s in summaries.items()}, "ingest_summary.json")
    print(sm.render(summaries))
    progress.finish()
    failed = [s for s in summaries.values() if s.error]
    if failed:
        raise DatasetFailed("; ".join(s.error for s in failed))
    return summaries


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
