"""Stable ``one_id``: this run's clusters named after the previous run's ids.

Every old id picks an heir: the new cluster holding most of its identifiers (ties: the
cluster seen first, then the smaller cluster key). Every new cluster keeps, among the
old ids whose heir it is, the one it shares most identifiers with (ties: the oldest id).
So an unchanged cluster keeps its id exactly, a merge keeps the id with the largest
overlap, and a split leaves the id with the largest fragment. Changes:

- ``merged``: an old id whose heir kept another id (``related_one_id`` = the survivor);
- ``split``: a new id for a fragment of an old id that went elsewhere (``related_one_id``
  = the old id it shared most with);
- ``created``: a new id for identifiers never seen before;
- ``deleted``: an old id none of whose identifiers exist any more.

New ids are opaque (``p`` + 20 hex digits of SHA-256 over run date and cluster key), the
same on a rerun of the same run date, and never reuse an id issued before.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ONE_ID, RUN_DATE
from precis.frames import cut
from precis.identity.records import node_id

CHANGE_SCHEMA = "change string, one_id string, related_one_id string, identifiers long"
CHANGES = ("created", "merged", "split", "deleted")


def new_id(run_date: dt.date, salt: int = 0) -> F.Column:
    text = F.concat_ws(
        "|", F.lit(run_date.isoformat()), F.lit(str(salt)), F.col("cluster").cast("string")
    )
    return F.concat(F.lit("p"), F.substring(F.sha2(text, 256), 1, 20))


def history(
    identity_map: DataFrame | None, changes: DataFrame | None, run_date: dt.date
) -> tuple[DataFrame | None, DataFrame | None, DataFrame | None]:
    """(previous, created, issued) for :func:`assign` from the last run's
    ``gold/identity_map`` and ``gold/identity_changes`` (None: not written yet).

    The job writes the run date's changes before the map. Ids born on the run date but
    absent from the map were issued by a run of this date that died before writing the
    map: not counted as issued, so the rerun names those clusters the same again."""
    if identity_map is None:
        return None, None, None
    previous = identity_map.select(node_id().alias("node"), ONE_ID)
    if changes is None:
        return previous, None, previous.select(ONE_ID).distinct()
    born = changes.filter(F.col("change").isin("created", "split"))
    created = born.groupBy(ONE_ID).agg(F.min("changed_at").alias("created_at"))
    before = born.filter(F.col(RUN_DATE) < F.lit(run_date))
    issued = before.select(ONE_ID).union(previous.select(ONE_ID)).distinct()
    return previous, created, issued


def assign(
    current: DataFrame,
    previous: DataFrame | None,
    created: DataFrame | None,
    issued: DataFrame | None,
    run_date: dt.date,
) -> tuple[DataFrame, DataFrame]:
    """(node -> one_id, changes).

    current: node, cluster, first_seen (this run). previous: node, one_id (last run's map).
    created: one_id, created_at (when each id was issued). issued: one_id (every id ever
    issued, so none is reused).
    """
    spark = current.sparkSession
    info = current.groupBy("cluster").agg(
        F.count(F.lit(1)).alias("size"), F.min("first_seen").alias("first_seen")
    )
    if previous is None:
        previous = spark.createDataFrame([], "node long, one_id string")
    if created is None:
        created = spark.createDataFrame([], "one_id string, created_at timestamp")

    overlap = (
        current.join(previous, "node", how="inner")
        .groupBy("cluster", ONE_ID)
        .agg(F.count(F.lit(1)).alias("shared"))
    )
    heir_order = Window.partitionBy(ONE_ID).orderBy(
        F.desc("shared"), F.asc_nulls_last("first_seen"), "cluster"
    )
    heirs = (
        overlap.join(info, "cluster", how="inner")
        .withColumn("rank", F.row_number().over(heir_order))
        .filter(F.col("rank") == 1)
        .select("cluster", ONE_ID, "shared")
        .join(created, ONE_ID, how="left")
    )
    keep_order = Window.partitionBy("cluster").orderBy(
        F.desc("shared"), F.asc_nulls_last("created_at"), ONE_ID
    )
    ranked = cut(heirs.withColumn("rank", F.row_number().over(keep_order)))
    kept = ranked.filter(F.col("rank") == 1).select("cluster", ONE_ID)
    survivors = kept.withColumnRenamed(ONE_ID, "related_one_id")
    merged = (
        ranked.filter(F.col("rank") > 1)
        .join(survivors, "cluster", how="inner")
        .select(
            F.lit("merged").alias("change"),
            ONE_ID,
            "related_one_id",
            F.col("shared").alias("identifiers"),
        )
    )

    fresh = _new_ids(info.join(kept, "cluster", how="left_anti"), issued, run_date)
    origin_order = Window.partitionBy("cluster").orderBy(F.desc("shared"), ONE_ID)
    origin = (
        overlap.join(fresh.select("cluster"), "cluster", how="left_semi")
        .withColumn("rank", F.row_number().over(origin_order))
        .filter(F.col("rank") == 1)
        .select("cluster", F.col(ONE_ID).alias("related_one_id"))
    )
    born = fresh.join(origin, "cluster", how="left").select(
        F.when(F.col("related_one_id").isNull(), F.lit("created"))
        .otherwise(F.lit("split"))
        .alias("change"),
        ONE_ID,
        "related_one_id",
        F.col("size").alias("identifiers"),
    )
    gone = (
        previous.select(ONE_ID)
        .distinct()
        .join(overlap.select(ONE_ID), ONE_ID, how="left_anti")
        .select(
            F.lit("deleted").alias("change"),
            ONE_ID,
            F.lit(None).cast("string").alias("related_one_id"),
            F.lit(0).cast("long").alias("identifiers"),
        )
    )
    names = kept.unionByName(fresh.select("cluster", ONE_ID))
    mapping = current.join(names, "cluster", how="inner").select("node", "cluster", ONE_ID)
    return mapping, merged.unionByName(born).unionByName(gone)


def _new_ids(clusters: DataFrame, issued: DataFrame | None, run_date: dt.date) -> DataFrame:
    """cluster, size, one_id for clusters that inherit nothing; re-salted on the rare
    clash with an id issued before (a rerun of the same run date after a split)."""
    named = cut(clusters.withColumn(ONE_ID, new_id(run_date)))
    if issued is None:
        return named
    for salt in range(1, 10):
        clash = named.join(issued, ONE_ID, how="left_semi").select("cluster")
        if clash.isEmpty():
            return named
        fixed = named.join(clash, "cluster", how="left_semi").withColumn(
            ONE_ID, new_id(run_date, salt)
        )
        named = cut(named.join(clash, "cluster", how="left_anti").unionByName(fixed))
    raise RuntimeError("could not find unused one_ids after 10 attempts")
