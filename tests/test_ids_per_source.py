"""Ids unique only within their source (``ingest.ids_per_source``): silver holds
``<source>:<id>``, so two systems' order ``1001`` are two orders, and everything keyed
by the id (order items, forgetting) follows."""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from conftest import bronze_of
from precis import tables as T
from precis.config import load_config
from precis.errors import ConfigError
from precis.ingest import batch, conform, protect
from precis.ingest import identifiers as ids
from precis.jobs import ingest
from precis.schemas import SPECS
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
BASE = PROJECT / "conf" / "base.yaml"
SETTINGS = conform.IdentifierSettings(
    rules={"member_id": "trim"},
    country_code="86",
    placeholder_values={},
    placeholder_patterns={},
    pii_types=(),
    key=b"secret",
)
SCOPED = conform.ValueChecks(per_source=frozenset({"events", "orders"}))


EVENTS = [
    ("e1", "2026-01-05T10:00:00", "Web", "member_id", "M1", "view"),
    ("e1", "2026-01-05T11:00:00", "app", "member_id", "M2", "view"),  # another system's e1
    ("e1", "2026-01-05T12:00:00", "app", "member_id", "M2", "view"),  # the same e1, later
    ("e2", "2026-01-05T10:00:00", None, "member_id", "M1", "view"),
    ("e3", "2026-01-05T10:00:00", "crm:eu", "member_id", "M1", "view"),
]
EVENTS_SCHEMA = (
    "event_id string, event_time string, source string, id_type string, id_value string, "
    "event_type string"
)


def test_scoped_ids_keep_each_systems_records_apart(spark):
    out = batch.build_batch(
        bronze_of(spark, EVENTS, EVENTS_SCHEMA), SPECS["events"], SETTINGS, SCOPED
    )
    got = out.silver.select("event_id", "source", "id_key", F.hour("event_time").alias("h"))
    expected = spark.createDataFrame(
        [("web:e1", "web", "M1", 10), ("app:e1", "app", "M2", 12)],
        "event_id string, source string, id_key string, h int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    reasons = out.quarantine.select(F.get_json_object("raw", "$.event_id").alias("id"), "reason")
    assert sorted(tuple(r) for r in reasons.collect()) == [
        ("e2", "missing:source"),
        ("e3", "bad_value:source"),  # the separator: crm:eu + x and crm + eu:x would meet
    ]
    counts = batch.batch_counts(out.typed.agg(*out.batch_metrics).collect()[0].asDict())
    assert counts.reasons == {"missing:source": 1, "bad_value:source": 1}


def test_without_the_setting_an_id_is_one_record_whatever_its_source(spark):
    out = batch.build_batch(bronze_of(spark, EVENTS, EVENTS_SCHEMA), SPECS["events"], SETTINGS)
    got = sorted(tuple(r) for r in out.silver.select("event_id", "source").collect())
    assert got == [("e1", "app"), ("e2", None), ("e3", "crm:eu")]  # the contract's key


def test_order_items_follow_their_orders(spark):
    items = bronze_of(
        spark,
        [("1001", "i1", "2", "5", "shop"), ("1001", "i2", "1", "9", "pos")],
        "order_id string, item_id string, quantity string, unit_price string, source string",
    )
    out = batch.build_batch(items, SPECS["order_items"], SETTINGS, SCOPED)
    got = sorted(tuple(r) for r in out.silver.select("order_id", "item_id").collect())
    assert got == [("pos:1001", "i2"), ("shop:1001", "i1")]
    # orders not listed: order_items keep the contract's ids
    plain = batch.build_batch(items, SPECS["order_items"], SETTINGS)
    assert sorted(r[0] for r in plain.silver.select("order_id").collect()) == ["1001", "1001"]


def test_a_forgotten_order_keeps_its_items_out_in_either_form(spark):
    """meta/suppressions holds silver's order id: scoped or not, a landed item of that
    order is suppressed, and only that order's."""
    items = spark.createDataFrame(
        [("1001", "i1", "Shop"), ("1001", "i2", "pos"), ("1002", "i3", "shop")],
        "order_id string, item_id string, source string",
    )
    for forgotten, expected in (("shop:1001", ["i1"]), ("1002", ["i3"])):
        suppressions = spark.createDataFrame(
            [(protect.ORDER_SUPPRESSION, forgotten)], "id_type string, id_key string"
        )
        flagged = protect.suppress(items, SPECS["order_items"], suppressions)
        got = sorted(r["item_id"] for r in flagged.filter(F.col(protect.FLAG)).collect())
        assert got == expected, forgotten
    # Without a source column only the plain form can match.
    no_source = items.drop("source").select(ids.is_order(["order_id"], F.lit("1001")).alias("m"))
    assert [r["m"] for r in no_source.collect()] == [True, True, False]


def test_only_datasets_with_such_ids_can_be_listed():
    with pytest.raises(
        ConfigError, match=r"ingest\.ids_per_source.*\['items'\] have no per-source"
    ):
        load_config(BASE, ["ingest.ids_per_source=[items]"])


def test_ingest_lands_two_systems_with_the_same_order_ids(spark, tmp_path):
    land = tmp_path / "landing"
    (land / "orders").mkdir(parents=True)
    (land / "order_items").mkdir(parents=True)
    (land / "orders" / "o.csv").write_text(
        "order_id,order_time,id_type,id_value,amount,status,source\n"
        "1001,2026-01-05T10:00:00,member_id,M1,10,paid,shop\n"
        "1001,2026-01-05T11:00:00,member_id,M2,20,paid,pos\n"
    )
    (land / "order_items" / "i.csv").write_text(
        "order_id,item_id,quantity,unit_price,source\n1001,i1,1,10,shop\n1001,i2,2,10,pos\n"
    )
    cfg = load_config(
        BASE,
        [
            f"storage.root={tmp_path}",
            "mlflow.enabled=false",
            "bronze.retention_days=null",
            "landing.orders.format=csv",
            "landing.order_items.format=csv",
            "ingest.ids_per_source=[orders]",
        ],
        run_date="2026-02-01",
    )
    ingest.run(spark, cfg)
    lake = Lakehouse.from_config(spark, cfg)
    orders = {
        r[0]: (r[1], r[2])
        for r in lake.read(T.ORDERS).select("order_id", "id_key", "amount").collect()
    }
    assert orders == {"shop:1001": ("M1", 10.0), "pos:1001": ("M2", 20.0)}
    joined = lake.read(T.ORDER_ITEMS).join(lake.read(T.ORDERS), "order_id")
    assert sorted((r["item_id"], r["id_key"]) for r in joined.collect()) == [
        ("i1", "M1"),
        ("i2", "M2"),
    ]
