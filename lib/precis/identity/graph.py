"""From identified records to people: links, guards and clusters.

1. **Links**: identifiers seen in one ``id_observations`` record are linked; a link's
   weight is the number of records that saw both.
2. **Guards** remove links before anything is joined:
   placeholder values were blocked at ingest; operators' rules block identifiers,
   forbid pairs (never_link) or add links (force_link); an identifier linked to more
   than ``max_linked`` distinct values of one strong type is unreliable and links nothing.
3. **Strong clusters**: connected components of the links between strong identifiers,
   forced links, and the links of *bridging* weak identifiers (``bridge: true``, a WeChat
   open id) to strong ones. A component that breaks a per-person limit (two member
   ids) or holds a never-linked pair is rebuilt greedily: links in order of evidence
   (forced first, then strong-to-strong, then bridging; within each most records, then
   most recent) are accepted only while every part stays within the limits, so the
   weakest evidence is what gets refused.
4. **Other weak identifiers** attach to the cluster they were seen with most, if that cluster
   holds ``weak_min_share`` of their records; one seen with several people and no clear
   winner stays on its own, so it never bridges two people. Weak identifiers with no
   strong link follow attached weak ones for ``weak_rounds`` rounds; the rest form
   anonymous people (a device and its cookies) among themselves.

Every identifier ends in exactly one cluster, named by its smallest node id. Guards
report what they removed as audit rows (:data:`AUDIT_SCHEMA`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precis.config import IdentityConfig
from precis.frames import materialize
from precis.identity.components import connected_components

AUDIT_SCHEMA = "guard string, id_type string, id_key string, other_type string, other_key string, detail string, records long"

# Persisted frames: reused by several later steps; spill rather than fail.
_KEEP = StorageLevel.MEMORY_AND_DISK


@dataclass(frozen=True)
class Resolution:
    clusters: DataFrame  # node, cluster, isolated (true: guarded, on its own by rule)
    audit: DataFrame  # AUDIT_SCHEMA without the node keys resolved: see audit_rows


def _type_map(cfg: IdentityConfig, value: Callable[[str], object], default: object) -> Column:
    """A SQL CASE over id_type: per-type settings as a column expression."""
    expr = None
    for id_type in sorted(cfg.types):
        v = value(id_type)
        branch = F.lit(v)
        expr = (
            F.when(F.col("id_type") == id_type, branch)
            if expr is None
            else expr.when(F.col("id_type") == id_type, branch)
        )
    return expr.otherwise(F.lit(default)) if expr is not None else F.lit(default)


def is_strong(cfg: IdentityConfig, col: str = "id_type") -> Column:
    strong = cfg.strong_types()
    return F.col(col).isin(*strong) if strong else F.lit(False)


def is_bridge(cfg: IdentityConfig, col: str = "id_type") -> Column:
    bridges = cfg.bridge_types()
    return F.col(col).isin(*bridges) if bridges else F.lit(False)


def priority(cfg: IdentityConfig) -> Column:
    return _type_map(cfg, lambda t: cfg.types[t].priority, 100)


# ------------------------------------------------------------------------------- links
def record_links(records: DataFrame, max_ids: int) -> tuple[DataFrame, DataFrame]:
    """(links, oversized records).

    links: src < dst node ids with their types, ``weight`` (records that saw both) and
    ``last_seen``. Records carrying more than ``max_ids`` identifiers link nothing.
    """
    observed = (
        records.filter(F.col("dataset") == "id_observations")
        .select("source", "record_id", "node", "id_type", "seen_at")
        .dropDuplicates(["source", "record_id", "node"])
    )
    sizes = observed.groupBy("source", "record_id").agg(F.count(F.lit(1)).alias("ids"))
    oversized = sizes.filter(F.col("ids") > max_ids)
    kept = observed.join(
        oversized.select("source", "record_id"), ["source", "record_id"], "left_anti"
    )
    a = kept.select(
        "source",
        "record_id",
        F.col("node").alias("src"),
        F.col("id_type").alias("src_type"),
        "seen_at",
    )
    b = kept.select(
        "source", "record_id", F.col("node").alias("dst"), F.col("id_type").alias("dst_type")
    )
    links = (
        a.join(b, ["source", "record_id"])
        .filter(F.col("src") < F.col("dst"))
        .groupBy("src", "dst", "src_type", "dst_type")
        .agg(F.count(F.lit(1)).alias("weight"), F.max("seen_at").alias("last_seen"))
    )
    return links, oversized


def _both_ways(links: DataFrame) -> DataFrame:
    """node, id_type, other, other_type, weight, last_seen: each link from both ends."""
    cols = ["weight", "last_seen"]
    return links.select(
        F.col("src").alias("node"),
        F.col("src_type").alias("id_type"),
        F.col("dst").alias("other"),
        F.col("dst_type").alias("other_type"),
        *cols,
    ).unionByName(
        links.select(
            F.col("dst").alias("node"),
            F.col("dst_type").alias("id_type"),
            F.col("src").alias("other"),
            F.col("src_type").alias("other_type"),
            *cols,
        )
    )


def over_linked(links: DataFrame, cfg: IdentityConfig) -> DataFrame:
    """node, id_type, other_type, linked: identifiers linked to more distinct values of
    one strong type than their type's ``max_linked`` (a hotline phone, a cafe cookie)."""
    return (
        _both_ways(links)
        .filter(is_strong(cfg, "other_type"))
        .groupBy("node", "id_type", "other_type")
        .agg(F.count(F.lit(1)).alias("linked"), F.sum("weight").alias("records"))
        .filter(F.col("linked") > _type_map(cfg, lambda t: cfg.types[t].max_linked, 5))
    )


