"""Hostile landing data: every kind of bad input has one exact, documented outcome.

One landing world holds them all (docs/ingest.md, "Bad input", lists each class and
what ingest does with it); a single ingest run reads it, and each test checks the
outcome of its kind: the value silver holds, the quarantine reason, or the error. In
every dataset every landed row is accounted for.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DoubleType, StringType, StructField, StructType

from precis import tables as T
from precis.config import load_config
from precis.errors import ConfigError
from precis.ingest import batch as ib
from precis.ingest import files
from precis.ingest import identifiers as ids
from precis.ingest.batch import DatasetFailed
from precis.ingest.files import write_folder
from precis.jobs import ingest
from precis.privacy import DEVELOPMENT_KEY
from precis.schemas import SPECS
from precis.storage import Lakehouse, LandingFile, list_landing_files, read_landing

PROJECT = Path(__file__).resolve().parents[1]
NBSP, IDEO, ZWSP, BOM = "\u00a0", "\u3000", "\u200b", "\ufeff"
FW = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})  # to full width
LONG = "x" * 20_000
HEADER = "order_id,order_time,id_type,id_value,amount,currency,channel,status"


def _key(value: str) -> str:
    return hmac.new(DEVELOPMENT_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- identifiers alone
@pytest.mark.parametrize(
    "rule, raw, expected",
    [
        ("phone", "138" + "1234".translate(FW) + "5678", "+8613812345678"),  # full-width digits
        ("phone", "+86".translate(FW) + " 138 1234 5678", "+8613812345678"),  # full-width plus
        ("phone", f"{IDEO}13812345678{IDEO}", "+8613812345678"),  # ideographic space
        ("email", f"{NBSP}Alice@Example.com{NBSP}", "alice@example.com"),  # no-break space
        ("email", "alice" + "@".translate(FW) + "example.com", "alice@example.com"),
        ("email", f"{BOM}alice@example.com{ZWSP}", "alice@example.com"),  # BOM, zero width
        ("email", "alice @\texample.com", "alice@example.com"),  # inner white space
        ("trim", "\tM001\r\n", "M001"),  # tab, CRLF
        ("trim", f"{NBSP}{IDEO}", None),  # white space only: missing
        ("trim", "m001".translate(FW), "m001"),  # full-width letters
        ("trim", "🎁member", "🎁member"),  # emoji kept
        ("lower", "ABCDEF00-1111", "abcdef00-1111"),
        ("trim", LONG, LONG),  # very long value kept whole
    ],
)
def test_identifier_folding(spark, rule, raw, expected):
    got = (
        spark.createDataFrame([(raw,)], "v string")
        .select(ids.normalize(F.col("v"), rule, "86"))
        .first()[0]
    )
    assert got == expected


def test_orders_without_status_column_fail_unless_config_says_paid():
    columns = [c for c in SPECS["orders"].column_names if c != "status"]
    with pytest.raises(DatasetFailed, match=r"'orders' \(/l/orders\) has no column 'status'"):
        ib.require_columns(columns, SPECS["orders"], "/l/orders")
    ib.require_columns(columns, SPECS["orders"], "/l/orders", orders_paid=True)


def test_unknown_encoding_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"landing\.items\.encoding.*no-such-charset"):
        load_config(PROJECT / "conf" / "base.yaml", ["landing.items.encoding=no-such-charset"])


def test_unreadable_landing_path_names_the_key(spark, tmp_path):
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={tmp_path}", "landing.items.path=nosuchscheme://bucket/items"],
    )
    with pytest.raises(ConfigError, match=r"landing\.items\.path \(nosuchscheme://bucket/items\)"):
        ingest.landed_files(spark, cfg, "items")


# ---------------------------------------------------------------- one hostile world
def _write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))


def _orders(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


FUTURE = "2099-01-01T00:00:00"


@pytest.fixture(scope="module")
def hostile(spark, tmp_path_factory):
    """Land the hostile world, ingest it once; (config, lakehouse, the job's error)."""
    root = tmp_path_factory.mktemp("hostile")
    land = root / "lakehouse" / "landing"
    _write(
        land / "orders" / "a_base.csv",
        _orders(
            "h01,2026-01-05T10:00:00,phone,138" + "1234".translate(FW) + "5678,10,CNY,app,paid",
            "h02,2026-01-05T10:00:00,member_id,M2,NaN,CNY,app,paid",
            "h03,2026-01-05T10:00:00,member_id,M3,Infinity,CNY,app,paid",
            "h04,2026-01-05T10:00:00,member_id,M4,1e400,CNY,app,paid",
            f"h05,{FUTURE},member_id,M5,10,CNY,app,paid",
            "h06,2026/01/05 10:00,member_id,M6,10,CNY,app,paid",
            "h07,2026-01-05,member_id,M7,10,CNY,app,paid",
            "h08,2026-01-05 10:00:00,member_id,M8,10,CNY,app,paid",
            "h09,2026-01-05T10:00:00+08:00,member_id,M9,10,CNY,app,paid",
            f"h10,2026-01-05T10:00:00,member_id,{NBSP}{IDEO},10,CNY,app,paid",
            f"h11,2026-01-05T10:00:00,email,{NBSP}Alice"
            + "@".translate(FW)
            + f"Example.com{IDEO},10,CNY,app,paid",
            "h12,2026-01-05T10:00:00,member_id,M12,10,CNY,app,paid,surplus",
            "h13,2026-01-05T10:00:00,member_id,M13",
            "h14,2026-01-05T10:00:00,member_id,M14,-5,CNY,app,paid",
            f"h15,2026-01-05T10:00:00,member_id,{LONG},10,CNY,app,paid",
            '"h16","2026-01-05T10:00:00","member_id","M16","10","CNY","app","PAID "',
            "h17".translate(FW) + ",2026-01-05T10:00:00,member_id,M17,10,cny,APP,paid",
        ),
    )
    # Another column order, and a column precis does not know.
    _write(
        land / "orders" / "b_reordered.csv",
        "status,amount,extra,channel,currency,id_value,id_type,order_time,order_id\n"
        "refunded,7.5,x,web,CNY,M20,member_id,2026-01-06T10:00:00,r20\n",
    )
    # A byte-order mark and Windows line ends.
    _write(
        land / "orders" / "c_bom_crlf.csv",
        BOM + _orders("c30,2026-01-07T10:00:00,member_id,M30,3,CNY,app,refunded"),
        newline="\r\n",
    )
    _write(land / "orders" / "d_empty.csv", "")
    _write(land / "orders" / "e_header_only.csv", _orders())

    # items: GB18030 (a superset of GBK), quoted fields with newlines, emoji, full width.
    _write(
        land / "items" / "items.csv",
        "item_id,title,category,brand,price\n"
        "i1,男士T恤,服装,品牌,99\n"
        'i2,"two\nlines, one title",书,b,10\n'
        "i3,🎁 礼物,gift,b,1\n"
        "i4," + "WIDE".translate(FW) + ",wide,b,1\n"
        "i5,nan-price,c,b,nan\n",
        encoding="gb18030",
    )
    # customers: GBK.
    _write(
        land / "customers" / "c.csv",
        "id_type,id_value,gender,birth_date,city,signup_time,consent_marketing\n"
        "member_id,M1,f,1990-01-01,上海,2025-01-01T00:00:00,true\n",
        encoding="gbk",
    )
    # events: json lines, one broken line, an object where a string was expected.
    events = [
        json.dumps(
            {
                "event_id": "e1",
                "event_time": "2026-01-05T10:00:00",
                "id_type": "cookie_id",
                "id_value": "ck1",
                "event_type": "view",
                "properties": {"k": 1},
            }
        ),
        '{"event_id": "e2", "event_time": "2026-01-05T10:00:00", "id_type": ',
        json.dumps(
            {
                "event_id": "e3",
                "event_time": "2026-01-05T10:00:00",
                "id_type": "cookie_id",
                "id_value": "ck3",
                "event_type": "VIEW ",
                "properties": "plain",
            }
        ),
    ]
    _write(land / "events" / "ev.json", "\n".join(events) + "\n")
    # order_items: the landing path names one file.
    _write(
        root / "drop" / "order_items.csv",
        "order_id,item_id,quantity,unit_price\nh01,i1,1,10\nh01,i2,1e400,1\n",
    )
    # campaign_spend: a glob, which leaves out the notes beside the data.
    _write(root / "spend" / "s1.csv", "spend_date,channel,campaign_id,spend\n2026-01-05,app,c1,5\n")
    _write(
        root / "spend" / "s2.csv", "spend_date,channel,campaign_id,spend\n2026-01-06,app,c1,-inf\n"
    )
    _write(root / "spend" / "notes.txt", "not data\n")
    # touchpoints: a header naming one column twice rejects its file, and only it.
    touch = "touch_id,touch_time,id_type,id_value,{},interaction\n{},2026-01-05T10:00:00,"
    _write(
        land / "touchpoints" / "t.csv",
        touch.format("channel,Channel", "t1") + "member_id,M1,app,web,click\n"
        "t2,2026-01-05T11:00:00,member_id,M1,app,web,click\n",
    )
    _write(
        land / "touchpoints" / "u.csv", touch.format("channel", "u1") + "member_id,M1,app,click\n"
    )
    # forget_requests: a required column missing fails this dataset, and only it.
    _write(land / "forget_requests" / "f.csv", "id_type,requested_at\nmember_id,2026-01-05\n")
    # id_observations: parquet, from a future clock, and a tab-padded id.
    obs = spark.createDataFrame(
        [
            ("crm", "r1", "member_id", "\tM1\t", "2026-01-05 10:00:00"),
            ("crm", "r2", "member_id", "M2", "2099-01-01 00:00:00"),
        ],
        "source string, record_id string, id_type string, id_value string, observed_at string",
    ).withColumn("observed_at", F.to_timestamp("observed_at"))
    obs.write.parquet(str(land / "id_observations"))

    csv = ("orders", "items", "customers", "touchpoints", "order_items", "campaign_spend")
    csv += ("forget_requests",)
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root / 'lakehouse'}",
            "mlflow.enabled=false",
            *[f"landing.{d}.format=csv" for d in csv],
            "landing.events.format=json",
            "landing.items.encoding=GB18030",
            "landing.customers.encoding=GBK",
            f"landing.order_items.path={root / 'drop' / 'order_items.csv'}",
            f"landing.campaign_spend.path={root / 'spend'}/*.csv",
        ],
        run_date="2026-02-01",
    )
    with pytest.raises(DatasetFailed) as failed:
        ingest.run(spark, cfg)
    return cfg, Lakehouse.from_config(spark, cfg), str(failed.value)


