"""Incremental runs: recluster only the components that new or changed records touch.

Clustering (guards, connected components, per-person limits, weak attachment) only
ever follows links, so the result for one *raw component* -- a connected component of
the links that guards do not cut (no blocked identifier; forced links included) --
depends only on that component's records. A run therefore needs to recluster only the
raw components that changed since the last run and can copy every other identifier's
``one_id`` as it was:

- a record that is new, removed or carries other identifiers than before touches its
  identifiers' previous raw components (and, through its links, merges them);
- an identifier that became blocked (over-linked) splits its previous component; one
  that is no longer blocked joins its neighbours' components.

The state kept between runs (``meta/identity_state``: node, raw component, blocked,
isolated; ``meta/identity_records``: each record's identifiers) says which components
those are. Everything else is recomputed in full on every run anyway, because it is a
linear pass (reading silver, links, over-linked counts, the MERGE of the outputs). A run
falls back to reclustering everything when there is no state, when the identity
settings or the operators' rules changed, or when ``gold/identity_map`` was written by
something else since the state was saved.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis import tables as T
from precis.frames import cut
from precis.identity.components import components_of
from precis.identity.records import RECORD_KEYS
from precis.identity.settings import IdentityConfig

STATE_SCHEMA = "node long, component long, blocked boolean, isolated boolean, fingerprint string, map_version long"
RECORDS_SCHEMA = "dataset string, source string, record_id string, nodes array<bigint>"


@dataclass(frozen=True)
class PreviousRun:
    """What the last run left, as stored (None: not written yet)."""

    identity_map: DataFrame | None = None  # gold/identity_map
    map_version: int | None = None  # the Delta version of gold/identity_map now
    changes: DataFrame | None = None  # gold/identity_changes
    guards: DataFrame | None = None  # gold/identity_guards
    state: DataFrame | None = None  # meta/identity_state
    records: DataFrame | None = None  # meta/identity_records


@dataclass(frozen=True)
class Plan:
    """Which identifiers this run reclusters: ``nodes`` (None: all of them), and why."""

    nodes: DataFrame | None
    reason: str
    state: DataFrame | None = None  # the previous run's, pinned


def plan(
    previous: PreviousRun,
    *,
    enabled: bool,
    fingerprint: str,
    records: DataFrame,
    links: DataFrame,
    blocked: DataFrame,
) -> Plan:
    """What to recluster: the components changed since the previous run, or everything
    when its state cannot tell (see the module's docstring).

    records: identified records (node per record). links: src, dst. blocked: node.
    """
    if not enabled:
        return Plan(None, "identity.incremental is false")
    if previous.state is None or previous.records is None or previous.identity_map is None:
        return Plan(None, "first run: no state from a previous run")
    # Pinned: the state tables are rewritten at the end of this run.
    state = cut(previous.state)
    head = state.select("fingerprint", "map_version").first()
    if head is None:
        return Plan(None, "the previous run left no state")
    if head["fingerprint"] != fingerprint:
        return Plan(None, "identity settings or operators' rules changed")
    if head["map_version"] != previous.map_version:
        return Plan(None, f"{T.IDENTITY_MAP.ref} was written since the state was saved")
    changed = changed_nodes(record_nodes(records), previous.records)
    nodes = cut(affected_nodes(state, changed, blocked, links))
    return Plan(nodes, "incremental", state)


def with_map_version(state: DataFrame, map_version: int) -> DataFrame:
    """``meta/identity_state`` rows: a run's state and the version of ``gold/identity_map``
    it wrote, which the next run checks."""
    return state.select(
        "node",
        "component",
        "blocked",
        "isolated",
        "fingerprint",
        F.lit(map_version).alias("map_version"),
    )


def fingerprint(settings: IdentityConfig, rule_nodes: list[tuple]) -> str:
    """What the clustering depends on besides the records: the identity settings (without
    the components step's tuning, which does not change its result) and the rules."""
    dumped = settings.model_dump(
        mode="json", exclude={"checkpoint_interval", "max_iterations", "incremental"}
    )
    text = json.dumps(
        {"settings": dumped, "rules": sorted(map(list, rule_nodes))}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_nodes(records: DataFrame) -> DataFrame:
    """dataset, source, record_id, nodes: the sorted identifiers of each record."""
    return records.groupBy(*RECORD_KEYS).agg(F.array_sort(F.collect_set("node")).alias("nodes"))


def changed_nodes(current: DataFrame, previous: DataFrame) -> DataFrame:
    """node: identifiers of records that are new, gone, or carry other identifiers."""
    old = previous.select(*RECORD_KEYS, F.col("nodes").alias("old"))
    new = current.select(*RECORD_KEYS, F.col("nodes").alias("new"))
    changed = old.join(new, list(RECORD_KEYS), how="full_outer").filter(
        ~F.col("old").eqNullSafe(F.col("new"))
    )
    both = F.array_union(F.coalesce("old", F.array()), F.coalesce("new", F.array()))
    return changed.select(F.explode(both).alias("node")).distinct()


def affected_nodes(
    state: DataFrame, changed: DataFrame, blocked: DataFrame, links: DataFrame
) -> DataFrame:
    """node: every identifier to recluster (the whole previous components of the seeds,
    and the seeds, which include identifiers not seen before).

    state: node, component, blocked (previous run). changed: node (:func:`changed_nodes`).
    blocked: node (blocked now). links: src, dst (now).
    """
    now = blocked.select("node").distinct().withColumn("now", F.lit(True))
    before = state.filter("blocked").select("node", F.lit(True).alias("before"))
    flipped = now.join(before, "node", how="full_outer").filter(
        F.col("now").isNull() | F.col("before").isNull()
    )
    unblocked = flipped.filter(F.col("now").isNull()).select("node")
    from_src = links.join(
        unblocked.withColumnRenamed("node", "src"), "src", how="left_semi"
    ).select(F.col("dst").alias("node"))
    from_dst = links.join(
        unblocked.withColumnRenamed("node", "dst"), "dst", how="left_semi"
    ).select(F.col("src").alias("node"))
    neighbours = from_src.union(from_dst)
    seeds = changed.select("node").union(flipped.select("node")).union(neighbours).distinct()
    components = state.join(seeds, "node", how="left_semi").select("component").distinct()
    return (
        state.join(components, "component", how="left_semi").select("node").union(seeds).distinct()
    )


def raw_components(
    nodes: DataFrame,
    links: DataFrame,
    blocked: DataFrame,
    force: DataFrame,
    settings: IdentityConfig,
    checkpoint_dir: str | None = None,
) -> DataFrame:
    """node, component, blocked: components of the links that no blocked identifier
    cuts, forced links included; a blocked identifier is a component on its own."""
    blocked_ids = blocked.select("node").distinct()
    usable = (
        links.select("src", "dst")
        .unionByName(force.select("src", "dst"))
        .join(blocked_ids.withColumnRenamed("node", "src"), "src", how="left_anti")
        .join(blocked_ids.withColumnRenamed("node", "dst"), "dst", how="left_anti")
    )
    labels = components_of(
        usable,
        nodes.select(F.col("node").alias("id")),
        algorithm=settings.components,
        checkpoint_interval=settings.checkpoint_interval,
        max_iterations=settings.max_iterations,
        checkpoint_dir=checkpoint_dir,
    )
    # A blocked identifier has no usable link, so it already labels itself.
    flagged = blocked_ids.withColumn("blocked", F.lit(True))
    return (
        labels.select(F.col("id").alias("node"), "component")
        .join(flagged, "node", how="left")
        .select("node", "component", F.coalesce("blocked", F.lit(False)).alias("blocked"))
    )


def within(frame: DataFrame, nodes: DataFrame, *columns: str) -> DataFrame:
    """Rows of ``frame`` whose every node column in ``columns`` is one of ``nodes``."""
    for column in columns:
        frame = frame.join(nodes.select(F.col("node").alias(column)), column, how="left_semi")
    return frame
