"""A landed batch's writes: bronze, then silver, and its part of the run's one
quarantine write (``precis.jobs.ingest`` runs them per dataset, in that order)."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import Config
from precis.frames import SPILLED, kept, materialize
from precis.ingest import batch as ib
from precis.ingest import conform, protect
from precis.ingest import summary as sm
from precis.ingest.landing import Batch
from precis.schemas import SPECS
from precis.storage import Lakehouse


def ingest_dataset(
    cfg: Config,
    lake: Lakehouse,
    dataset: str,
    batch: Batch,
    settings: conform.IdentifierSettings,
    suppressions: DataFrame | None,
    run_id: str,
    ingested_at: dt.datetime,
) -> tuple[sm.Summary, ib.Quarantined]:
    """Bronze and silver of one batch of ``dataset``: its accounting, and its part of the
    run's quarantine write."""
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
        silver, found = materialize(
            out.silver, out.silver_metrics, how="persist", storage_level=SPILLED
        )
        try:
            lake.add_new_columns(T.SILVER[dataset], silver.schema)  # optional columns added later
            merged = lake.merge_upsert(silver, T.SILVER[dataset], unique=True)  # deduplicated
        finally:
            silver.unpersist()
        # Kept past ``typed`` for the run's one quarantine write (``write_quarantine``).
        rows = None
        if counts.quarantined:
            rows = materialize(out.quarantine, [], how="persist", storage_level=SPILLED)[0]
    summary = sm.accounted(dataset, len(batch.files), counts, found, merged, suppressed)
    return summary, ib.Quarantined(f"dataset = '{dataset}' AND {condition}", rows)


def write_quarantine(lake: Lakehouse, batches: list[ib.Quarantined]) -> None:
    """The written batches' quarantine rows in one commit, each batch's replacing its
    stored ones: a rewritten file's old rows go even when it now has none."""
    rows, condition = ib.quarantine_write(batches)
    try:
        if rows is not None:
            lake.replace_where(rows, T.QUARANTINE, condition, evolve=True)
        elif batches:
            lake.delete_where(T.QUARANTINE, condition)
    finally:
        for batch in batches:
            if batch.rows is not None:
                batch.rows.unpersist()