def _silver(lake, table: str, key: str, *columns: str) -> dict:
    return {r[0]: tuple(r[1:]) for r in lake.read(T.SILVER[table]).select(key, *columns).collect()}


def _reasons(lake, dataset: str, key: str) -> dict:
    q = lake.read(T.QUARANTINE).filter(F.col("dataset") == dataset)
    rows = q.select(F.get_json_object("raw", f"$.{key}").alias("k"), "reason").collect()
    return {r["k"]: r["reason"] for r in rows}


def test_every_landed_row_is_accounted_for(hostile):
    _, lake, _ = hostile
    runs = lake.read(T.INGEST_RUNS).collect()
    by = {r["dataset"]: r for r in runs}
    expected_in = {
        "orders": 19,
        "items": 5,
        "customers": 1,
        "events": 3,
        "order_items": 2,
        "campaign_spend": 2,
        "id_observations": 2,
        "touchpoints": 1,  # and t.csv's 2 rows, rejected with its file
    }
    assert {d: by[d]["rows_in"] for d in expected_in} == expected_in
    for d in expected_in:
        r = by[d]
        parts = r["silver_inserted"] + r["silver_updated"] + r["duplicates"] + r["quarantined"]
        assert r["rows_in"] == parts, d
        bronze = lake.read(T.BRONZE[d]).count()
        assert bronze == r["rows_in"], d  # bronze keeps every landed row as landed


