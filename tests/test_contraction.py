"""Connected components by randomized contraction: the same labels as the union-find
oracle and as ``connected_components``, on the same graph shapes."""

from __future__ import annotations

from pathlib import Path

from chispa import assert_df_equality

from precis.identity import contraction
from precis.identity.components import connected_components
from precis.identity.contraction import contracted_components
from test_components import (
    FAMILIES,
    MAX_LONG,
    MIN_LONG,
    all_families,
    chain,
    family,
    random_graph,
    shuffled,
    star,
    union_find_labels,
)


def _frames(spark, edges, vertices=None):
    edge_frame = spark.createDataFrame(edges, "src bigint, dst bigint")
    vertex_frame = (
        None if vertices is None else spark.createDataFrame([(v,) for v in vertices], "id bigint")
    )
    return edge_frame, vertex_frame


def _expected(spark, edges, vertices=()):
    labels = sorted(union_find_labels(edges, vertices).items())
    return spark.createDataFrame(labels, "id bigint, component bigint")


def test_every_family_at_once_matches_union_find(spark):
    edges, vertices = all_families()
    calls: list[tuple[int, int]] = []
    got = contracted_components(
        *_frames(spark, edges, vertices),
        local_edges=0,  # every round on Spark, none finished on the driver
        on_iteration=lambda i, n: calls.append((i, n)),
    )
    assert got.dtypes == [("id", "bigint"), ("component", "bigint")]
    rows = {r.id: r.component for r in got.collect()}
    assert len(rows) == got.count()  # one row per vertex
    for name in FAMILIES:  # names the family that breaks
        f_edges, f_vertices = family(name)
        expected = union_find_labels(f_edges, f_vertices)
        assert {v: rows.get(v) for v in expected} == expected, name
    assert rows == union_find_labels(edges, vertices)
    assert rows[MAX_LONG] == MIN_LONG
    # Rounds are numbered from 1; the edges left never grow.
    assert [i for i, _ in calls] == list(range(1, len(calls) + 1))
    counts = [n for _, n in calls]
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0]


def calls_to(calls: list[int]):
    return lambda i, n: calls.append(n)


def test_a_larger_random_graph_agrees_with_the_star_algorithm(spark):
    edges = random_graph(11, 4000, 3600) + chain(shuffled(list(range(5000, 7000)), seed=5))
    frames = _frames(spark, edges)
    expected = _expected(spark, edges)
    # Finished on the driver at once (the default), and after Spark rounds.
    for local_edges in (contraction.LOCAL_EDGES, 3000):
        calls: list[int] = []
        got = contracted_components(*frames, local_edges=local_edges, on_iteration=calls_to(calls))
        assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
        # Spark rounds while more edges are left, then one finish on the driver.
        assert calls[-1] <= local_edges < min(calls[:-1], default=local_edges + 1)
    assert len(calls) > 2
    stars = connected_components(*frames)
    assert_df_equality(stars, expected, ignore_row_order=True, ignore_nullable=True)


def test_vertices_only_self_loops_and_null_ends(spark):
    got = contracted_components(*_frames(spark, [], [3, -2, 7, 7, MAX_LONG]))
    assert sorted(tuple(r) for r in got.collect()) == [
        (-2, -2),
        (3, 3),
        (7, 7),
        (MAX_LONG, MAX_LONG),
    ]
    edges = [(1, None), (None, 2), (None, None), (3, 4), (5, 5)]
    got = contracted_components(*_frames(spark, edges))
    assert sorted(tuple(r) for r in got.collect()) == [(1, 1), (2, 2), (3, 3), (4, 3), (5, 5)]


def test_reliable_checkpoints_go_to_the_sessions_directory(spark):
    from precis.frames import checkpoint_dir

    directory = checkpoint_dir(spark)
    assert directory is not None
    root = Path(directory.removeprefix("file:"))
    before = {p for p in root.rglob("*") if p.is_file()}
    edges = chain(shuffled(list(range(30)), seed=3)) + star(300, [301, 302])
    got = contracted_components(*_frames(spark, edges), checkpoint_dir=directory)
    assert_df_equality(got, _expected(spark, edges), ignore_row_order=True, ignore_nullable=True)
    assert {p for p in root.rglob("*") if p.is_file()} - before
