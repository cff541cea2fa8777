"""Connected components: exact labels against a union-find oracle, on many graph shapes.

Components of disjoint graphs are independent, so most tests shift several small graphs
to disjoint id ranges and label them in one call. The benchmark's GraphX baseline
(``bench/bench_components.py``) is held to the same oracle.
"""

from __future__ import annotations

import importlib.util
import itertools
import random
from collections.abc import Iterable
from pathlib import Path

import pytest
from chispa import assert_df_equality

from precis.identity import components
from precis.identity.components import connected_components

PROJECT = Path(__file__).resolve().parents[1]
Edge = tuple[int, int]
MIN_LONG, MAX_LONG = -(2**63), 2**63 - 1


# ----------------------------------------------------------------- oracle
def union_find_labels(edges: Iterable[Edge], vertices: Iterable[int] = ()) -> dict[int, int]:
    """Every vertex mapped to the smallest id of its component."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            # The smaller root wins, so every root is the minimum of its component.
            parent[max(ra, rb)] = min(ra, rb)
    for v in vertices:
        find(v)
    return {v: find(v) for v in parent}


def test_oracle_on_a_hand_checked_graph():
    labels = union_find_labels([(5, 3), (3, 9), (7, 8), (4, 4)], [1, 9])
    assert labels == {1: 1, 3: 3, 4: 4, 5: 3, 7: 7, 8: 7, 9: 3}


# ----------------------------------------------------------------- graphs
def chain(ids: list[int]) -> list[Edge]:
    return list(itertools.pairwise(ids))


def star(centre: int, leaves: list[int]) -> list[Edge]:
    return [(centre, leaf) for leaf in leaves]


def clique(ids: list[int]) -> list[Edge]:
    return [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]


def cycle(ids: list[int]) -> list[Edge]:
    return chain(ids) + [(ids[-1], ids[0])]


def random_graph(seed: int, nodes: int, edges: int) -> list[Edge]:
    rng = random.Random(seed)
    return [(rng.randrange(nodes), rng.randrange(nodes)) for _ in range(edges)]


def shuffled(ids: list[int], seed: int) -> list[int]:
    ids = list(ids)
    random.Random(seed).shuffle(ids)
    return ids


# ----------------------------------------------------------------- helpers
def run(spark, edges: list[Edge], vertices: list[int] | None = None, **kwargs):
    """The rounds on ``edges`` (``local_edges=0``: no graph is small enough for the driver's
    finish, unless a test asks for it)."""
    kwargs.setdefault("local_edges", 0)
    edge_frame = spark.createDataFrame(edges, "src bigint, dst bigint")
    vertex_frame = (
        None if vertices is None else spark.createDataFrame([(v,) for v in vertices], "id bigint")
    )
    return connected_components(edge_frame, vertex_frame, **kwargs)


def assert_labels(spark, got, edges: list[Edge], vertices: list[int] = ()) -> None:
    """``got`` holds exactly the oracle's rows for this graph (restricted to its vertices)."""
    labels = union_find_labels(edges, vertices)
    expected = spark.createDataFrame(sorted(labels.items()), "id bigint, component bigint")
    mine = got.join(expected.select("id"), "id", "left_semi").select("id", "component")
    assert_df_equality(mine, expected, ignore_row_order=True, ignore_nullable=True)


