"""Bronze and quarantine keep no plain PII; suppressed people never reach bronze."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import load_config
from precis.jobs import ingest
from precis.privacy import DEVELOPMENT_KEY
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]

OBS = """source,record_id,id_type,id_value,observed_at
crm,r1,email, Alice@Example.COM ,2026-01-01T10:00:00Z
crm,r1,device_id,DEV-1,2026-01-01T10:00:00Z
pos,r2,phone,13812345678,2026-01-02 11:00:00
pos,r3,fax,555-0100,2026-01-02 11:00:00
pos,r4,phone,13912345678,notadate
"""
ORDERS = """order_id,order_time,id_type,id_value,amount,currency,channel,status
o1,2026-01-05T10:00:00,email,alice@example.com,100.5,cny,app,
o2,2026-01-06T10:00:00,member_id,M2,20,CNY,web,paid
"""
ITEMS = """order_id,item_id,quantity,unit_price
o1,i1,1,100.5
o2,i2,2,10
"""
PLAIN = ("alice", "Alice", "13812345678", "13912345678", "555-0100")


def _key(value: str) -> str:
    return hmac.new(DEVELOPMENT_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def _land(root: Path) -> None:
    for dataset, text in (("id_observations", OBS), ("orders", ORDERS), ("order_items", ITEMS)):
        folder = root / "landing" / dataset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part.csv").write_text(text)


def _cfg(tmp_path, *extra: str):
    return load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={tmp_path / 'lakehouse'}",
            *(f"landing.{d}.format=csv" for d in ("id_observations", "orders", "order_items")),
            "mlflow.enabled=false",
            *extra,
        ],
        run_date="2026-02-01",
    )


def _text(df) -> str:
    return " ".join(str(v) for row in df.collect() for v in row)


@pytest.fixture(autouse=True)
def _development_key(monkeypatch):
    monkeypatch.delenv("PRECIS_PII_KEY", raising=False)


def test_bronze_and_quarantine_hold_keys_not_plain_values(spark, tmp_path):
    cfg = _cfg(tmp_path)
    _land(Path(cfg.root))
    ingest.run(spark, cfg)
    lake = Lakehouse.from_config(spark, cfg)
    bronze = lake.read(T.BRONZE["id_observations"]).select("record_id", "id_type", "id_value")
    expected = spark.createDataFrame(
        [
            ("r1", "email", _key("alice@example.com")),
            ("r1", "device_id", "DEV-1"),  # not PII: as landed
            ("r2", "phone", _key("+8613812345678")),
            ("r3", "fax", _key("555-0100")),  # unknown type: may be PII, hashed
            ("r4", "phone", _key("+8613912345678")),
        ],
        "record_id string, id_type string, id_value string",
    )
    assert_df_equality(bronze, expected, ignore_row_order=True, ignore_nullable=True)
    keys = {r[0] for r in lake.read(T.BRONZE["id_observations"]).select("_id_key").collect()}
    assert "dev-1" in keys and _key("alice@example.com") in keys
    quarantine = lake.read(T.QUARANTINE)
    assert quarantine.count() == 2  # the unknown type and the bad date
    for table in (T.QUARANTINE, T.BRONZE["id_observations"], T.BRONZE["orders"]):
        text = _text(lake.read(table))
        assert not [p for p in PLAIN if p in text], table.ref


def test_keep_plain_pii_keeps_bronze_plain_but_not_quarantine(spark, tmp_path):
    cfg = _cfg(tmp_path, "bronze.keep_plain_pii=true")
    _land(Path(cfg.root))
    ingest.run(spark, cfg)
    lake = Lakehouse.from_config(spark, cfg)
    values = {r[0] for r in lake.read(T.BRONZE["id_observations"]).select("id_value").collect()}
    assert " Alice@Example.COM " in values or "Alice@Example.COM" in values
    assert "13812345678" in values
    raw = _text(lake.read(T.QUARANTINE).select("raw"))
    assert "13912345678" not in raw and "555-0100" not in raw
    assert _key("+8613912345678") in raw
    # Silver is the same either way.
    silver = lake.read(T.ID_OBSERVATIONS).select("id_type", "id_key")
    assert (silver.filter(F.col("id_key") == _key("alice@example.com")).count()) == 1


def test_suppressed_people_never_reach_bronze(spark, tmp_path):
    cfg = _cfg(tmp_path)
    _land(Path(cfg.root))
    lake = Lakehouse.from_config(spark, cfg)
    at = dt.datetime(2026, 1, 20)
    rows = [
        ("email:x", "email", _key("alice@example.com"), at, dt.date(2026, 1, 20), at, "f"),
        ("email:x", "order_id", "o1", at, dt.date(2026, 1, 20), at, "f"),
    ]
    schema = (
        "request_key string, id_type string, id_key string, requested_at timestamp, "
        "run_date date, forgotten_at timestamp, key_fingerprint string"
    )
    lake.append_log(spark.createDataFrame(rows, schema), T.SUPPRESSIONS)

    summaries = ingest.run(spark, cfg)

    # Record r1 goes whole (its device too); order o1 and its items go.
    obs, orders, items = (summaries[d] for d in ("id_observations", "orders", "order_items"))
    assert (obs.suppressed, orders.suppressed, items.suppressed) == (2, 1, 1)
    assert obs.balanced() and orders.balanced() and items.balanced()
    assert {r[0] for r in lake.read(T.BRONZE["id_observations"]).select("record_id").collect()} == {
        "r2",
        "r3",
        "r4",
    }
    assert [r[0] for r in lake.read(T.ORDER_ITEMS).select("order_id").collect()] == ["o2"]
    assert [r[0] for r in lake.read(T.ORDERS).select("order_id").collect()] == ["o2"]
    assert "DEV-1" not in _text(lake.read(T.BRONZE["id_observations"]))
    assert lake.read(T.ID_OBSERVATIONS).filter(F.col("record_id") == "r1").count() == 0


ORDERS_JSON = (
    '{"order_id": "o1", "order_time": "2026-01-05T10:00:00", "id_type": "email", '
    '"id_value": "alice@example.com", "amount": 100.5, "currency": "cny", "channel": "app"}\n'
    '{"order_id": "o2", "order_time": "2026-01-06T10:00:00", "id_type": "member_id", '
    '"id_value": "M2", "amount": 20, "currency": "CNY", "channel": "web", "status": "paid"}\n'
)


def test_rewrite_landing_removes_exactly_their_rows_and_keeps_each_file(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from precis.ingest.conform import IdentifierSettings
    from precis.jobs import forget

    cfg = _cfg(tmp_path, "landing.orders.format=json", "landing.order_items.format=parquet")
    root = Path(cfg.root) / "landing"
    for dataset in ("id_observations", "orders", "order_items"):
        (root / dataset).mkdir(parents=True)
    (root / "id_observations" / "day1.csv").write_text(OBS)
    (root / "id_observations" / "day2.csv").write_text("source,record_id,id_type,id_value\n")
    (root / "orders" / "orders.json").write_text(ORDERS_JSON)
    items = pa.table(
        {
            "order_id": ["o1", "o2"],
            "item_id": ["i1", "i2"],
            "quantity": [1, 2],
            "unit_price": [100.5, 10.0],
        }
    )
    pq.write_table(items, root / "order_items" / "items.parquet")
    lake = Lakehouse.from_config(spark, cfg)
    at = dt.datetime(2026, 1, 20)
    schema = (
        "request_key string, id_type string, id_key string, requested_at timestamp, "
        "run_date date, forgotten_at timestamp, key_fingerprint string"
    )
    rows = [
        ("email:x", "email", _key("alice@example.com"), at, dt.date(2026, 1, 20), at, "f"),
        ("email:x", "order_id", "o1", at, dt.date(2026, 1, 20), at, "f"),
    ]
    lake.append_log(spark.createDataFrame(rows, schema), T.SUPPRESSIONS)
    settings = IdentifierSettings.from_config(cfg)

    removed = forget.rewrite_landing(spark, cfg, lake, settings)

    files = {
        ref.split(":", 1)[0] + ":" + Path(ref.split(":", 1)[1]).name: n
        for ref, n in removed.items()
    }
    assert files == {
        "landing/id_observations:day1.csv": 2,  # record r1, its device too
        "landing/orders:orders.json": 1,
        "landing/order_items:items.parquet": 1,
    }
    # Same files, same names, the others' rows as landed; nothing left beside them.
    assert sorted(p.name for p in (root / "id_observations").iterdir()) == ["day1.csv", "day2.csv"]
    day1 = (root / "id_observations" / "day1.csv").read_text().splitlines()
    assert day1 == [line for line in OBS.splitlines() if ",r1," not in line]
    assert (
        root / "id_observations" / "day2.csv"
    ).read_text() == "source,record_id,id_type,id_value\n"
    orders = [r.asDict() for r in spark.read.json(str(root / "orders" / "orders.json")).collect()]
    assert [(o["order_id"], o["amount"], o["status"]) for o in orders] == [("o2", 20.0, "paid")]
    assert pq.read_table(root / "order_items" / "items.parquet").to_pylist() == [
        {"order_id": "o2", "item_id": "i2", "quantity": 2, "unit_price": 10.0}
    ]
    assert sorted(p.name for p in (root / "orders").iterdir()) == ["orders.json"]
    # Again: nothing of theirs is left, nothing is rewritten.
    assert forget.rewrite_landing(spark, cfg, lake, settings) == {}
    # And the rewritten files ingest with nothing to suppress.
    summaries = ingest.run(spark, cfg)
    assert {d: s.suppressed for d, s in summaries.items()} == {
        "id_observations": 0,
        "orders": 0,
        "order_items": 0,
    }


def test_rewrite_landing_refuses_landing_it_cannot_rename_before_spark_starts(tmp_path):
    from precis.errors import ConfigError

    with pytest.raises(ConfigError, match=r"forget\.rewrite_landing.*landing\.orders\.path"):
        _cfg(tmp_path, "forget.rewrite_landing=true", "landing.orders.path=s3://bucket/orders")
    # A Delta landing table is rewritten by Spark itself: allowed anywhere.
    cfg = _cfg(
        tmp_path,
        "forget.rewrite_landing=true",
        "landing.orders.path=s3://bucket/orders",
        "landing.orders.format=delta",
    )
    assert cfg.forget.rewrite_landing
