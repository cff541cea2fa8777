"""Connected components by randomized contraction, on Spark DataFrames only.

Bögeholz, Brand and Todor, "In-database connected component analysis" (ICDE 2020),
GraphFrames' fastest algorithm. Each round every vertex with an edge draws a random
priority (a hash of its id and the round) and chooses as its representative the vertex
of lowest priority among itself and its neighbours. Every edge ``(u, v)`` becomes
``(rep(u), rep(v))``, self-loops dropped: the graph shrinks to its representatives and
components are kept, since a vertex and its representative are neighbours. The number
of vertices falls by a constant factor per round in expectation, so the rounds are
logarithmic in the size of the largest component, and most of the work is in the first.
When no edge is left, each vertex's label is its representative's label, composed
backwards through the rounds; then each component is named by its minimum id, as
``precis.identity.components.connected_components`` names it.

A round costs two shuffles. The first groups the directed edges by vertex: its
neighbours (a set, so duplicate edges cost nothing more) and its representative. The
second sends each vertex's representative to its neighbours, grouped by the receiving
vertex, which then knows both ends' representatives of each of its edges: the next
round's edges, in both directions, keyed for the next first shuffle. No separate
deduplication is needed: the next round's neighbour set drops duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precis.frames import materialize

ID, COMPONENT = "id", "component"
SRC, DST = "src", "dst"
_X, _Y, _REP, _NBRS = "x", "y", "rep", "nbrs"

#: Directed edges left at or below which the driver finishes the graph: about 3 MB of
#: ids to collect, a fraction of a second of union-find, against two shuffles and a
#: checkpoint per round for the tail of small rounds.
LOCAL_EDGES = 200_000


def contracted_components(
    edges: DataFrame,
    vertices: DataFrame | None = None,
    *,
    max_iterations: int = 100,
    local_edges: int = LOCAL_EDGES,
    on_iteration: Callable[[int, int], None] | None = None,
    checkpoint_dir: str | None = None,
) -> DataFrame:
    """Label every vertex with the minimum id of its connected component.

    The same contract as ``precis.identity.components.connected_components``: ``edges``
    (BIGINT ``src``, ``dst``) read as undirected, duplicates, both directions, self-loops
    and null ends allowed; ``vertices`` (``id``) adds vertices; one row ``(id,
    component)`` per vertex seen. Each round's vertices are checkpointed (reliably when
    ``checkpoint_dir`` names the session's checkpoint directory, else locally) and read
    again at the end to compose the labels. Once at most ``local_edges`` directed edges
    are left, the driver finishes them (``_finish_locally``): a bound on the driver's
    work that does not grow with the graph. ``on_iteration(round, edges)`` is called
    after each round with the directed edges it started with. Raises ``RuntimeError``
    if edges are left after ``max_iterations`` rounds (impossible in theory: every
    round merges at least two vertices of each component with an edge).
    """
    if max_iterations < 0:
        raise ValueError(f"max_iterations must be >= 0, got {max_iterations}")
    how: Literal["local", "reliable"] = "reliable" if checkpoint_dir is not None else "local"
    src, dst = F.col(SRC).cast("bigint"), F.col(DST).cast("bigint")
    pairs = edges.select(src.alias(SRC), dst.alias(DST))
    seen = _vertices(pairs, vertices)
    directed = pairs.where(src.isNotNull() & dst.isNotNull() & (src != dst)).select(
        F.explode(
            F.array(F.struct(src.alias(_X), dst.alias(_Y)), F.struct(dst.alias(_X), src.alias(_Y)))
        ).alias("e")
    )
    rows = directed.select(F.col("e.x").alias(_X), F.col("e.y").alias(_Y))

    rounds: list[DataFrame] = []
    left = None
    while left != 0:
        if len(rounds) == max_iterations:
            raise RuntimeError(
                f"contracted_components did not finish within {max_iterations} rounds "
                f"({left:,} directed edges left); raise max_iterations"
            )
        chosen, counted = materialize(
            _choose(rows, len(rounds)),
            [F.sum(F.size(_NBRS)).alias("edges")],
            how=how,
        )
        left = int(counted["edges"] or 0)
        if left == 0:  # no vertex has an edge any more: nothing to contract
            break
        if left <= local_edges:
            # What is left is small: one collect instead of a tail of tiny rounds, each
            # of which costs two shuffles and a checkpoint whatever its size.
            rounds.append(_finish_locally(chosen))
            if on_iteration is not None:
                on_iteration(len(rounds), left)
            break
        rounds.append(chosen)
        rows = _contract(chosen)
        if on_iteration is not None:
            on_iteration(len(rounds), left)

    # Vertices without an edge (isolated, or only self-loops and null ends) are their own.
    own = F.col(ID).alias(_REP)
    everyone = (
        seen.join(_compose(rounds), ID, "left").select(ID, F.coalesce(F.col(_REP), own))
        if rounds
        else seen.select(ID, own)
    ).toDF(ID, _REP)
    # A component is named by its minimum id: one shuffle, by representative.
    return everyone.select(ID, F.min(ID).over(Window.partitionBy(_REP)).alias(COMPONENT))


def _vertices(pairs: DataFrame, vertices: DataFrame | None) -> DataFrame:
    """Every vertex of the input, once."""
    ends = pairs.select(F.explode(F.array(SRC, DST)).alias(ID)).where(F.col(ID).isNotNull())
    if vertices is not None:
        given = vertices.select(F.col(ID).cast("bigint").alias(ID)).where(F.col(ID).isNotNull())
        ends = ends.unionByName(given)
    return ends.distinct()


def _priority(vertex: Column, round_: int) -> Column:
    """A vertex's draw for a round, ties broken by its id: ordered as a struct."""
    return F.struct(F.xxhash64(vertex, F.lit(round_)).alias("h"), vertex.alias("v"))


