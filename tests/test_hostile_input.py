"""Hostile landing data: every kind of bad input has one exact, documented outcome.

One landing world holds them all (docs/ingest.md, "Bad input", lists each class and
what ingest does with it); a single ingest run reads it, and each test checks the
outcome of its kind: the value silver holds, the quarantine reason, or the error. In
every dataset every landed row is accounted for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import load_config
from precis.errors import ConfigError
from precis.ingest import batch as ib
from precis.ingest import identifiers as ids
from precis.ingest.batch import DatasetFailed
from precis.jobs import ingest
from precis.privacy import DEVELOPMENT_KEY
from precis.schemas import SPECS
from precis.storage import Lakehouse, list_landing_files, read_landing

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
    # touchpoints: a header naming one column twice fails this dataset, and only it.
    _write(
        land / "touchpoints" / "t.csv",
        "touch_id,touch_time,id_type,id_value,channel,Channel,interaction\n"
        "t1,2026-01-05T10:00:00,member_id,M1,app,web,click\n",
    )
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


def test_duplicate_header_fails_that_dataset_only(hostile):
    _, lake, error = hostile
    assert "dataset 'touchpoints'" in error
    assert "t.csv: csv header names column(s) twice: Channel" in error
    assert not lake.exists(T.SILVER["touchpoints"])
    runs = {r["dataset"]: r["error"] for r in lake.read(T.INGEST_RUNS).collect()}
    assert [d for d, e in runs.items() if e] == ["touchpoints"]


def test_failed_dataset_files_are_not_recorded_as_done(hostile):
    """The failed dataset's file is not registered as done; everything else is."""
    _, lake, _ = hostile
    done = {r["dataset"] for r in lake.read(T.INGEST_FILES).collect()}
    assert "touchpoints" not in done
    assert {"orders", "items", "events", "order_items", "campaign_spend"} <= done


def test_json_lines_in_gbk(spark, tmp_path):
    rows = [{"item_id": f"i{i}", "title": "上海特产"} for i in range(3)]
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    _write(tmp_path / "items" / "a.json", text, encoding="gbk")
    where = str(tmp_path / "items")
    landed = read_landing(spark, list_landing_files(spark, where, "json"), "json", where, "GBK")
    got = sorted((r["item_id"], r["title"]) for r in landed.collect())
    assert got == [(f"i{i}", "上海特产") for i in range(3)]
