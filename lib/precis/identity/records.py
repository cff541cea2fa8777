"""Identified records: every (record, identifier) pair of the silver datasets.

``id_observations`` records keep their own ``(source, record_id)``; a row of
``events``, ``orders`` or ``touchpoints`` is a record of its dataset keyed by its id,
and a ``customers`` row is the record ``id_type:id_key`` (the hash, never the plain
value). Only identifiers with ``id_status = 'ok'`` take part; placeholders were blocked
at ingest.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ONE_ID, ORDER_ID, RECORD_ID
from precis.identity.id_types import priority
from precis.identity.settings import IdentityConfig

# A record's key, declared with the tables keyed by it.
from precis.tables import RECORD_KEYS as RECORD_KEYS

# dataset -> (source column or None for the dataset's name, record id, time column)
SOURCES: dict[str, tuple[str | None, Column | str, str]] = {
    "id_observations": ("source", RECORD_ID, "observed_at"),
    "events": (None, "event_id", "event_time"),
    "orders": (None, ORDER_ID, "order_time"),
    "touchpoints": (None, "touch_id", "touch_time"),
    "customers": (None, "_customer_key", "signup_time"),
}


def node_id(id_type: Column | str = ID_TYPE, id_key: Column | str = ID_KEY) -> Column:
    """A BIGINT per identifier: joins and the components step work on longs, not strings.

    Collisions are checked on every run (``check_node_ids``), not assumed away.
    """
    return F.xxhash64(
        F.col(id_type) if isinstance(id_type, str) else id_type,
        F.col(id_key) if isinstance(id_key, str) else id_key,
    )


def identified_records(silver: Mapping[str, DataFrame]) -> DataFrame:
    """dataset, source, record_id, id_type, id_key, seen_at, node: one row per record and
    valid identifier (a record of ``id_observations`` has several)."""
    parts = []
    for dataset, (source, record_id, seen_at) in SOURCES.items():
        df = silver.get(dataset)
        if df is None:
            continue
        if dataset == "customers":
            df = df.withColumn("_customer_key", F.concat_ws(":", ID_TYPE, ID_KEY))
        parts.append(
            df.filter((F.col("id_status") == "ok") & F.col(ID_KEY).isNotNull()).select(
                F.lit(dataset).alias("dataset"),
                (F.col(source) if source else F.lit(dataset)).alias("source"),
                F.col(record_id).alias(RECORD_ID)
                if isinstance(record_id, str)
                else record_id.alias(RECORD_ID),
                ID_TYPE,
                ID_KEY,
                F.col(seen_at).cast("timestamp").alias("seen_at"),
            )
        )
    if not parts:
        raise ValueError("no identified dataset given")
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out.withColumn("node", node_id())


def blocked_counts(silver: Mapping[str, DataFrame]) -> DataFrame:
    """Rows per dataset and identifier type whose identifier ingest blocked as a placeholder."""
    parts = [
        df.filter(F.col("id_status") == "blocked")
        .groupBy(ID_TYPE)
        .count()
        .withColumn("dataset", F.lit(name))
        for name, df in silver.items()
        if name in SOURCES
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def nodes(records: DataFrame) -> DataFrame:
    """node, id_type, id_key, first_seen, last_seen, records: one row per identifier."""
    return records.groupBy("node", ID_TYPE, ID_KEY).agg(
        F.min("seen_at").alias("first_seen"),
        F.max("seen_at").alias("last_seen"),
        F.count(F.lit(1)).alias("records"),
    )


def check_node_ids(nodes_df: DataFrame) -> list[tuple[int, int]]:
    """Node ids shared by two identifiers (a 64-bit hash collision): (node, identifiers)."""
    clashes = nodes_df.groupBy("node").count().filter(F.col("count") > 1).limit(10).collect()
    return [(r["node"], r["count"]) for r in clashes]


def record_one_ids(
    records: DataFrame,
    mapping: DataFrame,
    settings: IdentityConfig,
    nobody: DataFrame | None = None,
) -> DataFrame:
    """dataset, source, record_id, one_id: a record with several identifiers takes the
    one_id of its highest-priority identifier that is not isolated by a guard.

    mapping: node, one_id, isolated. nobody: node, identifiers that belong to nobody (an
    over-linked store hotline, an operator's block): a record carrying only such
    identifiers is nobody's known person, so it gets a one_id of its own
    (:func:`record_one_id`) rather than the one every hotline receipt would share.
    """
    order = Window.partitionBy(*RECORD_KEYS).orderBy(
        F.col("nobody").asc(), F.col("isolated").asc(), F.col("priority").asc(), F.col("node").asc()
    )
    flagged = (
        mapping.select("node", ONE_ID, "isolated", F.lit(False).alias("nobody"))
        if nobody is None
        else mapping.join(
            nobody.select("node", F.lit(True).alias("nobody")).distinct(), "node", how="left"
        ).select("node", ONE_ID, "isolated", F.coalesce("nobody", F.lit(False)).alias("nobody"))
    )
    return (
        records.select(*RECORD_KEYS, "node", ID_TYPE)
        .join(flagged, "node", how="inner")
        .withColumn("priority", priority(settings))
        .withColumn("rank", F.row_number().over(order))
        .filter(F.col("rank") == 1)
        .select(
            *RECORD_KEYS,
            F.when(F.col("nobody"), record_one_id()).otherwise(F.col(ONE_ID)).alias(ONE_ID),
        )
    )


#: The start of a record's own one_id (see :func:`record_one_ids`).
RECORD_ONE_ID = "r"


def record_one_id() -> Column:
    """A record's own one_id: ``r`` and 20 hex digits of SHA-256 over its key, the same
    on every run (person ids start with ``p``)."""
    key = F.concat_ws("|", *(F.col(c) for c in RECORD_KEYS))
    return F.concat(F.lit(RECORD_ONE_ID), F.substring(F.sha2(key, 256), 1, 20))
