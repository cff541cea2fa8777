"""Who a forget request means, and which columns find their rows (tiny frames)."""

from __future__ import annotations

import datetime as dt
import hashlib

from chispa import assert_df_equality

from precis import forget

AT = dt.datetime(2026, 3, 1)


def _world(spark):
    identity_map = spark.createDataFrame(
        [
            ("email", "k-ann", "P1"),
            ("device_id", "dev-ann", "P1"),
            ("member_id", "M-BOB", "P2"),
            ("email", "k-cat", "P3"),
        ],
        "id_type string, id_key string, one_id string",
    )
    records = spark.createDataFrame(
        [
            ("id_observations", "crm", "r1", "P1"),
            ("orders", "orders", "o1", "P1"),
            ("id_observations", "pos", "r2", "P2"),
            ("id_observations", "pos", "r3", "P3"),
        ],
        "dataset string, source string, record_id string, one_id string",
    )
    orders = spark.createDataFrame(
        [("o1", "email", "k-ann"), ("o2", "member_id", "M-BOB"), ("o3", "email", "k-cat")],
        "order_id string, id_type string, id_key string",
    )
    return identity_map, records, orders


def test_a_request_means_the_whole_person(spark):
    identity_map, records, orders = _world(spark)
    todo = spark.createDataFrame(
        [
            ("email:k-ann", "email", "k-ann", AT),
            ("one_id:P2", "one_id", "P2", AT),
            ("email:k-new", "email", "k-new", AT),  # not resolved by identity yet
        ],
        forget.REQUESTS_SCHEMA,
    )
    who, pairs = forget.person(todo, identity_map, records, orders, None)
    assert sorted(r[0] for r in who.one_ids.collect()) == ["P1", "P2"]
    assert sorted(tuple(r) for r in who.identifiers.collect()) == [
        ("device_id", "dev-ann"),
        ("email", "k-ann"),
        ("email", "k-new"),
        ("member_id", "M-BOB"),
    ]
    assert sorted(tuple(r) for r in who.records.collect()) == [
        ("id_observations", "crm", "r1"),
        ("id_observations", "pos", "r2"),
        ("orders", "orders", "o1"),
    ]
    assert sorted(r[0] for r in who.orders.collect()) == ["o1", "o2"]
    expected = spark.createDataFrame(
        [
            ("email:k-ann", "email", "k-ann"),
            ("email:k-ann", "device_id", "dev-ann"),
            ("email:k-ann", "order_id", "o1"),
            ("email:k-new", "email", "k-new"),
            ("one_id:P2", "member_id", "M-BOB"),
            ("one_id:P2", "order_id", "o2"),
        ],
        "request_key string, id_type string, id_key string",
    )
    assert_df_equality(pairs, expected, ignore_row_order=True, ignore_nullable=True)
    rows = forget.suppression_rows(pairs, todo, "fp", dt.date(2026, 3, 2), AT)
    assert rows.filter("id_type = 'one_id'").count() == 0  # a one_id is no identifier
    assert {r["key_fingerprint"] for r in rows.collect()} == {"fp"}


def test_done_requests_are_not_pending(spark):
    todo = spark.createDataFrame(
        [
            ("email:a", "email", "a", AT),
            ("email:b", "email", "b", AT),
            ("email:b", "email", "b", AT),
        ],
        forget.REQUESTS_SCHEMA,
    )
    log = spark.createDataFrame([("run1", ["email:a"])], "run_id string, requests array<string>")
    assert [r[0] for r in forget.pending(todo, log).collect()] == ["email:b"]


def test_columns_decide_how_rows_are_found(spark):
    identity_map, records, orders = _world(spark)
    todo = spark.createDataFrame([("one_id:P3", "one_id", "P3", AT)], forget.REQUESTS_SCHEMA)
    who, _ = forget.person(todo, identity_map, records, orders, None)

    def on(columns):
        return [cols for _, cols in forget.matches(columns, who)]

    # A one_id column: the person's one_ids, then the speed layer's provisional ones.
    assert on(["one_id", "tag", "value"]) == [("one_id",), ("one_id",)]
    assert on(["change", "one_id", "related_one_id"]) == [
        ("one_id",), ("one_id",), ("related_one_id",),
    ]  # fmt: skip
    (_, found), (_, provisional) = [
        (cols, {r[0] for r in frame.collect()}) for frame, cols in forget.matches(["one_id"], who)
    ]
    keys = identity_map.filter("one_id = 'P3'").select("id_type", "id_key").collect()
    assert found == {"P3"}
    assert provisional == {
        "tmp_" + hashlib.sha256(f"{t}:{k}".encode()).hexdigest()[:24] for t, k in keys
    }
    assert on(["order_id", "id_type", "id_key", "amount"]) == [("id_type", "id_key")]
    assert on(["order_id", "item_id", "quantity"]) == [("order_id",)]
    assert on(["dataset", "source", "record_id", "nodes"]) == [("dataset", "source", "record_id")]
    assert on(["node", "component"]) == [("node",)]
    assert on(["segment", "people"]) == []
