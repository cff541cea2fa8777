"""From identified records to people: links, guards and clusters.

1. **Links** (:mod:`precis.identity.links`): identifiers seen in one ``id_observations``
   record are linked; a link's weight is the number of records that saw both.
2. **Guards** remove links before anything is joined:
   placeholder values were blocked at ingest; operators' rules block identifiers,
   forbid pairs (never_link) or add links (force_link); an identifier linked to more
   than ``max_linked`` distinct values of one strong type is unreliable and links nothing.
3. **Strong clusters**: connected components of the links between strong identifiers,
   forced links, and the links of *bridging* weak identifiers (``bridge: true``, a WeChat
   open id) to strong ones. A component that breaks a per-person limit (two member
   ids) or holds a never-linked pair is rebuilt greedily (:mod:`precis.identity.limits`).
4. **Weak bridges**: a weak identifier (or a group of them linked to each other) seen
   with two clusters over spans close in time joins them within the limits
   (:mod:`precis.identity.bridges`).
5. **Other weak identifiers** attach to the cluster they were seen with most, or stay
   alone (:mod:`precis.identity.weak`); the rest form anonymous people (a device and
   its cookies) among themselves.

Every identifier ends in exactly one cluster, named by its smallest node id. Guards
report what they removed as audit rows (:data:`AUDIT_SCHEMA`).
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_TYPE
from precis.frames import kept, materialize
from precis.identity.bridges import BRIDGE, STRONG, bridge_weak
from precis.identity.components import components_of
from precis.identity.id_types import is_bridge, is_strong, owned_link
from precis.identity.limits import enforce_limits
from precis.identity.links import both_ways
from precis.identity.settings import IdentityConfig
from precis.identity.weak import attach_weak

AUDIT_SCHEMA = "guard string, id_type string, id_key string, other_type string, other_key string, detail string, records long"


def resolve(
    nodes: DataFrame,
    links: DataFrame,
    settings: IdentityConfig,
    *,
    blocked: DataFrame,
    never: DataFrame,
    force: DataFrame,
    on_iteration: Callable[[int, int], None] | None = None,
    checkpoint_dir: str | None = None,
) -> tuple[DataFrame, DataFrame]:
    """Cluster every node. Returns (clusters, audit), both computed and kept.

    nodes: node, id_type (every identifier). links: see :func:`links.record_links`.
    blocked: node, guard, detail (identifiers that link nothing: rules, over-linked).
    never / force: src, dst node pairs from operators' rules (src < dst).
    checkpoint_dir: the session's reliable checkpoint directory, if any (see components).
    clusters: node, cluster, isolated. audit: guard, node, other, detail, records.
    """
    blocked = blocked.dropDuplicates(["node"])
    blocked_ids = blocked.select("node")
    unblocked = _between(links, blocked_ids, "left_anti")
    never_direct = unblocked.join(never.select("src", "dst"), ["src", "dst"], how="left_semi")
    typed = nodes.select("node", ID_TYPE)
    forced = (
        _between(force, blocked_ids, "left_anti")
        .join(typed.withColumnsRenamed({"node": "src", ID_TYPE: "src_type"}), "src", how="inner")
        .join(typed.withColumnsRenamed({"node": "dst", ID_TYPE: "dst_type"}), "dst", how="inner")
        .select(
            "src",
            "dst",
            "src_type",
            "dst_type",
            F.lit(0).cast("long").alias("weight"),
            F.lit(None).cast("timestamp").alias("first_seen"),
            F.lit(None).cast("timestamp").alias("last_seen"),
            F.lit(True).alias("forced"),
        )
    )
    audits = [
        _audit(never_direct, "never_link", "linked records, removed by rule"),
        _audit(forced, "force_link", "link added by rule"),
    ]
    # Strong clusters: strong links (and a weak identifier's link to the strong one its
    # values belong to), then bridging weak identifiers' links to strong ones.
    strong_end = is_strong(settings, "src_type") | is_strong(settings, "dst_type")
    both_strong = (is_strong(settings, "src_type") & is_strong(settings, "dst_type")) | owned_link(
        settings
    )
    bridge_link = strong_end & (is_bridge(settings, "src_type") | is_bridge(settings, "dst_type"))
    usable_links = unblocked.join(never.select("src", "dst"), ["src", "dst"], how="left_anti")
    with kept(usable_links) as (usable,):
        strong_links = (
            usable.filter(both_strong | bridge_link)
            .withColumns(
                {
                    "forced": F.lit(False),
                    "tier": F.when(both_strong, F.lit(STRONG)).otherwise(F.lit(BRIDGE)),
                }
            )
            .unionByName(forced.withColumn("tier", F.lit(STRONG)))
        )
        # In the strong graph: every strong identifier, and the bridging and forced ones
        # linked into it.
        linked_in = strong_links.select(F.col("src").alias("node")).union(
            strong_links.select(F.col("dst").alias("node"))
        )
        in_strong_graph = (
            nodes.filter(is_strong(settings))
            .select("node")
            .union(linked_in)
            .distinct()
            .join(blocked_ids, "node", how="left_anti")
        )
        with kept(in_strong_graph) as (strong_nodes,):
            components = _clusters_of(
                strong_links, strong_nodes, settings, on_iteration, checkpoint_dir
            )
            strong, refused = enforce_limits(components, strong_links, typed, never, settings)
            audits.append(refused)

            # Weak identifiers outside the strong graph: some join two clusters on the
            # evidence, the others attach to one or stay alone.
            weak_links = usable.filter(~(both_strong | bridge_link))
            weak_edges, _ = materialize(
                both_ways(weak_links).join(strong_nodes, "node", how="left_anti"), []
            )
            strong, bridged, bridge_audit = bridge_weak(
                weak_edges,
                strong,
                strong_links,
                typed,
                never,
                settings,
                lambda links, nodes: _clusters_of(
                    links, nodes, settings, on_iteration, checkpoint_dir
                ),
            )
            audits.append(bridge_audit)
            weak_edges = weak_edges.join(bridged, "node", how="left_anti")
            attached, isolated, weak_audit = attach_weak(weak_edges, strong, settings)
            audits.extend(weak_audit)

            remaining = (
                nodes.select("node")
                .join(strong_nodes, "node", how="left_anti")
                .join(bridged, "node", how="left_anti")
                .join(blocked_ids, "node", how="left_anti")
                .join(attached.select("node"), "node", how="left_anti")
                .join(isolated.select("node"), "node", how="left_anti")
            )
            anonymous = _clusters_of(
                _between(weak_links, remaining, "left_semi"),
                remaining,
                settings,
                on_iteration,
                checkpoint_dir,
            )
            alone = blocked_ids.union(isolated.select("node")).distinct()
            clusters = (
                strong.select("node", "cluster", F.lit(False).alias("isolated"))
                .unionByName(attached.select("node", "cluster", F.lit(False).alias("isolated")))
                .unionByName(anonymous.select("node", "cluster", F.lit(False).alias("isolated")))
                .unionByName(
                    alone.select(
                        "node", F.col("node").alias("cluster"), F.lit(True).alias("isolated")
                    )
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
            # Computed while the frames they come from are kept, which are released next.
            clusters, _ = materialize(clusters, [])
            audit, _ = materialize(audit, [])
    return clusters, audit


def _between(links: DataFrame, nodes: DataFrame, how: str) -> DataFrame:
    """Links (src, dst) with both ends in ``nodes`` (left_semi) or neither (left_anti)."""
    return links.join(nodes.withColumnRenamed("node", "src"), "src", how=how).join(
        nodes.withColumnRenamed("node", "dst"), "dst", how=how
    )


def _clusters_of(
    links: DataFrame,
    nodes: DataFrame,
    settings: IdentityConfig,
    on_iteration: Callable[[int, int], None] | None,
    checkpoint_dir: str | None,
) -> DataFrame:
    """node, cluster: connected components of ``links`` (src, dst) over ``nodes`` (node)."""
    return components_of(
        links.select("src", "dst"),
        nodes.select(F.col("node").alias("id")),
        algorithm=settings.components,
        checkpoint_interval=settings.checkpoint_interval,
        max_iterations=settings.max_iterations,
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
