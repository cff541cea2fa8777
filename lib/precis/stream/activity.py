"""A micro-batch of landed events and orders -> activity rows, each resolved to a person.

Landed rows go through ingest's own steps (``protect.stage``: PII hashed, forgotten
people's rows dropped; ``batch.build_batch``: typed, quarantine reasons, identifiers
normalized and keyed, one row per key), so the stream and the batch layer agree on every
value; rows with a quarantine reason are counted, and left for ingest to quarantine.

An activity row is one event or one paid order: ``dataset``, ``activity_id`` (event_id or
order_id), ``at`` (its event time), the identifier (``id_type``, ``id_key``), ``kind``
(the event type, ``order`` for an order), ``item_id``, ``channel`` and ``landed_at`` (the
landed file's modification time, for latency). ``resolve`` adds ``one_id`` through
``gold/identity_map``; an identifier the map has not seen gets a provisional one_id
(``tmp_`` + a hash of the key), replaced once an identity run has mapped it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import (
    ID_KEY,
    ID_TYPE,
    ITEM_ID,
    LANDED_AT,
    ONE_ID,
    ORDER_ID,
    SOURCE_FILE,
    STREAM_DATASET,
)
from precis.identity.resolve import PROVISIONAL as PROVISIONAL
from precis.identity.resolve import provisional_id
from precis.ingest import batch as ib
from precis.ingest import conform, protect
from precis.ingest import identifiers as ids
from precis.schemas import SPECS

#: Streamed datasets and, for each, its id and time columns.
DATASETS = {"events": ("event_id", "event_time"), "orders": (ORDER_ID, "order_time")}
ORDER_KIND = "order"
COLUMNS = (
    "dataset",
    "activity_id",
    "at",
    ID_TYPE,
    ID_KEY,
    "kind",
    ITEM_ID,
    "channel",
    "landed_at",
)


@dataclass(frozen=True)
class Conformed:
    activity: DataFrame  # ``COLUMNS``: the valid rows (paid orders only)
    rejected: DataFrame  # one row per landed row with a quarantine reason: ``dataset``


def conformed(
    raw: DataFrame,
    columns: dict[str, list[str]],
    settings: conform.IdentifierSettings,
    checks: conform.ValueChecks,
    suppressions: DataFrame | None,
    seen_at: dt.datetime,
) -> Conformed:
    """``raw`` (the source's rows: ``_dataset``, the landed columns of each dataset as
    ``columns`` lists them, ``_source_file``, ``_landed_at``) as activity rows."""
    parts, rejected = [], []
    for dataset, landed in columns.items():
        spec = SPECS[dataset]
        rows = raw.filter(F.col(STREAM_DATASET) == dataset)
        lineage = (landed, "stream", F.lit(seen_at))
        staged = protect.stage(rows.select(*landed, SOURCE_FILE), spec, settings, lineage,
                               suppressions, keep_plain_pii=False)  # fmt: skip
        out = ib.build_batch(staged.batch, spec, settings, checks)
        rejected.append(out.quarantine.select(F.lit(dataset).alias("dataset")))
        files = rows.select(SOURCE_FILE, LANDED_AT).distinct()
        silver = out.silver.filter(F.col("id_status") == ids.STATUS_OK).join(
            F.broadcast(files), SOURCE_FILE, how="left"
        )
        parts.append(_activity(silver, dataset))
    activity, bad = parts[0], rejected[0]
    for part, more in zip(parts[1:], rejected[1:], strict=True):
        activity, bad = activity.unionByName(part), bad.unionByName(more)
    return Conformed(activity, bad)


def _activity(silver: DataFrame, dataset: str) -> DataFrame:
    key, time = DATASETS[dataset]
    if dataset == "orders":
        silver = silver.filter(F.col("status") == "paid")
        kind: Column = F.lit(ORDER_KIND)
        item: Column = F.lit(None).cast("string")
    else:
        kind, item = F.col("event_type"), F.col(ITEM_ID)
    return silver.select(
        F.lit(dataset).alias("dataset"),
        F.col(key).alias("activity_id"),
        F.col(time).alias("at"),
        ID_TYPE,
        ID_KEY,
        kind.alias("kind"),
        item.alias(ITEM_ID),
        F.col("channel"),
        F.col(LANDED_AT).alias("landed_at"),
    )


def resolve(
    activity: DataFrame, identity_map: DataFrame | None, isolated: DataFrame | None = None
) -> DataFrame:
    """``activity`` with ``one_id`` and ``provisional`` (true: the map lacks the
    identifier); rows of identifiers the identity guards isolate (``isolated``: a store
    hotline, say) belong to nobody and are left out, as in the batch jobs."""
    if isolated is not None:
        activity = activity.join(
            F.broadcast(isolated.select(ID_TYPE, ID_KEY).distinct()),
            [ID_TYPE, ID_KEY],
            how="left_anti",
        )
    if identity_map is None:
        mapped = activity.withColumn(ONE_ID, F.lit(None).cast("string"))
    else:
        people = identity_map.select(ID_TYPE, ID_KEY, ONE_ID)
        mapped = activity.drop(ONE_ID, "provisional").join(people, [ID_TYPE, ID_KEY], how="left")
    return mapped.withColumn("provisional", F.col(ONE_ID).isNull()).withColumn(
        ONE_ID, F.coalesce(F.col(ONE_ID), provisional_id(F.col(ID_TYPE), F.col(ID_KEY)))
    )