def _choose(rows: DataFrame, round_: int) -> DataFrame:
    """``(x, rep, nbrs)`` per vertex with an edge: its neighbours and its representative,
    the lowest draw among itself and them."""
    grouped = rows.groupBy(_X).agg(
        F.collect_set(_Y).alias(_NBRS), F.min(_priority(F.col(_Y), round_)).alias("best")
    )
    own = _priority(F.col(_X), round_)
    rep = F.when(own < F.col("best"), F.col(_X)).otherwise(F.col("best.v"))
    return grouped.select(_X, rep.alias(_REP), _NBRS)


def _contract(chosen: DataFrame) -> DataFrame:
    """The next round's directed edges ``(x, y)`` between representatives: each vertex
    tells its neighbours its representative; a vertex links its own representative to
    each one it hears of."""

    def message(to: Column, own: bool) -> Column:
        return F.struct(to.alias("to"), F.lit(own).alias("own"), F.col(_REP).alias(_REP))

    told = chosen.select(
        F.explode(
            F.concat(
                F.array(message(F.col(_X), True)),
                F.transform(_NBRS, lambda y: message(y, False)),
            )
        ).alias("m")
    ).select("m.to", "m.own", F.col(f"m.{_REP}").alias(_REP))
    heard = told.groupBy("to").agg(
        F.max(F.when(F.col("own"), F.col(_REP))).alias("mine"),
        F.collect_set(F.when(~F.col("own"), F.col(_REP))).alias("theirs"),
    )
    mine = F.col("mine")
    return heard.select(mine.alias(_X), F.explode(F.array_remove(F.col("theirs"), mine)).alias(_Y))


def _finish_locally(chosen: DataFrame) -> DataFrame:
    """``(x, rep)`` for the vertices of a small round: its edges collected and joined by
    union-find on the driver (``join_locally``)."""
    rows = ((row[_X], row[_NBRS]) for row in chosen.select(_X, _NBRS).toLocalIterator())
    return chosen.sparkSession.createDataFrame(join_locally(rows), f"{_X} bigint, {_REP} bigint")


def join_locally(rows: Iterable[tuple[int, Iterable[int]]]) -> list[tuple[int, int]]:
    """``(vertex, minimum id of its component)`` for every vertex of ``rows``, each a
    vertex and its neighbours: union-find on the driver, for graphs small enough to
    collect (``LOCAL_EDGES``)."""
    parent: dict[int, int] = {}

    def root(v: int) -> int:
        while parent.setdefault(v, v) != v:
            parent[v] = parent[parent[v]]  # path halving
            v = parent[v]
        return v

    for vertex, neighbours in rows:
        a = root(vertex)
        for neighbour in neighbours:
            b = root(neighbour)
            if a != b:
                # The smaller root wins: every root is its set's minimum.
                a, b = min(a, b), max(a, b)
                parent[b] = a
    return [(v, root(v)) for v in parent]


def _compose(rounds: list[DataFrame]) -> DataFrame:
    """``(id, rep)``: each vertex of the first round and the representative it ends
    with, following its representatives round by round (from the last round back)."""
    labels = rounds[-1].select(F.col(_X).alias(ID), _REP)
    for chosen in reversed(rounds[:-1]):
        # A representative that had no edge left in the next round is its own label.
        later = labels.select(F.col(ID).alias(_REP), F.col(_REP).alias("final"))
        labels = (
            chosen.select(F.col(_X).alias(ID), _REP)
            .join(later, _REP, "left")
            .select(ID, F.coalesce(F.col("final"), F.col(_REP)).alias(_REP))
        )
    return labels