# ----------------------------------------------------------------- one batch, many graphs
# Each family is shifted to its own id range; the extreme ids stay where they are, far
# from every shifted range.
SPACING = 1_000_000
FAMILIES: dict[str, tuple[list[Edge], list[int]]] = {
    "ascending chain": (chain(list(range(30))), []),
    "descending chain": (chain(list(range(30, 0, -1))), []),
    "shuffled chain": (chain(shuffled(list(range(40)), seed=1)), []),
    "long shuffled chain": (chain(shuffled(list(range(200)), seed=2)), []),
    "long descending chain": (chain(list(range(200, 0, -1))), []),
    "star, centre smallest": (star(0, list(range(1, 25))), []),
    "star, centre largest": (star(100, list(range(1, 25))), []),
    "star, centre in the middle": (star(12, [i for i in range(25) if i != 12]), []),
    "clique": (clique(list(range(12))), []),
    "clique, shuffled ids": (clique(shuffled(list(range(3, 15)), seed=3)), []),
    "cycle": (cycle(shuffled(list(range(50)), seed=4)), []),
    "single edge": ([(7, 8)], []),
    **{
        f"random 300 nodes 250 edges, seed {seed}": (random_graph(seed, 300, 250), [])
        for seed in range(4)
    },
    **{
        f"random 300 nodes 400 edges, seed {seed}": (random_graph(seed, 300, 400), [])
        for seed in range(4, 8)
    },
    "duplicates, both directions, self-loops": (
        [
            (1, 2),
            (1, 2),
            (2, 1),
            (2, 1),
            (2, 3),
            (3, 2),  # one path, every edge repeated
            (3, 3),
            (2, 2),  # self-loops inside a component
            (10, 10),
            (10, 10),  # a node seen only in self-loops
            (20, 21),
            (21, 20),
            (21, 22),
            (22, 21),
            (22, 20),
            (20, 22),
        ],
        [],
    ),
    "isolated and overlapping vertices": (
        chain(list(range(10, 0, -1))) + star(50, [41, 42, 43]),
        [-3, 0, 500, 1, 5, 41, 50, 500],  # isolated ones, chain and star ends, a repeat
    ),
}
EXTREMES: list[Edge] = [
    (MIN_LONG, MAX_LONG),
    (MAX_LONG, -1),
    (-1, -2),
    (MIN_LONG + 1, MAX_LONG - 1),
    (MAX_LONG - 1, 2**62),
    (-5, -7),
    (-7, -6),
    (-(2**62), 2**40),
] + chain([MIN_LONG + 10 + i * 7919 for i in range(20)])


def family(name: str) -> tuple[list[Edge], list[int]]:
    """A family's edges and vertices, shifted to its id range."""
    shift = (list(FAMILIES).index(name) + 1) * SPACING
    edges, vertices = FAMILIES[name]
    return [(a + shift, b + shift) for a, b in edges], [v + shift for v in vertices]


def all_families() -> tuple[list[Edge], list[int]]:
    """The extremes and every family, each in its id range: one graph."""
    edges, vertices = list(EXTREMES), []
    for name in FAMILIES:
        more_edges, more_vertices = family(name)
        edges += more_edges
        vertices += more_vertices
    return edges, vertices


@pytest.fixture(scope="module")
def batch(spark):
    """All families labelled in one call: the result, its rows, the input and the progress calls."""
    edges, vertices = all_families()
    calls: list[tuple[int, int]] = []
    got = run(spark, edges, vertices, on_iteration=lambda i, n: calls.append((i, n)))
    return got, got.collect(), edges, vertices, calls