def test_quarantine_reasons_per_bad_value(hostile):
    _, lake, _ = hostile
    assert _reasons(lake, "orders", "order_id") == {
        "h02": "bad_value:amount",  # NaN
        "h03": "bad_value:amount",  # Infinity
        "h04": "bad_value:amount",  # 1e400 overflows to Infinity
        "h05": "future_time:order_time",  # 2099: beyond ingest.max_future_hours
        "h06": "unparsable:order_time",  # 2026/01/05 is not ISO-8601
        "h10": "missing:id_value",  # white space only (NBSP, U+3000)
        "h12": "malformed_record",  # a field too many
        "h13": "malformed_record",  # fields too few
        "h14": "bad_value:amount",  # negative
    }
    assert _reasons(lake, "items", "item_id") == {"i5": "bad_value:price"}  # nan
    assert _reasons(lake, "order_items", "quantity") == {"1e400": "unparsable:quantity"}
    assert _reasons(lake, "campaign_spend", "spend") == {"-inf": "bad_value:spend"}
    assert _reasons(lake, "id_observations", "record_id") == {"r2": "future_time:observed_at"}


def test_broken_lines_are_quarantined_hashed(hostile):
    """A line the reader cannot parse keeps only its keyed hash: it may hold anything."""
    _, lake, _ = hostile
    (raw,) = [
        json.loads(r["raw"]) for r in lake.read(T.QUARANTINE).filter("dataset = 'events'").collect()
    ]
    broken = '{"event_id": "e2", "event_time": "2026-01-05T10:00:00", "id_type": '
    assert raw == {"_corrupt_record": _key(broken)}
    h12 = json.loads(
        lake.read(T.QUARANTINE).filter("raw LIKE '%h12%'").select("raw").first()["raw"]
    )
    assert h12["_corrupt_record"] == _key(
        "h12,2026-01-05T10:00:00,member_id,M12,10,CNY,app,paid,surplus"
    )


