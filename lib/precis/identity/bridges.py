"""Weak identifiers that join two strong clusters because the evidence says one person.

A person's strong identifiers do not always meet in one record: a member who signed up
with a phone, and who follows the shop on WeChat (a union id), may only ever be seen
with both through their own handset, logged in to the app sometimes as a member and
sometimes through WeChat. A weak identifier (a device, a cookie), or a group of weak
identifiers linked to each other outside the strong graph (a handset and the cookie of
its in-app browser), joins the strong clusters it was seen with when all of this holds
(``identity.weak_bridge``):

- it was seen with at least two and at most ``max_clusters`` clusters (a family tablet
  is seen with the whole family);
- with each of them in at least ``min_records`` records, with one of the cluster's
  identifiers;
- over spans close in time: its spans with each cluster (first to last record) overlap
  or lie at most ``max_gap_days`` apart, so a handset sold on to someone else does not
  join the two owners;
- the joined person stays within every ``max_per_person`` and never-link rule (two
  member ids are two people, whatever a shared device says).

Its links (and the group's links among itself) go to the greedy rebuild of
:mod:`precis.identity.limits` after every strong and bridging link, so the weakest
evidence is refused first. Refused, the group is shared: the clusters it touched are
joined again without it, and its identifiers go back to :mod:`precis.identity.weak`,
which attaches each to one side when that side holds most of its records. Every join
is a ``weak_bridge`` audit row per cluster joined, naming the group's identifier seen
most with it, the cluster's identifier, the records and the dates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ID_TYPE
from precis.frames import materialize, row_count
from precis.identity.limits import enforce_limits
from precis.identity.settings import IdentityConfig

#: Tiers of evidence in the greedy rebuild: strong links, then bridging types' links,
#: then the weak bridges of this module.
STRONG, BRIDGE, WEAK_BRIDGE = 0, 1, 2


def bridge_weak(
    weak_edges: DataFrame,
    strong: DataFrame,
    strong_links: DataFrame,
    typed: DataFrame,
    never: DataFrame,
    settings: IdentityConfig,
    components: Callable[[DataFrame, DataFrame], DataFrame],
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(strong: node, cluster with the bridges joined; bridged: node; audit rows).

    weak_edges: node (weak, outside the strong graph), id_type, other, other_type,
    weight, first_seen, last_seen. strong: node, cluster, within every limit.
    strong_links: the links ``strong`` was built from (``tier`` STRONG or BRIDGE).
    components: connected components (node, cluster) of (src, dst) links over (node)
    vertices. Returns ``strong`` itself and empty frames when nothing qualifies.
    """
    spark = strong.sparkSession
    none = spark.createDataFrame([], "node long")
    no_audit = spark.createDataFrame(
        [], "guard string, node long, other long, detail string, records long"
    )
    if not settings.weak_bridge.enabled:
        return strong, none, no_audit
    anchors = strong.select(F.col("node").alias("other"), "cluster")
    # Weak identifiers linked to each other outside the strong graph are judged together
    # (a phone's device and the cookie of its in-app browser): one anonymous group, named
    # by its smallest node. Most groups are a single identifier.
    among = weak_edges.join(anchors.select("other"), "other", how="left_anti")
    weak_nodes = weak_edges.select("node").distinct()
    grouped = components(
        among.select(F.col("node").alias("src"), F.col("other").alias("dst")), weak_nodes
    ).withColumnRenamed("cluster", "group")
    # Cut from their lineage here and below: each is read several times, and a plan
    # that nests the steps before grew large enough to run a test session's driver out
    # of heap while Spark described it.
    qualified, found = materialize(
        _qualified(weak_edges.join(grouped, "node", how="inner"), anchors, settings), [row_count()]
    )
    if not found["rows"]:
        return strong, none, no_audit
    audits = []
    while True:
        joined, bridged, refused, refused_groups = _join(
            qualified, grouped, weak_edges, strong, strong_links, typed, never, settings,
            components,
        )  # fmt: skip
        audits.append(refused)
        if refused_groups is None:
            audits.append(_audit(qualified, settings))
            break
        # A group with a refused link is shared after all: it leaves, and weak attachment
        # decides for each of its identifiers. The clusters it touched are joined again
        # without it: seen with three clusters, it may have joined two of them before the
        # third was refused (a family's tablet: the child's WeChat with one parent).
        # Taking links away breaks no limit, so the next round refuses nothing more.
        qualified, found = materialize(
            qualified.join(refused_groups, "group", how="left_anti"), [row_count()]
        )
        if not found["rows"]:
            joined, bridged = strong, none
            break
    audit, _ = materialize(functools.reduce(DataFrame.unionByName, audits), [])
    return joined, bridged, audit