def test_batch_matches_union_find_exactly(spark, batch):
    got, _, edges, vertices, _ = batch
    assert got.dtypes == [("id", "bigint"), ("component", "bigint")]
    expected = spark.createDataFrame(
        sorted(union_find_labels(edges, vertices).items()), "id bigint, component bigint"
    )
    # The whole result, so a missing, extra or repeated vertex fails too.
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def _rows_of(
    batch, edges: list[Edge], vertices: list[int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The batch's rows for one graph's vertices, and the oracle's, both sorted."""
    expected = union_find_labels(edges, vertices)
    got = sorted((row.id, row.component) for row in batch[1] if row.id in expected)
    return got, sorted(expected.items())


def test_a_small_graph_is_joined_on_the_driver_with_the_same_labels(spark):
    edges, vertices = all_families()
    calls: list[tuple[int, int]] = []
    got = run(
        spark, edges, vertices, local_edges=len(edges), on_iteration=lambda *c: calls.append(c)
    )
    assert calls == []  # no round ran
    expected = spark.createDataFrame(
        sorted(union_find_labels(edges, vertices).items()), "id bigint, component bigint"
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    # Over the bound (11 edges, at most 10): the rounds run.
    run(spark, chain(list(range(12))), local_edges=10, on_iteration=lambda *c: calls.append(c))
    assert calls


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_matches_union_find(batch, name):
    # The batch result is compared as a whole above; this names the family that breaks.
    got, expected = _rows_of(batch, *family(name))
    assert got == expected


def test_negative_and_extreme_ids(batch):
    got, expected = _rows_of(batch, EXTREMES, [])
    assert got == expected
    assert (MIN_LONG, MIN_LONG) in got and (MAX_LONG, MIN_LONG) in got


def test_on_iteration_reports_each_round(batch):
    calls = batch[4]
    assert len(calls) >= 5  # the 200-node chains need several rounds
    assert [i for i, _ in calls] == list(range(1, len(calls) + 1))
    counts = [n for _, n in calls]
    # Edges in play never grow, and finished components leave before the last round.
    assert counts == sorted(counts, reverse=True)
    assert counts[-1] < counts[0]


# ----------------------------------------------------------------- separate calls
def test_empty_edges_with_vertices(spark):
    vertices = [3, -2, 7, 7, MAX_LONG]
    calls: list[tuple[int, int]] = []
    got = run(spark, [], vertices, on_iteration=lambda i, n: calls.append((i, n)))
    assert got.count() == 4
    assert_labels(spark, got, [], vertices)
    assert calls == []


def test_a_null_end_adds_only_the_other_end(spark):
    edges = [(1, None), (None, 2), (None, None), (3, 4)]
    got = run(spark, edges)
    expected = spark.createDataFrame(
        [(1, 1), (2, 2), (3, 3), (4, 3)], "id bigint, component bigint"
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_reliable_checkpoints_go_to_the_sessions_directory(spark):
    from precis.frames import checkpoint_dir

    directory = checkpoint_dir(spark)
    assert directory is not None  # the suite's session is started with spark.checkpoint.dir
    root = Path(directory.removeprefix("file:"))
    before = {p for p in root.rglob("*") if p.is_file()}
    edges = chain(shuffled(list(range(30)), seed=3)) + star(300, [301, 302])
    got = run(spark, edges, checkpoint_dir=directory)
    assert_labels(spark, got, edges)
    assert {p for p in root.rglob("*") if p.is_file()} - before  # the rounds were written there


def test_local_checkpoints_persisted_rounds_and_notices_every_round(spark, monkeypatch):
    # No checkpoint directory (the default): local checkpoints; every other round only
    # persisted; the finished-star notices sent from the first round on.
    monkeypatch.setattr(components, "NOTICE_BUDGET", float("inf"))
    edges = (
        chain(shuffled(list(range(40)), seed=5))
        + clique([104, 102, 109])
        + [(200, 201)]
        + star(300, [301, 302])
    )
    got = run(spark, edges, [1000], checkpoint_interval=2)
    assert got.count() == 49
    assert_labels(spark, got, edges, [1000])


# ----------------------------------------------------------------- limits
def test_non_convergence_raises_with_the_iteration_count(spark):
    with pytest.raises(RuntimeError, match="within 1 iterations"):
        run(spark, chain(list(range(100))), max_iterations=1)


@pytest.mark.parametrize("kwargs", [{"checkpoint_interval": 0}, {"max_iterations": -1}])
def test_invalid_arguments(spark, kwargs):
    with pytest.raises(ValueError):
        run(spark, [(1, 2)], **kwargs)


# ----------------------------------------------------------------- the benchmark's GraphX baseline
@pytest.fixture(scope="module")
def graphx_bench(spark):
    """``bench/bench_components.py`` with its Java helper loaded into the running session.

    The benchmark puts the helper's jar on ``spark.jars`` when it starts its own session;
    this one is running already, so the jar joins the driver's class loader, which in
    local mode the executor's tasks load through too.
    """
    spec = importlib.util.spec_from_file_location(
        "bench_components", PROJECT / "bench" / "bench_components.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    try:
        jar = bench.graphx_helper_jar()
    except SystemExit as no_javac:
        pytest.skip(str(no_javac))
    jvm = spark._jvm
    url = jvm.java.io.File(str(jar)).toURI().toURL()
    jvm.java.lang.Thread.currentThread().getContextClassLoader().addURL(url)
    return bench


def test_graphx_baseline_matches_union_find(spark, graphx_bench):
    # Pregel needs a superstep per hop from a component's minimum: no long chains or cycles.
    short = [name for name in FAMILIES if "chain" not in name and "cycle" not in name]
    edges = list(EXTREMES) + [edge for name in short for edge in family(name)[0]]
    labels, _ = graphx_bench.graphx_components(
        spark.createDataFrame(edges, "src bigint, dst bigint")
    )
    assert labels.count() == len(union_find_labels(edges))
    assert_labels(spark, labels, edges)
    labels.unpersist()


def test_graphx_baseline_counts_pregel_supersteps(spark, graphx_bench):
    # The minimum's label moves one hop per superstep: 9 to reach the far end of 10 nodes.
    edges = spark.createDataFrame(chain(list(range(10))), "src bigint, dst bigint")
    labels, supersteps = graphx_bench.graphx_components(edges)
    assert supersteps == 9
    assert labels.where("component != 0").count() == 0
    labels.unpersist()