# ------------------------------------------------------------------------ resolution
def resolve(
    nodes: DataFrame,
    links: DataFrame,
    cfg: IdentityConfig,
    *,
    blocked: DataFrame,
    never: DataFrame,
    force: DataFrame,
    on_iteration: Callable[[int, int], None] | None = None,
    checkpoint_dir: str | None = None,
) -> tuple[DataFrame, DataFrame]:
    """Cluster every node. Returns (clusters, audit).

    nodes: node, id_type (every identifier). links: see :func:`record_links`.
    blocked: node, guard, detail (identifiers that link nothing: rules, over-linked).
    never / force: src, dst node pairs from operators' rules (src < dst).
    checkpoint_dir: the session's reliable checkpoint directory, if any (see components).
    clusters: node, cluster, isolated. audit: guard, node, other, detail, records.
    """
    audits: list[DataFrame] = []
    blocked = blocked.dropDuplicates(["node"])
    blocked_ids = blocked.select("node")

    usable = links.join(blocked_ids.withColumnRenamed("node", "src"), "src", "left_anti").join(
        blocked_ids.withColumnRenamed("node", "dst"), "dst", "left_anti"
    )
    never_direct = usable.join(never.select("src", "dst"), ["src", "dst"], "left_semi")
    audits.append(_audit(never_direct, "never_link", "linked records, removed by rule"))
    usable = usable.join(never.select("src", "dst"), ["src", "dst"], "left_anti").persist(_KEEP)

    typed = nodes.select("node", "id_type")
    force = (
        force.join(blocked_ids.withColumnRenamed("node", "src"), "src", "left_anti")
        .join(blocked_ids.withColumnRenamed("node", "dst"), "dst", "left_anti")
        .join(typed.withColumnsRenamed({"node": "src", "id_type": "src_type"}), "src")
        .join(typed.withColumnsRenamed({"node": "dst", "id_type": "dst_type"}), "dst")
        .select(
            "src",
            "dst",
            "src_type",
            "dst_type",
            F.lit(0).cast("long").alias("weight"),
            F.lit(None).cast("timestamp").alias("last_seen"),
            F.lit(True).alias("forced"),
        )
    )
    audits.append(_audit(force, "force_link", "link added by rule"))

    # --- strong clusters: strong links, then bridging weak identifiers' links to strong ones
    strong_end = is_strong(cfg, "src_type") | is_strong(cfg, "dst_type")
    both_strong = is_strong(cfg, "src_type") & is_strong(cfg, "dst_type")
    bridge_link = strong_end & (is_bridge(cfg, "src_type") | is_bridge(cfg, "dst_type"))
    strong_links = (
        usable.filter(both_strong | bridge_link)
        .withColumns({"forced": F.lit(False), "bridge": ~both_strong})
        .unionByName(force.withColumn("bridge", F.lit(False)))
    )
    # In the strong graph: every strong identifier, and the bridging and forced ones linked into it.
    linked_in = strong_links.select(F.col("src").alias("node")).union(
        strong_links.select(F.col("dst").alias("node"))
    )
    strong_nodes = (
        nodes.filter(is_strong(cfg))
        .select("node")
        .union(linked_in)
        .distinct()
        .join(blocked_ids, "node", "left_anti")
        .persist(_KEEP)
    )
    components = _clusters_of(strong_links, strong_nodes, cfg, on_iteration, checkpoint_dir)
    strong, refused = _enforce_limits(components, strong_links, typed, never, cfg)
    strong = strong.persist(_KEEP)
    audits.append(refused)

    # --- weak identifiers outside the strong graph
    weak_links = usable.filter(~(both_strong | bridge_link))
    weak_edges = _both_ways(weak_links).join(strong_nodes, "node", "left_anti")
    attached, isolated, weak_audit = _attach_weak(weak_edges, strong, cfg)
    audits.extend(weak_audit)

    remaining = (
        nodes.select("node")
        .join(strong_nodes, "node", "left_anti")
        .join(blocked_ids, "node", "left_anti")
        .join(attached.select("node"), "node", "left_anti")
        .join(isolated.select("node"), "node", "left_anti")
    )
    anonymous_links = weak_links.join(
        remaining.withColumnRenamed("node", "src"), "src", "left_semi"
    ).join(remaining.withColumnRenamed("node", "dst"), "dst", "left_semi")
    anonymous = _clusters_of(anonymous_links, remaining, cfg, on_iteration, checkpoint_dir)

    alone = blocked_ids.union(isolated.select("node")).distinct()
    clusters = (
        strong.select("node", "cluster", F.lit(False).alias("isolated"))
        .unionByName(attached.select("node", "cluster", F.lit(False).alias("isolated")))
        .unionByName(anonymous.select("node", "cluster", F.lit(False).alias("isolated")))
        .unionByName(
            alone.select("node", F.col("node").alias("cluster"), F.lit(True).alias("isolated"))
        )
    )
    audit = audits[0]
    for part in audits[1:]:
        audit = audit.unionByName(part)
    audit = audit.unionByName(
        blocked.select(
            "guard", "node", F.lit(None).cast("long").alias("other"), "detail", "records"
        )
    )
    return clusters, audit


