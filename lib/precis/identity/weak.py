"""Weak identifiers outside the strong graph: attached to a person, or left alone.

A weak identifier attaches to the cluster it was seen with most, if that cluster holds
``weak_min_share`` of its records; one seen with several people and no clear winner
stays on its own (``weak_ambiguous``), so it never bridges two people. Weak identifiers
with no strong link follow attached weak ones for ``weak_rounds`` rounds. Per-person
caps hold for weak types too (``type_limit``).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ID_TYPE
from precis.frames import kept, materialize
from precis.identity.id_types import is_strong, max_per_person
from precis.identity.settings import IdentityConfig


def attach_weak(
    weak_edges: DataFrame, strong: DataFrame, settings: IdentityConfig
) -> tuple[DataFrame, DataFrame, list[DataFrame]]:
    """(attached: node, cluster; isolated: node; audit frames).

    weak_edges: node (weak), id_type, other, other_type, weight, last_seen. Round 0
    attaches to strong clusters; later rounds follow weak identifiers attached before.
    Each round's decisions are materialized once (one Spark job per round).
    """
    spark = strong.sparkSession
    attached = spark.createDataFrame(
        [], "node long, id_type string, cluster long, records long, last_seen timestamp"
    )
    settled = spark.createDataFrame([], "node long")
    audits: list[DataFrame] = []
    anchors = strong.select(F.col("node").alias("other"), "cluster")
    # Every round reads the weak edges, and a round's decision reads its evidence three
    # times (chosen, ambiguous, over the cap): both are kept, not recomputed.
    with kept(weak_edges) as (weak_edges,):
        for round_no in range(settings.weak_rounds + 1):
            candidates = (
                weak_edges
                if round_no == 0
                else weak_edges.filter(~is_strong(settings, "other_type"))
            )
            evidence = (
                candidates.join(anchors, "other", how="inner")
                .join(settled, "node", how="left_anti")
                .groupBy("node", ID_TYPE, "cluster")
                .agg(F.sum("weight").alias("records"), F.max("last_seen").alias("last_seen"))
            )
            with kept(evidence) as (evidence,):
                decisions, counter = materialize(
                    _decide(evidence, attached, settings),
                    [F.count_if(F.col("status") == "attached").alias("attached")],
                )
            audits.append(
                decisions.filter(F.col("status") != "attached").select(
                    F.col("status").alias("guard"),
                    "node",
                    F.lit(None).cast("long").alias("other"),
                    "detail",
                    "records",
                )
            )
            attached = attached.unionByName(
                decisions.filter(F.col("status") == "attached").select(*attached.columns)
            )
            settled = settled.unionByName(decisions.select("node"))
            anchors = attached.select(F.col("node").alias("other"), "cluster")
            # Nothing attached: the next round would have no new anchors to follow.
            if not counter["attached"]:
                break
    isolated = settled.join(attached.select("node"), "node", how="left_anti")
    return attached.select("node", "cluster"), isolated, audits


def _decide(evidence: DataFrame, attached: DataFrame, settings: IdentityConfig) -> DataFrame:
    """node, id_type, cluster, records, last_seen, status, detail: ``attached``,
    ``weak_ambiguous`` (no cluster holds the minimum share) or ``type_limit``."""
    chosen, ambiguous = _choose(evidence, settings.weak_min_share)
    within, over = _weak_limits(chosen, attached, settings)
    return (
        within.select(
            "*", F.lit("attached").alias("status"), F.lit(None).cast("string").alias("detail")
        )
        .unionByName(
            over.select(
                "*",
                F.lit("type_limit").alias("status"),
                F.lit("its person already has the most values of this type").alias("detail"),
            )
        )
        .unionByName(
            ambiguous.select(
                "node",
                ID_TYPE,
                F.lit(None).cast("long").alias("cluster"),
                "records",
                F.lit(None).cast("timestamp").alias("last_seen"),
                F.lit("weak_ambiguous").alias("status"),
                F.format_string(
                    "seen with %d people; the top one holds %.2f of its records",
                    "people",
                    "top_share",
                ).alias("detail"),
            )
        )
    )


def _choose(evidence: DataFrame, min_share: float) -> tuple[DataFrame, DataFrame]:
    """The cluster holding at least ``min_share`` of a weak node's records, else ambiguous."""
    by_node = Window.partitionBy("node")
    ranked = (
        evidence.select(
            "*",
            F.sum("records").over(by_node).alias("total"),
            F.count(F.lit(1)).over(by_node).alias("people"),
            F.row_number()
            .over(by_node.orderBy(F.desc("records"), F.desc("last_seen"), "cluster"))
            .alias("rank"),
        )
        .filter(F.col("rank") == 1)
        .withColumn("top_share", F.col("records") / F.col("total"))
    )
    chosen = ranked.filter(F.col("top_share") >= min_share).select(
        "node", ID_TYPE, "cluster", "records", "last_seen"
    )
    ambiguous = ranked.filter(F.col("top_share") < min_share).select(
        "node", ID_TYPE, "people", "top_share", F.col("total").alias("records")
    )
    return chosen, ambiguous


def _weak_limits(
    chosen: DataFrame, attached: DataFrame, settings: IdentityConfig
) -> tuple[DataFrame, DataFrame]:
    """Per-person caps on weak types: beyond the cap, the values with least evidence go.

    Values attached in earlier rounds hold their places.
    """
    cols = ["node", ID_TYPE, "cluster", "records", "last_seen"]
    both = attached.select(*cols, F.lit(True).alias("earlier")).unionByName(
        chosen.select(*cols, F.lit(False).alias("earlier"))
    )
    order = Window.partitionBy("cluster", ID_TYPE).orderBy(
        F.desc("earlier"), F.desc("records"), F.desc("last_seen"), "node"
    )
    ranked = (
        both.withColumn("rank", F.row_number().over(order))
        .withColumn("limit", max_per_person(settings))
        .filter(~F.col("earlier"))
    )
    within = F.col("limit").isNull() | (F.col("rank") <= F.col("limit"))
    return ranked.filter(within).select(*cols), ranked.filter(~within).select(*cols)