def _join(
    qualified: DataFrame,
    grouped: DataFrame,
    weak_edges: DataFrame,
    strong: DataFrame,
    strong_links: DataFrame,
    typed: DataFrame,
    never: DataFrame,
    settings: IdentityConfig,
    components: Callable[[DataFrame, DataFrame], DataFrame],
) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame | None]:
    """One greedy rebuild: (strong with the qualified groups joined, the nodes of the
    groups that joined, the links refused, None), or, when the limits refused a link of
    some group, (strong unchanged, the groups' nodes, the links refused, those groups)."""
    anchors = strong.select(F.col("node").alias("other"), "cluster")
    members = grouped.join(qualified.select("group").distinct(), "group", how="inner")
    # The groups' links into the clusters and among themselves, as strong links of
    # the last tier; between clusters, only the links inside one cluster are
    # rebuilt, so a link refused before stays refused.
    into = weak_edges.join(members.select("node"), "node", how="left_semi")
    bridging = _as_links(
        into.join(anchors.select("other"), "other", how="left_semi").unionByName(
            into.join(
                members.select(F.col("node").alias("other")), "other", how="left_semi"
            ).filter(F.col("node") < F.col("other"))
        )
    )
    # Which clusters the groups could join: components of the graph of groups and the
    # clusters they touch (a cluster and a group are each named by their smallest
    # node, so a component of them is too). Only those are rebuilt.
    joined = components(
        qualified.select(F.col("group").alias("src"), F.col("cluster").alias("dst")),
        qualified.select(F.col("group").alias("node"))
        .union(qualified.select(F.col("cluster").alias("node")))
        .distinct(),
    )
    touched = strong.join(
        joined.select(F.col("node").alias("cluster"), F.col("cluster").alias("joined")),
        "cluster",
        how="inner",
    ).select("node", F.col("joined").alias("cluster"))
    groups = touched.unionByName(
        members.join(
            joined.select(F.col("node").alias("group"), "cluster"), "group", how="inner"
        ).select("node", "cluster")
    )
    inside = (
        strong_links.join(
            strong.withColumnsRenamed({"node": "src", "cluster": "c1"}), "src", how="inner"
        )
        .join(strong.withColumnsRenamed({"node": "dst", "cluster": "c2"}), "dst", how="inner")
        .filter(F.col("c1") == F.col("c2"))
        .join(touched.select(F.col("node").alias("src")), "src", how="left_semi")
        .select(*bridging.columns)
    )
    groups, _ = materialize(groups, [])
    candidates, _ = materialize(inside.unionByName(bridging), [])
    rebuilt, refused = enforce_limits(groups, candidates, typed, never, settings)
    refused_groups, found = materialize(
        refused.select("node")
        .union(refused.select(F.col("other").alias("node")))
        .join(members, "node", how="inner")
        .select("group")
        .distinct(),
        [row_count()],
    )
    if found["rows"]:
        return strong, members.select("node"), refused, refused_groups
    renamed = rebuilt.select(
        "node", F.min("node").over(Window.partitionBy("cluster")).alias("cluster")
    )
    joined, _ = materialize(
        strong.join(touched.select("node"), "node", how="left_anti").unionByName(renamed), []
    )
    bridged, _ = materialize(members.select("node"), [])
    return joined, bridged, refused, None


def _as_links(edges: DataFrame) -> DataFrame:
    """Weak edges (node, id_type, other, other_type, ...) as links of the last tier, in
    the columns of the strong links (src < dst)."""
    forward = F.col("node") < F.col("other")
    return edges.select(
        F.least("node", "other").alias("src"),
        F.greatest("node", "other").alias("dst"),
        F.when(forward, F.col(ID_TYPE)).otherwise(F.col("other_type")).alias("src_type"),
        F.when(forward, F.col("other_type")).otherwise(F.col(ID_TYPE)).alias("dst_type"),
        "weight",
        "first_seen",
        "last_seen",
        F.lit(False).alias("forced"),
        F.lit(WEAK_BRIDGE).alias("tier"),
    )


def _qualified(edges: DataFrame, anchors: DataFrame, settings: IdentityConfig) -> DataFrame:
    """group, cluster, records, first_seen, last_seen, via, top, people: one row per
    (weak group, cluster) of the groups that pass the evidence test.

    edges: weak edges with the ``group`` of their weak end. records: the most records one
    identifier of the group (``via``) shares with one identifier of the cluster (``top``),
    so one record carrying a member id and a phone counts once.
    """
    rule = settings.weak_bridge
    evidence = (
        edges.join(anchors, "other", how="inner")
        .groupBy("group", "cluster")
        .agg(
            F.max(
                F.struct(
                    "weight",
                    (-F.col("node")).alias("a"),
                    (-F.col("other")).alias("b"),
                    "node",
                    "other",
                )
            ).alias("best"),
            F.min("first_seen").alias("first_seen"),
            F.max("last_seen").alias("last_seen"),
        )
        .select(
            "group",
            "cluster",
            F.col("best.weight").alias("records"),
            F.col("best.node").alias("via"),
            F.col("best.other").alias("top"),
            "first_seen",
            "last_seen",
        )
    )
    by_group = Window.partitionBy("group")
    return (
        evidence.select(
            "*",
            F.count(F.lit(1)).over(by_group).alias("people"),
            F.min("records").over(by_group).alias("least"),
            F.max("first_seen").over(by_group).alias("latest_start"),
            F.min("last_seen").over(by_group).alias("earliest_end"),
        )
        .filter(
            (F.col("people") >= 2)
            & (F.col("people") <= rule.max_clusters)
            & (F.col("least") >= rule.min_records)
            & (
                F.col("latest_start")
                <= F.col("earliest_end") + F.make_dt_interval(F.lit(rule.max_gap_days))
            )
        )
        .drop("least", "latest_start", "earliest_end")
    )


def _audit(bridges: DataFrame, settings: IdentityConfig) -> DataFrame:
    """One ``weak_bridge`` row per (group, cluster joined), at the group's identifier
    seen most with the cluster."""
    return bridges.select(
        F.lit("weak_bridge").alias("guard"),
        F.col("via").alias("node"),
        F.col("top").alias("other"),
        F.format_string(
            "joined %d clusters seen with it (at most %d, each in %d records or more, "
            "at most %d days apart); here in %d records from %s to %s",
            "people",
            F.lit(settings.weak_bridge.max_clusters),
            F.lit(settings.weak_bridge.min_records),
            F.lit(settings.weak_bridge.max_gap_days),
            "records",
            F.to_date("first_seen").cast("string"),
            F.to_date("last_seen").cast("string"),
        ).alias("detail"),
        F.col("records").cast("long").alias("records"),
    )
