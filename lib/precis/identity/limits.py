"""Per-person limits on strong clusters: components that break one are rebuilt greedily.

A component that would give a person more values of a type than its ``max_per_person``
(two member ids), or that holds a never-linked pair, is rebuilt by a union-find over its
links in order of evidence (forced first, then strong-to-strong, then bridging, then
weak bridges; within each most records, then most recent). A link is accepted only
while every part stays within the limits, so the weakest evidence is what gets refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_TYPE
from precis.frames import kept, materialize
from precis.identity.id_types import max_per_person
from precis.identity.settings import IdentityConfig

REFUSED_SCHEMA = "guard string, node long, other long, detail string, records long"


def enforce_limits(
    components: DataFrame,
    strong_links: DataFrame,
    typed: DataFrame,
    never: DataFrame,
    settings: IdentityConfig,
) -> tuple[DataFrame, DataFrame]:
    """(node, cluster) within the limits, and audit rows of the links refused.

    Both are computed and kept before returning: the frames they are built from are
    released here.
    """
    limits = {
        t: c.max_per_person for t, c in settings.types.items() if c.max_per_person is not None
    }
    over = (
        components.join(typed, "node", how="inner")
        .groupBy("cluster", ID_TYPE)
        .count()
        .filter(F.col("count") > max_per_person(settings))
        .select("cluster")
    )
    never_inside = (
        never.join(
            components.withColumnsRenamed({"node": "src", "cluster": "c1"}), "src", how="inner"
        )
        .join(components.withColumnsRenamed({"node": "dst", "cluster": "c2"}), "dst", how="inner")
        .filter(F.col("c1") == F.col("c2"))
    )
    with kept(over.union(never_inside.select(F.col("c1").alias("cluster"))).distinct()) as (bad,):
        if bad.isEmpty():
            within, _ = materialize(components, [])
            return within, components.sparkSession.createDataFrame([], REFUSED_SCHEMA)
        with kept(_rebuilt(components, bad, strong_links, never_inside, limits)) as (rebuilt,):
            fixed = rebuilt.filter(F.col("kind") == "node").select("node", "cluster")
            refused = rebuilt.filter(F.col("kind") != "node").select(
                F.col("kind").alias("guard"),
                "node",
                "other",
                "detail",
                F.lit(None).cast("long").alias("records"),
            )
            within, _ = materialize(
                components.join(bad, "cluster", how="left_anti").unionByName(fixed), []
            )
            refused, _ = materialize(refused, [])
    return within, refused


def _rebuilt(
    components: DataFrame,
    bad: DataFrame,
    strong_links: DataFrame,
    never_inside: DataFrame,
    limits: dict[str, int],
) -> DataFrame:
    """kind, node, cluster, other, detail: the bad components rebuilt (see greedy_clusters)."""
    in_bad = components.join(bad, "cluster", how="left_semi")
    edges = strong_links.join(in_bad.withColumnRenamed("node", "src"), "src", how="inner").select(
        "cluster",
        "src",
        "dst",
        "src_type",
        "dst_type",
        "weight",
        F.coalesce(F.unix_seconds("last_seen"), F.lit(0)).alias("last_seen"),
        "forced",
        "tier",
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
        F.lit(0).alias("tier"),
        F.lit("never").alias("kind"),
    )
    # No built-in does order-dependent merging under constraints; only the few
    # components that break a limit go through Python, one component per call.
    return (
        edges.unionByName(pairs)
        .groupBy("cluster")
        .applyInPandas(
            greedy_merge(limits), "kind string, node long, cluster long, other long, detail string"
        )
    )


def greedy_merge(limits: dict[str, int]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def merge(group: pd.DataFrame) -> pd.DataFrame:
        # Object columns: ids are 64-bit and a column of ints and nulls would otherwise
        # become float, which cannot hold them exactly.
        return pd.DataFrame(
            list(greedy_clusters(group, limits)),
            columns=["kind", "node", "cluster", "other", "detail"],
            dtype=object,
        )

    return merge


def greedy_clusters(group: pd.DataFrame, limits: dict[str, int]) -> Iterator[tuple]:
    """Union-find over one component's links in order of evidence, refusing a link when
    the merged person would break a per-type limit or join a never-linked pair.

    Yields ("node", node, cluster, None, None) for every node and
    (guard, node, other, None, detail) for every refused link.
    """
    # Forced links first, then by tier (strong-to-strong links, bridging weak types'
    # links, weak bridges: precis.identity.bridges); within each, most records, then most
    # recent.
    links = group[group["kind"] == "link"].sort_values(
        ["forced", "tier", "weight", "last_seen", "src", "dst"],
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