def test_orders_silver_values(hostile):
    _, lake, _ = hostile
    got = _silver(lake, "orders", "order_id", "id_key", "amount", "currency", "channel", "status")
    assert got["h01"] == (_key("+8613812345678"), 10.0, "CNY", "app", "paid")
    assert got["h11"][0] == _key("alice@example.com")
    assert got["h15"][0] == LONG  # member_id is not PII: its value is its key
    assert got["h16"][4] == "paid"  # quoted, upper-case, trailing space
    assert got["h17"][1:] == (10.0, "CNY", "app", "paid")  # full-width order id folded
    assert got["r20"] == ("M20", 7.5, "CNY", "web", "refunded")  # read by header name
    assert got["c30"] == ("M30", 3.0, "CNY", "app", "refunded")  # BOM and CRLF gone
    times = _silver(lake, "orders", "order_id", F.date_format("order_time", "yyyy-MM-dd HH:mm"))
    assert times["h07"] == ("2026-01-05 00:00",)  # a date alone is midnight
    assert times["h08"] == ("2026-01-05 10:00",)
    assert times["h09"] == ("2026-01-05 02:00",)  # +08:00 read as UTC
    assert set(got) == {"h01", "h07", "h08", "h09", "h11", "h15", "h16", "h17", "r20", "c30"}


def test_text_values_and_encodings(hostile):
    _, lake, _ = hostile
    items = _silver(lake, "items", "item_id", "title", "category", "price")
    assert items == {
        "i1": ("男士T恤", "服装", 99.0),  # GB18030
        "i2": ("two\nlines, one title", "书", 10.0),  # a quoted field over two lines
        "i3": ("🎁 礼物", "gift", 1.0),  # emoji
        "i4": ("WIDE".translate(FW), "wide", 1.0),  # free text keeps its full width
    }
    customers = _silver(lake, "customers", "id_key", "city", "consent_marketing")
    assert customers == {"M1": ("上海", True)}  # GBK


