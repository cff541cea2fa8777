"""Links between identifiers seen in one record, and the identifiers linked too widely.

A link's weight is the number of ``id_observations`` records that saw both ends. An
identifier linked to more distinct values of one strong type than its type's
``max_linked`` (a hotline phone, a cafe cookie) is unreliable: it links nothing.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_TYPE, RECORD_ID
from precis.identity.id_types import is_strong, max_linked, owned_link
from precis.identity.settings import IdentityConfig


def record_links(records: DataFrame, max_ids: int) -> tuple[DataFrame, DataFrame]:
    """(links, oversized records).

    links: src < dst node ids with their types, ``weight`` (records that saw both),
    ``first_seen`` and ``last_seen``. Records carrying more than ``max_ids`` identifiers link nothing.
    """
    observed = (
        records.filter(F.col("dataset") == "id_observations")
        .select("source", RECORD_ID, "node", ID_TYPE, "seen_at")
        .dropDuplicates(["source", RECORD_ID, "node"])
    )
    sizes = observed.groupBy("source", RECORD_ID).agg(F.count(F.lit(1)).alias("ids"))
    oversized = sizes.filter(F.col("ids") > max_ids)
    kept = observed.join(
        oversized.select("source", RECORD_ID), ["source", RECORD_ID], how="left_anti"
    )
    a = kept.select(
        "source",
        RECORD_ID,
        F.col("node").alias("src"),
        F.col(ID_TYPE).alias("src_type"),
        "seen_at",
    )
    b = kept.select(
        "source", RECORD_ID, F.col("node").alias("dst"), F.col(ID_TYPE).alias("dst_type")
    )
    links = (
        a.join(b, ["source", RECORD_ID], how="inner")
        .filter(F.col("src") < F.col("dst"))
        .groupBy("src", "dst", "src_type", "dst_type")
        .agg(
            F.count(F.lit(1)).alias("weight"),
            F.min("seen_at").alias("first_seen"),
            F.max("seen_at").alias("last_seen"),
        )
    )
    return links, oversized


def both_ways(links: DataFrame) -> DataFrame:
    """node, id_type, other, other_type, weight, first_seen, last_seen: each link from
    both ends."""
    cols = ["weight", "first_seen", "last_seen"]
    return links.select(
        F.col("src").alias("node"),
        F.col("src_type").alias(ID_TYPE),
        F.col("dst").alias("other"),
        F.col("dst_type").alias("other_type"),
        *cols,
    ).unionByName(
        links.select(
            F.col("dst").alias("node"),
            F.col("dst_type").alias(ID_TYPE),
            F.col("src").alias("other"),
            F.col("src_type").alias("other_type"),
            *cols,
        )
    )


def over_linked(links: DataFrame, settings: IdentityConfig) -> DataFrame:
    """node, id_type, other_type, linked, records: identifiers linked to more distinct
    values of one strong type than their type's ``max_linked``, or to two values of the
    type their values belong to (``belongs_to``: an open id seen with two union ids)."""
    owned = owned_link(settings, ID_TYPE, "other_type", both_ways=False)
    return (
        both_ways(links)
        .filter(is_strong(settings, "other_type"))
        .groupBy("node", ID_TYPE, "other_type")
        .agg(F.count(F.lit(1)).alias("linked"), F.sum("weight").alias("records"))
        .filter((F.col("linked") > max_linked(settings)) | (owned & (F.col("linked") > 1)))
    )


def over_linked_blocks(over: DataFrame) -> DataFrame:
    """node, guard, detail, records: one ``over_linked`` block per identifier of
    :func:`over_linked`, naming every strong type it was linked to too often."""
    return (
        over.groupBy("node")
        .agg(
            F.concat_ws(
                "; ",
                F.collect_list(F.format_string("linked to %d %s values", "linked", "other_type")),
            ).alias("detail"),
            F.sum("records").alias("records"),
        )
        .select("node", F.lit("over_linked").alias("guard"), "detail", "records")
    )
