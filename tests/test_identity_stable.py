"""Stable one_id naming across runs: unchanged, merge, split, new, deleted."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from precis.identity import stable

DAY = dt.date(2026, 3, 31)
T = dt.datetime(2026, 1, 1)


def _current(spark, clusters: dict[int, list[int]]):
    rows = [
        (node, cluster, T + dt.timedelta(days=cluster))
        for cluster, nodes in clusters.items()
        for node in nodes
    ]
    return spark.createDataFrame(rows, "node long, cluster long, first_seen timestamp")


def _previous(spark, ids: dict[str, list[int]]):
    return spark.createDataFrame(
        [(n, one_id) for one_id, nodes in ids.items() for n in nodes], "node long, one_id string"
    )


def _created(spark, when: dict[str, int]):
    return spark.createDataFrame(
        [(one_id, T + dt.timedelta(days=d)) for one_id, d in when.items()],
        "one_id string, created_at timestamp",
    )


def _assign(spark, clusters, previous=None, created=None):
    prev = _previous(spark, previous) if previous else None
    made = _created(spark, created) if created else None
    issued = prev.select("one_id").distinct() if prev is not None else None
    mapping, changes = stable.assign(_current(spark, clusters), prev, made, issued, DAY)
    by_node = {r["node"]: r["one_id"] for r in mapping.collect()}
    log = sorted(
        (r["change"], r["one_id"], r["related_one_id"], r["identifiers"]) for r in changes.collect()
    )
    return by_node, log


def test_first_run_creates_one_opaque_id_per_cluster(spark):
    by_node, log = _assign(spark, {1: [1, 2], 3: [3]})
    assert by_node[1] == by_node[2] != by_node[3]
    assert all(v.startswith("p") and len(v) == 21 for v in by_node.values())
    assert sorted(c for c, *_ in log) == ["created", "created"]
    # Deterministic: the same clusters on the same run date get the same ids.
    again, _ = _assign(spark, {1: [1, 2], 3: [3]})
    assert again == by_node


def test_unchanged_clusters_keep_their_ids_and_log_nothing(spark):
    by_node, log = _assign(spark, {1: [1, 2], 3: [3]}, previous={"pA": [1, 2], "pB": [3]})
    assert by_node == {1: "pA", 2: "pA", 3: "pB"}
    assert log == []


def test_merge_keeps_the_id_with_the_largest_overlap(spark):
    by_node, log = _assign(
        spark, {1: [1, 2, 3]}, previous={"pA": [1], "pB": [2, 3]}, created={"pA": 0, "pB": 5}
    )
    assert set(by_node.values()) == {"pB"}
    assert log == [("merged", "pA", "pB", 1)]


def test_merge_tie_keeps_the_oldest_id(spark):
    by_node, log = _assign(
        spark, {1: [1, 2]}, previous={"pA": [1], "pB": [2]}, created={"pA": 9, "pB": 1}
    )
    assert set(by_node.values()) == {"pB"}
    assert log == [("merged", "pA", "pB", 1)]


def test_split_leaves_the_id_with_the_largest_fragment(spark):
    by_node, log = _assign(spark, {1: [1], 2: [2, 3]}, previous={"pA": [1, 2, 3]})
    assert by_node[2] == by_node[3] == "pA"
    assert by_node[1] not in ("pA",)
    assert log == [("split", by_node[1], "pA", 1)]


def test_new_identifiers_join_or_create_and_vanished_ids_are_deleted(spark):
    by_node, log = _assign(spark, {1: [1, 4], 5: [5]}, previous={"pA": [1], "pZ": [9]})
    assert by_node[1] == by_node[4] == "pA"
    assert ("created", by_node[5], None, 1) in log
    assert ("deleted", "pZ", None, 0) in log
    assert len(log) == 2


def test_new_ids_never_reuse_an_issued_id(spark):
    current = _current(spark, {7: [7]})
    taken = stable.new_id(DAY)
    clash = current.select(taken.alias("one_id"))
    mapping, _ = stable.assign(current, None, None, clash, DAY)
    assert mapping.first()["one_id"] != clash.first()["one_id"]


def test_mapping_has_one_row_per_node(spark):
    mapping, _ = stable.assign(
        _current(spark, {1: [1, 2, 3], 4: [4]}), _previous(spark, {"pA": [1, 4]}), None, None, DAY
    )
    expected = spark.createDataFrame([(1,), (2,), (3,), (4,)], "node long")
    assert_df_equality(
        mapping.select("node"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_ids_born_on_the_run_date_outside_the_map_count_as_not_issued(spark):
    # A run of DAY wrote its changes, then died before the map: its new ids are free
    # for the rerun of DAY, which names the same clusters the same way.
    identity_map = spark.createDataFrame(
        [("email", "k1", "pOLD")], "id_type string, id_key string, one_id string"
    )
    changes = spark.createDataFrame(
        [
            ("created", "pOLD", DAY - dt.timedelta(days=1), T),
            ("split", "pGONE", DAY - dt.timedelta(days=1), T),
            ("created", "pDAY", DAY, T),
        ],
        "change string, one_id string, run_date date, changed_at timestamp",
    )
    _, created, issued = stable.history(identity_map, changes, DAY)
    assert sorted(r["one_id"] for r in issued.collect()) == ["pGONE", "pOLD"]
    assert sorted(r["one_id"] for r in created.collect()) == ["pDAY", "pGONE", "pOLD"]