def test_json_values(hostile):
    _, lake, _ = hostile
    events = _silver(lake, "events", "event_id", "event_type", "properties")
    # An object where text was expected is kept as its JSON text; categories fold.
    assert events == {"e1": ("view", '{"k":1}'), "e3": ("view", "plain")}


def test_single_file_glob_and_parquet_paths(hostile):
    _, lake, _ = hostile
    assert _silver(lake, "order_items", "item_id", "quantity") == {"i1": (1,)}  # one file
    spend = _silver(lake, "campaign_spend", "campaign_id", "spend")
    assert spend == {"c1": (5.0,)}  # a glob: notes.txt beside the files is not read
    assert _silver(lake, "id_observations", "record_id", "id_key") == {"r1": ("M1",)}  # tabs


def test_a_header_naming_a_column_twice_rejects_its_file_only(hostile):
    _, lake, _ = hostile
    files = {
        r["path"].rsplit("/", 1)[-1]: (r["status"], r["reason"], r["rows"])
        for r in lake.read(T.INGEST_FILES).filter("dataset = 'touchpoints'").collect()
    }
    assert files == {
        "t.csv": ("rejected", "bad header: csv header names column(s) twice: Channel, channel", 2),
        "u.csv": ("ingested", None, None),
    }
    assert _silver(lake, "touchpoints", "touch_id", "channel") == {"u1": ("app",)}
    (run,) = lake.read(T.INGEST_RUNS).filter("dataset = 'touchpoints'").collect()
    got = (run["rows_in"], run["rejected_files"], run["rejected_rows"], run["error"])
    assert got == (1, 1, 2, "")


def test_a_dataset_without_a_required_column_fails_alone_and_is_not_done(hostile):
    """The failed dataset is named and its file not registered as done; every other
    dataset is ingested."""
    _, lake, error = hostile
    assert error.startswith("dataset 'forget_requests'")
    assert "lacks required column(s): id_value" in error
    runs = {r["dataset"]: r["error"] for r in lake.read(T.INGEST_RUNS).collect()}
    assert [d for d, e in runs.items() if e] == ["forget_requests"]
    done = {r["dataset"] for r in lake.read(T.INGEST_FILES).collect()}
    assert "forget_requests" not in done
    assert {"orders", "items", "events", "order_items", "campaign_spend", "touchpoints"} <= done


def test_json_lines_in_gbk(spark, tmp_path):
    rows = [{"item_id": f"i{i}", "title": "上海特产"} for i in range(3)]
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    _write(tmp_path / "items" / "a.json", text, encoding="gbk")
    where = str(tmp_path / "items")
    landed = read_landing(spark, list_landing_files(spark, where, "json"), "json", where, "GBK")
    got = sorted((r["item_id"], r["title"]) for r in landed.collect())
    assert got == [(f"i{i}", "上海特产") for i in range(3)]


# ---------------------------------------------------------------- files left out
def _lf(path: str, modified: int = 0) -> LandingFile:
    return LandingFile(path, 1, modified)


def test_write_folder_is_above_partition_folders():
    assert write_folder("file:/l/orders/a.csv") == "file:/l/orders"
    assert write_folder("file:/l/orders/drop1/day=1/h=02/p.parquet") == "file:/l/orders/drop1"
    assert write_folder("/l/day=1/p.csv") == "/l"


def test_files_still_arriving_wait():
    now = 1_000_000_000
    old, fresh = _lf("/l/a/old.csv", now - 120_000), _lf("/l/a/fresh.csv", now - 5_000)
    other = _lf("/l/b/day=1/x.csv", now - 120_000)
    take, wait = files.ready([old, fresh, other], now, settle_seconds=60)
    assert take == [old, other]
    assert wait == [files.Waiting(fresh, "modified 5 s ago, less than ingest.settle_seconds (60)")]
    take, wait = files.ready([old, fresh, other], now, marked={"/l/b"})
    assert take == [other]
    assert [(w.file, w.why) for w in wait] == [
        (old, "no _SUCCESS in /l/a yet"),
        (fresh, "no _SUCCESS in /l/a yet"),
    ]
    # Off by default: every file is read.
    assert files.ready([old, fresh, other], now) == ([old, fresh, other], [])


