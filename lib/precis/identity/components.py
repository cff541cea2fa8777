"""Connected components of an undirected graph, on Spark DataFrames only.

Alternating Large-Star / Small-Star (Kiveris et al. 2014, "Connected Components in
MapReduce and Beyond"; GraphFrames' default algorithm). Each round, large-star links every
neighbour larger than a node ``u`` to ``m(u) = min(u, neighbours of u)``, then small-star
links a node and its smaller neighbours to the smallest of them. Both keep components
connected; within O(log^2 n) rounds the graph becomes a forest of stars, each centred on
its component's minimum id, which both steps leave unchanged.

Convergence test (exact): call a node settled if it is below all its neighbours (a centre)
or has a single, smaller neighbour (a leaf). Every node is settled if and only if the
graph is such a forest: no edge can join two centres or two leaves, so each component is
one centre, its minimum, with leaves. A node's component is then min(node, neighbours).

Finished components leave early: a centre whose neighbours are all leaves heads a finished
star. Once it costs little (``NOTICE_BUDGET``), centres announce themselves and unsettled
nodes warn their smaller neighbours during the large-star; an unwarned centre is marked
done, its star's labels are set aside and the star leaves the graph, so the last rounds
carry only the few large components.

A round costs two shuffles: large-star records grouped by their larger end (the
small-star), and small-star edges grouped by both ends into the next adjacency list (which
drops duplicates). The test's counters are observed in the job that checkpoints the
adjacency list, without another pass.

A small graph (at most ``local_edges`` edges) is joined on the driver instead, by
union-find over its adjacency list: on tiny inputs each round costs a few Spark jobs and a
checkpoint, which is most of what the identity job spends on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.frames import materialize
from precis.identity.contraction import LOCAL_EDGES, contracted_components, join_locally

ID, COMPONENT = "id", "component"
SRC, DST = "src", "dst"
_NODE, _NBR, _NBRS, _DONE = "node", "nbr", "nbrs", "done"
_BIG, _SMALL, _SMALLS = "big", "small", "smalls"

#: Run the finished-star test in a round when its notices add at most this share of the
#: round's large-star edges.
NOTICE_BUDGET = 0.25


def connected_components(
    edges: DataFrame,
    vertices: DataFrame | None = None,
    *,
    checkpoint_interval: int = 1,
    max_iterations: int = 100,
    on_iteration: Callable[[int, int], None] | None = None,
    checkpoint_dir: str | None = None,
    local_edges: int = LOCAL_EDGES,
) -> DataFrame:
    """Label every vertex with the minimum id of its connected component.

    ``edges`` has BIGINT columns ``src`` and ``dst`` and is read as undirected: duplicates,
    both directions and self-loops are allowed; a null end is no vertex (the other end is).
    ``vertices`` (column ``id``) adds vertices, isolated ones included. Returns one row
    ``(id, component)`` per vertex seen in either frame.

    The input's adjacency list and then every ``checkpoint_interval``-th round are
    checkpointed: reliably when ``checkpoint_dir`` names the session's checkpoint
    directory (``precis.frames.checkpoint_dir``), else locally; the other rounds are
    persisted, each released once the next is computed (a last round that was only
    persisted is checkpointed as labels). The result reads the last round's checkpoint and
    those of finished stars, so keep the checkpoint directory until it has been used
    (Spark deletes reliable checkpoint files only with
    ``spark.cleaner.referenceTracking.cleanCheckpoints``).
    ``on_iteration(round, edges)`` is called after each round with the number of distinct
    edges still in play (finished components excluded). Raises ``RuntimeError`` if some
    component is not a star centred on its minimum after ``max_iterations`` rounds.
    When the input has at most ``local_edges`` distinct edges, the driver labels it
    (``_finish_locally``) and no round runs: a bound on the driver's work that does not
    grow with the graph (vertices without edges stay in Spark).
    """
    if checkpoint_interval < 1:
        raise ValueError(f"checkpoint_interval must be >= 1, got {checkpoint_interval}")
    if max_iterations < 0:
        raise ValueError(f"max_iterations must be >= 0, got {max_iterations}")

    reliable = checkpoint_dir is not None
    current = _observed_round(
        _initial_adjacency(edges, vertices), checkpoint=True, reliable=reliable
    )
    if current.unsettled > 0 and current.edges <= local_edges:
        return _finish_locally(current.adjacency)
    finished: list[DataFrame] = []
    iteration = 0
    while current.unsettled > 0:
        if iteration == max_iterations:
            current.adjacency.unpersist()
            raise RuntimeError(
                f"connected_components did not converge within {max_iterations} iterations "
                f"({current.unsettled:,} nodes are neither a star centre nor a leaf); "
                "raise max_iterations"
            )
        iteration += 1
        if current.done > 0:
            finished.append(_set_aside(current, reliable=reliable))
        # The finished-star test pays for itself once few nodes are unsettled; before
        # that its notices would cost more than the stars it could remove.
        test = current.notices <= NOTICE_BUDGET * current.edges
        adjacency = _adjacency(_small_star(_large_star(current.adjacency, test_finished=test)))
        following = _observed_round(
            adjacency, checkpoint=iteration % checkpoint_interval == 0, reliable=reliable
        )
        current.adjacency.unpersist()
        current = following
        if on_iteration is not None:
            on_iteration(iteration, current.edges)

    labels = _labels(current.adjacency)
    if not current.checkpointed:
        # The last round was only persisted: keep its labels, release the round.
        labels = _materialize(labels, checkpoint=True, reliable=reliable)[0]
        current.adjacency.unpersist()
    for piece in finished:
        labels = labels.unionByName(piece)
    return labels


def components_of(
    edges: DataFrame,
    vertices: DataFrame | None = None,
    *,
    algorithm: Literal["contraction", "stars"] = "stars",
    checkpoint_interval: int = 1,
    max_iterations: int = 100,
    on_iteration: Callable[[int, int], None] | None = None,
    checkpoint_dir: str | None = None,
) -> DataFrame:
    """``(id, component)`` by ``algorithm`` (``identity.components``): randomized
    contraction (``precis.identity.contraction``) or this module's stars. The same
    labels either way; ``checkpoint_interval`` applies to stars only."""
    if algorithm == "contraction":
        return contracted_components(
            edges,
            vertices,
            max_iterations=max_iterations,
            on_iteration=on_iteration,
            checkpoint_dir=checkpoint_dir,
        )
    return connected_components(
        edges,
        vertices,
        checkpoint_interval=checkpoint_interval,
        max_iterations=max_iterations,
        on_iteration=on_iteration,
        checkpoint_dir=checkpoint_dir,
    )


# ------------------------------------------------------------------ graph steps
# Rows are kept as plain BIGINT columns and arrays of BIGINT: arrays of structs made the
# higher-order functions, which Spark interprets row by row, several times slower.


def _no_ids() -> Column:
    return F.array().cast("array<bigint>")


def _initial_adjacency(edges: DataFrame, vertices: DataFrame | None) -> DataFrame:
    """Adjacency list of the input: both directions, no duplicates, no self-loops."""
    src, dst = F.col(SRC).cast("bigint"), F.col(DST).cast("bigint")
    # A self-loop, or an edge with one null end, still makes a vertex of its (non-null)
    # node: a row with a null neighbour.
    pairs = edges.select(F.coalesce(src, dst).alias(SRC), F.when(src != dst, dst).alias(DST))
    rows = _both_ends(pairs)
    if vertices is not None:
        ids = vertices.select(F.col(ID).cast("bigint").alias(_NODE)).where(F.col(_NODE).isNotNull())
        rows = rows.unionByName(ids.withColumn(_NBR, F.lit(None).cast("bigint")))
    grouped = rows.groupBy(_NODE).agg(F.collect_set(_NBR).alias(_NBRS))
    # A node without neighbours is its own finished component.
    return grouped.withColumn(_DONE, F.size(_NBRS) == 0)


def _both_ends(pairs: DataFrame) -> DataFrame:
    """Rows ``(node, nbr)`` of pairs ``(src, dst)`` seen from both ends; a null dst gives ``(src, null)``.

    One generator over the pair rather than a union of two projections, so the frame
    feeding it is computed once.
    """
    ends = pairs.select(SRC, DST, F.posexplode(F.array(SRC, DST)).alias("pos", _NODE))
    return ends.where(F.col(_NODE).isNotNull()).select(
        _NODE, F.when(F.col("pos") == 0, F.col(DST)).otherwise(F.col(SRC)).alias(_NBR)
    )


def _adjacency(rows: DataFrame) -> DataFrame:
    """Group the rows ``(node, nbr)`` of a round; a null ``nbr`` marks a finished centre."""
    # collect_set drops the duplicate edges the star steps produce, so the degree in the
    # convergence test counts distinct neighbours.
    return rows.groupBy(_NODE).agg(
        F.collect_set(_NBR).alias(_NBRS),
        (F.count(F.lit(1)) > F.count(_NBR)).alias(_DONE),
    )


def _closed_min(node: Column, nbrs: Column) -> Column:
    """Minimum of a node and its neighbours (``least`` skips the null of an empty list)."""
    return F.least(node, F.array_min(nbrs))


def _unsettled(node: Column, nbrs: Column) -> Column:
    """Neither a centre (below all neighbours) nor a leaf (one neighbour, below it)."""
    return (F.array_min(nbrs) < node) & (F.size(nbrs) > 1)


def _centre(node: Column, nbrs: Column) -> Column:
    """Below all its neighbours (false for a node without any)."""
    return F.array_min(nbrs) > node


def _large_star(adjacency: DataFrame, *, test_finished: bool) -> DataFrame:
    """Records ``(big, small)`` keyed by the node ``big`` that handles them in the small-star.

    Besides the large-star edges (``small`` is the closed minimum of a smaller neighbour),
    each centre sends itself ``small = big`` and each unsettled node sends its smaller
    neighbours ``small = null``: a centre that hears no null has only leaves around it.
    """
    node, nbrs = F.col(_NODE), F.col(_NBRS)
    targets = F.filter(nbrs, lambda x: x > node)
    if test_finished:
        targets = F.concat(
            targets,
            F.when(_unsettled(node, nbrs), F.filter(nbrs, lambda x: x < node)).otherwise(_no_ids()),
            F.when(_centre(node, nbrs), F.array(node)).otherwise(_no_ids()),
        )
    # Per-node values are computed before the explode: in the same select Spark would
    # evaluate them again for every element, quadratic for the centre of a big star.
    records = (
        adjacency.where(~F.col(_DONE))
        .select(node, _closed_min(node, nbrs).alias("minimum"), targets.alias("targets"))
        .select(node, "minimum", F.explode("targets").alias(_BIG))
    )
    big = F.col(_BIG)
    small = F.when(big > node, F.col("minimum")).when(big == node, node)
    return records.select(big, small.alias(_SMALL))


def _small_star(large: DataFrame) -> DataFrame:
    """Adjacency rows ``(node, nbr)`` of the small-star edges, ``nbr`` null for finished centres."""
    grouped = large.groupBy(_BIG).agg(
        F.collect_set(_SMALL).alias(_SMALLS),
        (F.count(F.lit(1)) > F.count(_SMALL)).alias("warned"),
    )
    big, smalls = F.col(_BIG), F.col(_SMALLS)
    # A centre receives no large-star edge (it has no smaller neighbour), so a group is
    # either a centre's, holding only itself, or holds edges.
    centre = F.array_contains(smalls, big)
    smallest = F.array_min(smalls)
    # Every small is below big, so appending big cannot duplicate an element.
    others = F.concat(F.array_remove(smalls, smallest), F.array(big))
    finished = F.array(F.lit(None).cast("bigint"))
    far = F.when(centre, F.when(~F.col("warned"), finished).otherwise(_no_ids())).otherwise(others)
    pairs = grouped.select(
        F.when(centre, big).otherwise(smallest).alias(SRC), far.alias("far")
    ).select(SRC, F.explode("far").alias(DST))
    return _both_ends(pairs)


def _finish_locally(adjacency: DataFrame) -> DataFrame:
    """Labels of a small adjacency list: the nodes not yet done, with their neighbours,
    collected and joined on the driver (``join_locally``); the nodes already done (no
    neighbour) label themselves in Spark, so isolated vertices are never collected."""
    open_ = adjacency.where(~F.col(_DONE)).select(_NODE, _NBRS).toLocalIterator()
    labels = join_locally((row[_NODE], row[_NBRS]) for row in open_)
    joined = adjacency.sparkSession.createDataFrame(labels, f"{ID} bigint, {COMPONENT} bigint")
    node = F.col(_NODE)
    alone = adjacency.where(F.col(_DONE)).select(node.alias(ID), node.alias(COMPONENT))
    return joined.unionByName(alone)


def _labels(adjacency: DataFrame) -> DataFrame:
    """Labels of a forest of stars centred on their minimum."""
    node = F.col(_NODE)
    return adjacency.select(node.alias(ID), _closed_min(node, F.col(_NBRS)).alias(COMPONENT))


def _set_aside(current: _Round, *, reliable: bool) -> DataFrame:
    """Labels of the finished stars, whose centres carry every node of their component."""
    node = F.col(_NODE)
    labels = current.adjacency.where(F.col(_DONE)).select(
        F.explode(F.concat(F.array(node), F.col(_NBRS))).alias(ID), node.alias(COMPONENT)
    )
    if current.durable:
        # Checkpoint files stay on disk anyway: read them again when the result is used.
        return labels
    # Local checkpoints and persisted rounds live in executor memory: keep only the labels.
    return _materialize(labels, checkpoint=True, reliable=reliable)[0]


# ------------------------------------------------------------------ materializing
@dataclass(frozen=True)
class _Round:
    """An adjacency list computed once, and the counters observed while computing it."""

    adjacency: DataFrame
    checkpointed: bool  # else persisted, to be released
    durable: bool  # reliably checkpointed
    edges: int  # distinct edges still in play, each counted at its smaller end
    unsettled: int  # nodes neither a centre nor a leaf; 0 means converged
    done: int  # centres of finished stars
    notices: int  # records the finished-star test would add to the next round


def _observed_round(adjacency: DataFrame, *, checkpoint: bool, reliable: bool) -> _Round:
    node, nbrs, done = F.col(_NODE), F.col(_NBRS), F.col(_DONE)
    # The counters come with the job that computes the frame: no extra pass.
    frame, durable, counts = _materialize(
        adjacency,
        checkpoint=checkpoint,
        reliable=reliable,
        metrics=[
            F.sum(F.when(~done, F.size(F.filter(nbrs, lambda x: x > node)))).alias("edges"),
            F.count_if(_unsettled(node, nbrs)).alias("unsettled"),
            F.count_if(done).alias("done"),
            F.count_if(_centre(node, nbrs) & ~done).alias("centres"),
            F.sum(F.when(_unsettled(node, nbrs), F.size(F.filter(nbrs, lambda x: x < node)))).alias(
                "warnings"
            ),
        ],
    )
    counts = {key: int(value or 0) for key, value in counts.items()}
    return _Round(
        frame,
        checkpoint,
        durable,
        counts["edges"],
        counts["unsettled"],
        counts["done"],
        counts["centres"] + counts["warnings"],
    )


def _materialize(
    frame: DataFrame, *, checkpoint: bool, reliable: bool, metrics: Sequence[Column] = ()
) -> tuple[DataFrame, bool, dict[str, Any]]:
    """Compute a frame once and cut (checkpoint) or pin (persist) its lineage.

    Returns the frame, whether it was checkpointed reliably (to the checkpoint
    directory), and the ``metrics`` observed on it.
    """
    how: Literal["local", "reliable", "persist"] = (
        "persist" if not checkpoint else "reliable" if reliable else "local"
    )
    kept, values = materialize(frame, metrics, how=how)
    return kept, how == "reliable", values