def _clusters_of(
    links: DataFrame,
    nodes: DataFrame,
    cfg: IdentityConfig,
    on_iteration: Callable[[int, int], None] | None,
    checkpoint_dir: str | None,
) -> DataFrame:
    """node, cluster: connected components of ``links`` (src, dst) over ``nodes`` (node)."""
    return connected_components(
        links.select("src", "dst"),
        nodes.select(F.col("node").alias("id")),
        checkpoint_interval=cfg.checkpoint_interval,
        max_iterations=cfg.max_iterations,
        on_iteration=on_iteration,
        checkpoint_dir=checkpoint_dir,
    ).select(F.col("id").alias("node"), F.col("component").alias("cluster"))


def _audit(links: DataFrame, guard: str, detail: str) -> DataFrame:
    return links.select(
        F.lit(guard).alias("guard"),
        F.col("src").alias("node"),
        F.col("dst").alias("other"),
        F.lit(detail).alias("detail"),
        F.col("weight").cast("long").alias("records"),
    )


# ---------------------------------------------------------------- per-person limits
def _enforce_limits(
    components: DataFrame,
    strong_links: DataFrame,
    typed: DataFrame,
    never: DataFrame,
    cfg: IdentityConfig,
) -> tuple[DataFrame, DataFrame]:
    """(node, cluster) within the limits, and audit rows of the links refused."""
    limits = {t: c.max_per_person for t, c in cfg.types.items() if c.max_per_person is not None}
    with_type = components.join(typed, "node")
    limit = _type_map(cfg, lambda t: cfg.types[t].max_per_person, None)
    over = (
        with_type.groupBy("cluster", "id_type")
        .count()
        .filter(F.col("count") > limit)
        .select("cluster")
    )
    never_inside = (
        never.join(components.withColumnsRenamed({"node": "src", "cluster": "c1"}), "src")
        .join(components.withColumnsRenamed({"node": "dst", "cluster": "c2"}), "dst")
        .filter(F.col("c1") == F.col("c2"))
    )
    bad = over.union(never_inside.select(F.col("c1").alias("cluster"))).distinct()
    bad = bad.persist(_KEEP)
    if bad.isEmpty():
        bad.unpersist()
        empty = components.sparkSession.createDataFrame(
            [], "guard string, node long, other long, detail string, records long"
        )
        return components, empty

    in_bad = components.join(bad, "cluster", "left_semi")
    edges = strong_links.join(in_bad.withColumnRenamed("node", "src"), "src").select(
        "cluster",
        "src",
        "dst",
        "src_type",
        "dst_type",
        "weight",
        F.coalesce(F.unix_seconds("last_seen"), F.lit(0)).alias("last_seen"),
        "forced",
        "bridge",
        F.lit("link").alias("kind"),
    )
    pairs = never_inside.select(
        F.col("c1").alias("cluster"),
        "src",
        "dst",
        F.lit(None).cast("string").alias("src_type"),
        F.lit(None).cast("string").alias("dst_type"),
        F.lit(0).cast("long").alias("weight"),
        F.lit(0).cast("long").alias("last_seen"),
        F.lit(False).alias("forced"),
        F.lit(False).alias("bridge"),
        F.lit("never").alias("kind"),
    )
    # No built-in does order-dependent merging under constraints; only the few
    # components that break a limit go through Python, one component per call.
    rebuilt = (
        edges.unionByName(pairs)
        .groupBy("cluster")
        .applyInPandas(
            _greedy_merge(limits), "kind string, node long, cluster long, other long, detail string"
        )
        .persist(_KEEP)
    )
    fixed = rebuilt.filter(F.col("kind") == "node").select("node", "cluster")
    refused = rebuilt.filter(F.col("kind") != "node").select(
        F.col("kind").alias("guard"),
        "node",
        "other",
        "detail",
        F.lit(None).cast("long").alias("records"),
    )
    kept = components.join(bad, "cluster", "left_anti").unionByName(fixed)
    return kept, refused