def _schema(**columns: DataType) -> StructType:
    return StructType([StructField(n, t) for n, t in columns.items()])


def test_type_reasons_keep_the_contract_then_bronze_then_most_files():
    spec = SPECS["orders"]
    good = _schema(order_id=StringType(), amount=DoubleType())
    text = _schema(order_id=StringType(), amount=StringType())
    nested = _schema(order_id=StringType(), amount=_schema(v=DoubleType()))
    bronze = "bronze/orders"
    # The file with the contract's type is never the one rejected.
    assert files.type_reasons({"a": good, "b": text}, spec, {}, bronze) == {
        "b": "type drift: amount is string, not double (the contract's type)"
    }
    # Without it, most files win; every file of one type is a batch that reads.
    assert files.type_reasons({"a": text, "b": text}, spec, {}, bronze) == {}
    # What bronze already holds wins over the contract.
    assert files.type_reasons({"a": good, "b": text}, spec, {"amount": StringType()}, bronze) == {
        "a": "type drift: amount is double, not string (as bronze/orders holds it)"
    }
    # A value without text cannot be typed, whatever the other files hold.
    assert files.type_reasons({"a": nested}, spec, {}, bronze) == {
        "a": "type drift: amount is struct<v:double>, which cannot be cast to double"
    }


def _cfg_for(root: Path, *overrides: str):
    return load_config(
        PROJECT / "conf" / "base.yaml",
        # No bronze retention: its DELETEs would only slow these runs down.
        [
            f"storage.root={root / 'lakehouse'}",
            "mlflow.enabled=false",
            "bronze.retention_days=null",
            *overrides,
        ],
        run_date="2026-02-01",
    )


def _file_log(lake) -> dict:
    """meta/ingest_files by file name: (status, reason, rows)."""
    return {
        r["path"].rsplit("/", 1)[-1]: (r["status"], r["reason"], r["rows"])
        for r in lake.read(T.INGEST_FILES).collect()
    }


