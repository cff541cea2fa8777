"""ingest: landing files -> bronze (as landed + lineage) -> silver (typed, clean, hashed).

Incremental and idempotent: a registry of ingested (and rejected) files
(``meta/ingest_files``) means a rerun over the same files does nothing; a new or
rewritten file replaces exactly its own rows in bronze and quarantine; silver is MERGEd
on the contract's keys, where a late-arriving older copy of a record never overwrites a
newer one. Which files a batch takes is ``precis.ingest.landing.next_batch``; bronze to
silver is ``precis.ingest.build_batch``; the accounting is ``precis.ingest.summary``.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Sequence
from dataclasses import asdict

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.columns import INGESTED_AT
from precis.config import DATASETS, Config
from precis.frames import SPILLED, kept, materialize
from precis.ingest import batch as ib
from precis.ingest import conform, protect
from precis.ingest import summary as sm
from precis.ingest.batch import DatasetFailed
from precis.ingest.files import Rejected
from precis.ingest.landing import Batch, landed_files, next_batch, present_datasets, read_through
from precis.keys import job_key
from precis.progress import Progress, log
from precis.runner import job_main, one_writer
from precis.schemas import SPECS
from precis.storage import Lakehouse, LandingFile
from precis.tracking import job_run

JOB = "ingest"


def ingest_dataset(
    spark: SparkSession,
    cfg: Config,
    lake: Lakehouse,
    dataset: str,
    batch: Batch,
    settings: conform.IdentifierSettings,
    suppressions: DataFrame | None,
    run_id: str,
    ingested_at: dt.datetime,
) -> sm.Summary:
    spec, fmt, where = SPECS[dataset], cfg.landing_format(dataset), cfg.landing_path(dataset)
    landed, columns = batch.landed, batch.columns
    assert landed is not None  # the caller reads batches with files only
    # Bronze: the batch as landed, PII hashed; replacing this batch's own files keeps
    # reruns exact. Forgotten people's rows stop here (meta/suppressions).
    paths = None if fmt == "delta" else landed.select(conform.SOURCE_FILE).distinct().collect()
    condition = ib.batch_condition(None if paths is None else [r[0] for r in paths], where)
    lineage = (columns, run_id, F.lit(ingested_at))
    staged = protect.stage(landed, spec, settings, lineage, suppressions, cfg.bronze.keep_plain_pii)
    lake.replace_where(staged.bronze, T.BRONZE[dataset], condition, evolve=True)
    suppressed = int(staged.observation.get.get(protect.SUPPRESSED) or 0)
    out = ib.build_batch(staged.batch, spec, settings, conform.ValueChecks.of(cfg.ingest))
    with kept(out.typed, level=SPILLED) as (typed,):
        counts = ib.batch_counts(typed.agg(*out.batch_metrics).collect()[0].asDict())
        # Rewriting a file must also drop its old quarantine rows, so write even when
        # this batch has none, unless there is no quarantine table at all yet.
        if counts.quarantined or lake.exists(T.QUARANTINE):
            where_batch = f"dataset = '{dataset}' AND {condition}"
            lake.replace_where(out.quarantine, T.QUARANTINE, where_batch, evolve=True)
        silver, found = materialize(
            out.silver, out.silver_metrics, how="persist", storage_level=SPILLED
        )
        try:
            lake.add_new_columns(T.SILVER[dataset], silver.schema)  # optional columns added later
            merged = lake.merge_upsert(silver, T.SILVER[dataset], unique=True)  # deduplicated
        finally:
            silver.unpersist()
    return sm.accounted(dataset, len(batch.files), counts, found, merged, suppressed)


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
                            ingest_dataset, spark, cfg, lake, dataset, settings=settings,
                            suppressions=suppressions, run_id=tracker.key, ingested_at=ingested_at,
                        )  # fmt: skip
                        got, batch = read_through(spark, cfg, lake, dataset, batch, job)
                        summary = got or summary
                        done[dataset] = batch.files
                    rejected[dataset] = batch.rejected
                    summary.skipped(batch.rejected, len(batch.waiting))
                except DatasetFailed as exc:
                    summary.error = str(exc)
                    log.error("[%s] %s", JOB, exc)
                summaries[dataset] = summary
                step.rows = summary.rows_in if summary.files else None
                step.detail = summary.describe()
        # Written last: if a run dies before this, the rerun redoes those files, which
        # every step above makes harmless.
        if done or any(rejected.values()):
            files = sm.file_rows(done, rejected, tracker.key, ingested_at)
            append(lake, files, sm.FILES_SCHEMA, T.INGEST_FILES)
        if cfg.bronze.retention_days:  # bronze keeps landed rows this long, then forgets
            oldest = cfg.run_date - dt.timedelta(days=cfg.bronze.retention_days)
            for table in (*(T.BRONZE[d] for d in present), T.QUARANTINE):
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