def _greedy_merge(limits: dict[str, int]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def merge(group: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            list(greedy_clusters(group, limits)),
            columns=["kind", "node", "cluster", "other", "detail"],
        )

    return merge


def greedy_clusters(group: pd.DataFrame, limits: dict[str, int]) -> Iterator[tuple]:
    """Union-find over one component's links in order of evidence, refusing a link when
    the merged person would break a per-type limit or join a never-linked pair.

    Yields ("node", node, cluster, None, None) for every node and
    (guard, node, other, None, detail) for every refused link.
    """
    # Forced links first, then strong-to-strong links, then bridging weak identifiers'
    # links; within each, most records, then most recent.
    links = group[group["kind"] == "link"].sort_values(
        ["forced", "bridge", "weight", "last_seen", "src", "dst"],
        ascending=[False, True, False, False, True, True],
    )
    never: dict[int, set[int]] = {}
    for a, b in group.loc[group["kind"] == "never", ["src", "dst"]].itertuples(index=False):
        never.setdefault(int(a), set()).add(int(b))
        never.setdefault(int(b), set()).add(int(a))

    parent: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    counts: dict[int, dict[str, int]] = {}
    forbidden: dict[int, set[int]] = {}

    def add(node: int, id_type: str) -> None:
        if node not in parent:
            parent[node] = node
            members[node] = [node]
            counts[node] = {id_type: 1}
            forbidden[node] = set(never.get(node, ()))

    def find(node: int) -> int:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for src, dst, src_type, dst_type, forced in links[
        ["src", "dst", "src_type", "dst_type", "forced"]
    ].itertuples(index=False):
        src, dst = int(src), int(dst)
        add(src, src_type)
        add(dst, dst_type)
        ra, rb = find(src), find(dst)
        if ra == rb:
            continue
        if not forced:
            if forbidden[ra] & set(members[rb]):
                yield ("never_link", src, None, dst, "clusters hold a never-linked pair")
                continue
            broken = [
                t
                for t in set(counts[ra]) | set(counts[rb])
                if t in limits and counts[ra].get(t, 0) + counts[rb].get(t, 0) > limits[t]
            ]
            if broken:
                t = sorted(broken)[0]
                yield (
                    "type_limit",
                    src,
                    None,
                    dst,
                    f"would give a person more than {limits[t]} {t}",
                )
                continue
        if len(members[ra]) < len(members[rb]):
            ra, rb = rb, ra
        parent[rb] = ra
        members[ra].extend(members.pop(rb))
        for t, n in counts.pop(rb).items():
            counts[ra][t] = counts[ra].get(t, 0) + n
        forbidden[ra] |= forbidden.pop(rb)

    for nodes in members.values():
        cluster = min(nodes)
        for node in nodes:
            yield ("node", node, cluster, None, None)


# --------------------------------------------------------------------- weak identifiers
def _attach_weak(
    weak_edges: DataFrame, strong: DataFrame, cfg: IdentityConfig
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
    for round_no in range(cfg.weak_rounds + 1):
        candidates = (
            weak_edges if round_no == 0 else weak_edges.filter(~is_strong(cfg, "other_type"))
        )
        evidence = (
            candidates.join(anchors, "other")
            .join(settled, "node", "left_anti")
            .groupBy("node", "id_type", "cluster")
            .agg(F.sum("weight").alias("records"), F.max("last_seen").alias("last_seen"))
        )
        decisions, counter = materialize(
            _decide(evidence, attached, cfg),
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
    isolated = settled.join(attached.select("node"), "node", "left_anti")
    return attached.select("node", "cluster"), isolated, audits


def _decide(evidence: DataFrame, attached: DataFrame, cfg: IdentityConfig) -> DataFrame:
    """node, id_type, cluster, records, last_seen, status, detail: ``attached``,
    ``weak_ambiguous`` (no cluster holds the minimum share) or ``type_limit``."""
    chosen, ambiguous = _choose(evidence, cfg.weak_min_share)
    kept, over = _weak_limits(chosen, attached, cfg)
    return (
        kept.select(
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
                "id_type",
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
        "node", "id_type", "cluster", "records", "last_seen"
    )
    ambiguous = ranked.filter(F.col("top_share") < min_share).select(
        "node", "id_type", "people", "top_share", F.col("total").alias("records")
    )
    return chosen, ambiguous


def _weak_limits(
    chosen: DataFrame, attached: DataFrame, cfg: IdentityConfig
) -> tuple[DataFrame, DataFrame]:
    """Per-person caps on weak types: beyond the cap, the values with least evidence go.

    Values attached in earlier rounds hold their places.
    """
    limit = _type_map(cfg, lambda t: cfg.types[t].max_per_person, None)
    cols = ["node", "id_type", "cluster", "records", "last_seen"]
    both = attached.select(*cols, F.lit(True).alias("earlier")).unionByName(
        chosen.select(*cols, F.lit(False).alias("earlier"))
    )
    order = Window.partitionBy("cluster", "id_type").orderBy(
        F.desc("earlier"), F.desc("records"), F.desc("last_seen"), "node"
    )
    ranked = (
        both.withColumn("rank", F.row_number().over(order))
        .withColumn("limit", limit)
        .filter(~F.col("earlier"))
    )
    within = F.col("limit").isNull() | (F.col("rank") <= F.col("limit"))
    return ranked.filter(within).select(*cols), ranked.filter(~within).select(*cols)