def _orders_parquet(path: Path, *rows: tuple, amount: pa.DataType | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    utc = pa.timestamp("us", tz="UTC")
    when = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    table = pa.table(
        {
            "order_id": pa.array([r[0] for r in rows], pa.string()),
            "order_time": pa.array([when] * len(rows), utc),
            "id_type": pa.array(["member_id"] * len(rows), pa.string()),
            "id_value": pa.array([r[1] for r in rows], pa.string()),
            "amount": pa.array([r[2] for r in rows], amount or pa.float64()),
            "status": pa.array(["paid"] * len(rows), pa.string()),
        }
    )
    pq.write_table(table, path)


def _bad_pages(path: Path, rows: int) -> None:
    """An orders file whose footer (schema, row count) reads but whose data pages are
    damaged: only reading its rows finds out."""
    _orders_parquet(path, *[(f"g{i}", f"G{i}", float(i)) for i in range(rows)])
    data = bytearray(path.read_bytes())
    for i in range(200, 900):  # well inside the first column's pages, far from the footer
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _event(event_id: str, properties) -> str:
    row = {
        "event_id": event_id,
        "event_time": "2026-01-05T10:00:00",
        "id_type": "cookie_id",
        "id_value": "ck" + event_id,
        "event_type": "view",
        "properties": properties,
    }
    return json.dumps(row, separators=(",", ":")) + "\n"


def _age(*paths: Path, seconds: int = 3600) -> None:
    """The files ``paths`` (and every file under a folder among them) modified
    ``seconds`` ago."""
    then = time.time() - seconds
    for path in paths:
        for file in path.rglob("*") if path.is_dir() else [path]:
            if file.is_file():
                os.utime(file, (then, then))


@pytest.fixture(scope="module")
def arrivals(spark, tmp_path_factory):
    """Two runs, with ingest.settle_seconds and ingest.require_marker set, over files
    still arriving and files that cannot be read with the rest of their dataset:
    (lakehouse, first run's summaries, meta/ingest_files after it, second run's)."""
    root = tmp_path_factory.mktemp("arrivals")
    land = root / "lakehouse" / "landing"
    drop, late, events = land / "orders" / "drop1", land / "orders" / "drop2", land / "events"
    _orders_parquet(drop / "a_good.parquet", ("p1", "M1", 10.0), ("p2", "M2", 20.0))
    _orders_parquet(drop / "b_text.parquet", ("p3", "M3", "abc"), amount=pa.string())
    whole = (drop / "a_good.parquet").read_bytes()
    (drop / "c_truncated.parquet").write_bytes(whole[: len(whole) // 2])
    _bad_pages(drop / "g_bad_pages.parquet", rows=2000)
    (drop / "_SUCCESS").touch()
    _orders_parquet(late / "e_unmarked.parquet", ("p5", "M5", 5.0))  # no _SUCCESS yet
    # Never data: hidden files and a writer's temporary folder.
    _write(drop / ".a_good.parquet.crc", "not data\n")
    _orders_parquet(drop / "_temporary" / "0" / "x.parquet", ("p9", "M9", 9.0))
    # json: a batch holding only an object, then one holding a string and a broken file.
    _write(events / "a.json", _event("e1", {"k": 1}))
    (events / "_SUCCESS").touch()
    _age(land)
    _orders_parquet(drop / "f_fresh.parquet", ("p6", "M6", 6.0))  # modified just now
    cfg = _cfg_for(
        root,
        "landing.events.format=json",
        "ingest.settle_seconds=600",
        "ingest.require_marker=true",
    )
    lake = Lakehouse.from_config(spark, cfg)
    first = ingest.run(spark, cfg)
    log_first = _file_log(lake)

    # Between the runs: drop2 gets its marker and f settles; d lands, which alone would
    # read, but bronze holds amount as a double.
    (late / "_SUCCESS").touch()
    _orders_parquet(drop / "d_text_alone.parquet", ("p4", "M4", "7"), amount=pa.string())
    _write(events / "b.json", _event("e2", "plain"))
    (events / "c.json.gz").write_bytes(gzip.compress(_event("e3", "x").encode() * 500)[:40])
    # Only the new files: another modification time would make the others new again.
    _age(drop / "f_fresh.parquet", drop / "d_text_alone.parquet", events / "b.json")
    _age(events / "c.json.gz")
    second = ingest.run(spark, cfg)
    return lake, first, log_first, second


def test_parquet_files_that_do_not_fit_are_rejected(arrivals):
    lake, first, log, _ = arrivals
    assert log["a_good.parquet"] == ("ingested", None, None)
    assert log["b_text.parquet"] == (
        "rejected",
        "type drift: amount is string, not double (the contract's type)",
        1,  # the footer's row count
    )
    status, reason, rows = log["c_truncated.parquet"]
    assert (status, rows) == ("rejected", None)  # unreadable: its rows are unknown
    assert reason.startswith("unreadable: ") and "is not a Parquet file" in reason
    # Damaged data pages: found when its rows are written to bronze, with a's; a's
    # rows are written again without it. Its footer still counts its rows.
    status, reason, rows = log["g_bad_pages.parquet"]
    assert (status, rows) == ("rejected", 2000)
    assert reason.startswith("unreadable: ")
    orders = first["orders"]
    counts = (orders.files, orders.rows_in, orders.rejected_files, orders.rejected_rows)
    assert counts == (1, 2, 3, 2001)
    assert orders.balanced() and not orders.error
    runs = lake.read(T.INGEST_RUNS).filter("dataset = 'orders'").orderBy("ingested_at").collect()
    got = [
        (r["rows_in"], r["rejected_files"], r["rejected_rows"], r["waiting_files"]) for r in runs
    ]
    assert got == [(2, 3, 2001, 2), (2, 1, 1, 0)]
    sources = lake.read(T.BRONZE["orders"]).select("_source_file").distinct().collect()
    assert not [r for r in sources if "g_bad_pages" in r[0]]


def test_rejected_files_are_not_retried_and_later_files_match_bronze(arrivals):
    lake, _, _, second = arrivals
    orders = second["orders"]
    # b and c are not tried again; d alone would read, but not as bronze holds amount.
    assert (orders.files, orders.rejected_files, orders.rejected_rows) == (2, 1, 1)
    assert _file_log(lake)["d_text_alone.parquet"] == (
        "rejected",
        "type drift: amount is string, not double (as bronze/orders holds it)",
        1,
    )
    assert _silver(lake, "orders", "order_id", "amount") == {
        "p1": (10.0,),
        "p2": (20.0,),
        "p5": (5.0,),
        "p6": (6.0,),
    }


def test_json_reads_alike_across_batches_and_a_broken_file_is_rejected(arrivals):
    lake, _, _, second = arrivals
    # An object is its JSON text whether or not a string shares its batch.
    assert _silver(lake, "events", "event_id", "properties") == {
        "e1": ('{"k":1}',),
        "e2": ("plain",),
    }
    log = _file_log(lake)
    assert log["b.json"] == ("ingested", None, None)
    status, reason, rows = log["c.json.gz"]
    assert (status, rows) == ("rejected", None)
    assert reason.startswith("unreadable: ")
    events = second["events"]
    assert (events.files, events.rows_in, events.rejected_files) == (1, 1, 1)
    assert events.describe().endswith(", 1 file(s) rejected (0 rows known)")


def test_files_still_arriving_wait_unrecorded(arrivals):
    _, first, log, _ = arrivals
    # e: its folder has no _SUCCESS yet; f: modified just now.
    assert first["orders"].waiting_files == 2
    assert first["orders"].describe().endswith(", 2 file(s) waiting")
    # Not recorded: the next run looks at them again.
    landed = {"a_good.parquet", "b_text.parquet", "c_truncated.parquet", "g_bad_pages.parquet"}
    assert set(log) == landed | {"a.json"}


def test_files_are_read_once_settled_and_marked(arrivals):
    lake, _, _, second = arrivals
    assert (second["orders"].files, second["orders"].waiting_files) == (2, 0)
    log = _file_log(lake)
    assert log["e_unmarked.parquet"] == log["f_fresh.parquet"] == ("ingested", None, None)
    # The marker, hidden files and _temporary folders are never read as data.
    sources = lake.read(T.BRONZE["orders"]).select("_source_file").distinct().collect()
    names = sorted(r[0].rsplit("/", 1)[-1] for r in sources)
    assert names == ["a_good.parquet", "e_unmarked.parquet", "f_fresh.parquet"]


def test_the_file_a_failed_read_names():
    error = (
        "An error occurred while calling o412.save.\n"
        ": org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Encountered error "
        "while reading file file:///l/orders/g%20x.parquet.  SQLSTATE: KD001\n"
        "Caused by: java.io.IOException: FAILED_TO_UNCOMPRESS(5)"
    )
    assert files.failed_file(error) == "file:///l/orders/g%20x.parquet"
    assert files.failed_file("Caused by: java.net.SocketException: Connection reset") is None


def test_only_broken_content_rejects_a_file():
    truncated = (
        "An error occurred while calling o90.parquet.\n"
        ": org.apache.spark.SparkException: [FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] ...\n"
        "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.cannotReadFooterForFileError\n"
        "Caused by: java.lang.RuntimeException: file:/l/c.parquet is not a Parquet file. "
        "Expected magic number at tail, but found [0, 0, 0, 0]\n"
        "\tat org.apache.parquet.hadoop.ParquetFileReader.readFooter(ParquetFileReader.java:602)"
    )
    assert files.unreadable(truncated) == (
        "unreadable: file:/l/c.parquet is not a Parquet file. "
        "Expected magic number at tail, but found [0, 0, 0, 0]"
    )
    assert files.unreadable("java.io.EOFException: Unexpected end of input stream") == (
        "unreadable: Unexpected end of input stream"
    )
    # The file system or the network: the dataset fails this run, the next one retries.
    assert files.unreadable("Caused by: java.net.SocketException: Connection reset") is None
