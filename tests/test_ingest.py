"""Ingest: normalization, keyed hashing, quarantine reasons, accounting, reruns."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from conftest import bronze_of
from precis import privacy
from precis import tables as T
from precis.config import load_config
from precis.errors import MissingDatasetError
from precis.ingest import conform
from precis.ingest import identifiers as ids
from precis.jobs import ingest
from precis.privacy import DEVELOPMENT_KEY
from precis.schemas import SPECS
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- normalization
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13812345678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("+86-138-1234-5678", "+8613812345678"),
        ("86 138 1234 5678", "+8613812345678"),
        ("8613812345678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        (" (138) 1234 5678 ", "+8613812345678"),
        ("+1 415 555 0100", "+14155550100"),
        ("", None),
    ],
)
def test_phone_normalizes_to_e164(spark, raw, expected):
    got = (
        spark.createDataFrame([(raw,)], "v string")
        .select(ids.normalize(F.col("v"), "phone", "86"))
        .first()[0]
    )
    assert got == expected


def test_identifier_rules_table(spark):
    rules = {"email": "email", "device_id": "lower", "open_id": "trim", "member_id": "upper"}
    rows = [
        ("email", "  Alice.Smith@Example.COM ", "alice.smith@example.com"),
        ("email", "alice.smith @example.com", "alice.smith@example.com"),
        (
            "device_id",
            "ABCDEF00-1111-2222-3333-444455556666",
            "abcdef00-1111-2222-3333-444455556666",
        ),
        (
            "device_id",
            " abcdef00-1111-2222-3333-444455556666",
            "abcdef00-1111-2222-3333-444455556666",
        ),
        ("open_id", " oAbC123xYz ", "oAbC123xYz"),
        ("member_id", "m001 ", "M001"),
        ("fax", "12345", None),
    ]
    df = spark.createDataFrame(rows, "id_type string, id_value string, expected string")
    got = df.select(
        "id_type",
        "id_value",
        ids.normalize_by_type(F.col("id_type"), ids.fold(F.col("id_value")), rules, "86").alias(
            "expected"
        ),
    )
    assert_df_equality(got, df, ignore_row_order=True, ignore_nullable=True)


def test_placeholders_are_blocked_and_malformed_values_invalid(spark):
    cfg = load_config(PROJECT / "conf" / "base.yaml")
    ic = cfg.ingest
    rows = [
        ("phone", "138 0000 0000", "blocked"),
        ("phone", "+86 13800000000", "blocked"),
        ("phone", "13999999999", "blocked"),
        ("phone", "13912345678", "ok"),
        ("phone", "123", "invalid"),
        ("email", "TEST@test.com", "blocked"),
        ("email", "undefined", "blocked"),
        ("email", "not-an-email", "invalid"),
        ("email", "li.na@mail.cn", "ok"),
        ("device_id", "00000000-0000-0000-0000-000000000000", "blocked"),
        ("device_id", "NULL", "blocked"),
        ("cookie_id", "ck_9f8e7d", "ok"),
    ]
    df = spark.createDataFrame(rows, "id_type string, id_value string, status string")
    norm = ids.normalize_by_type(
        F.col("id_type"), ids.fold(F.col("id_value")), ic.id_rules, ic.default_country_code
    )
    got = df.withColumn("_n", norm).select(
        "id_type",
        "id_value",
        ids.status_by_type(
            F.col("id_type"),
            F.col("_n"),
            F.col("id_value"),
            ic.id_rules,
            ic.placeholder_values,
            ic.placeholder_patterns,
            ic.default_country_code,
        ).alias("status"),
    )
    assert_df_equality(got, df, ignore_row_order=True, ignore_nullable=True)


# ----------------------------------------------------------------------- hashing
def test_hmac_matches_python_hmac_and_depends_on_key(spark):
    values = ["+8613812345678", "alice@example.com", "ü-unicode@example.com"]
    df = spark.createDataFrame([(v,) for v in values], "v string")

    def hashed(key: bytes) -> list[str]:
        keyed = privacy.with_key(df, key).select(privacy.hmac_hex(F.col("v")))
        return [r[0] for r in keyed.collect()]

    for key in (b"secret", b"k" * 100):
        want = [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values]
        assert hashed(key) == want
    other = hashed(b"other")[0]
    assert other != hmac.new(b"secret", values[0].encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- quarantine
def test_each_corruption_kind_gets_its_reason(spark):
    spec = SPECS["orders"]
    rows = [
        ("o1", "2026-01-05T10:00:00Z", "member_id", "M1", "10.5", "CNY", "app", None),
        ("o2", "yesterday", "member_id", "M1", "10", "CNY", "app", "paid"),
        ("o3", "2026-01-05T10:00:00", None, "M1", "10", "CNY", "app", "paid"),
        ("o4", "2026-01-05T10:00:00", "fax", "M1", "10", "CNY", "app", "paid"),
        ("o5", "2026-01-05T10:00:00", "member_id", "M1", "ten", "CNY", "app", "paid"),
        ("o6", "2026-01-05T10:00:00", "member_id", "M1", "-1", "CNY", "app", "paid"),
        ("o7", "2026-01-05T10:00:00", "member_id", "M1", "10", "CNY", "app", "lost"),
        ("o8", "2026-01-05T10:00:00", "member_id", " ", "10", "CNY", "app", "REFUNDED"),
    ]
    bronze = bronze_of(
        spark,
        rows,
        "order_id string, order_time string, id_type string, id_value string, amount string, "
        "currency string, channel string, status string",
    )
    typed = conform.typed(bronze, spec, {"member_id": "trim"})
    got = typed.select(
        "order_id", F.array_join(conform.REASONS, ";").alias("reason"), "status", "amount"
    )
    expected = spark.createDataFrame(
        [
            ("o1", "", "paid", 10.5),
            ("o2", "unparsable:order_time", "paid", 10.0),
            ("o3", "missing:id_type", "paid", 10.0),
            ("o4", "unknown_id_type", "paid", 10.0),
            ("o5", "unparsable:amount", "paid", None),
            ("o6", "bad_value:amount", "paid", -1.0),
            ("o7", "bad_value:status", "lost", 10.0),
            ("o8", "missing:id_value", "refunded", 10.0),
        ],
        "order_id string, reason string, status string, amount double",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_every_reason_typed_gives_is_declared_once(spark):
    for spec in SPECS.values():
        names = conform.reasons(spec)
        assert len(names) == len(set(names)), spec.name
    assert {
        "unparsable:order_time",
        "missing:id_type",
        "unknown_id_type",
        "unparsable:amount",
        "bad_value:amount",
        "bad_value:status",
        "missing:id_value",
    } <= set(conform.reasons(SPECS["orders"]))


# ------------------------------------------------------------------ build_batch
def test_build_batch_splits_resolves_deduplicates_and_counts(spark):
    from precis.ingest import batch

    settings = conform.IdentifierSettings(
        rules={"member_id": "trim", "phone": "phone"},
        country_code="86",
        placeholder_values={"phone": ("13800000000",)},
        placeholder_patterns={},
        pii_types=("phone",),
        key=b"secret",
    )
    rows = [
        ("o1", "2026-01-05T10:00:00", "member_id", " M1 ", "10", "paid"),
        # o1 again, later: the newer copy wins.
        ("o1", "2026-01-06T10:00:00", "member_id", "M1", "12", "paid"),
        ("o2", "2026-01-05T11:00:00", "phone", "13800000000", "5", "refunded"),
        ("o3", "2026-01-05T12:00:00", "phone", "12", "7", None),
        ("o4", "later", "member_id", "M4", "-1", "paid"),
        ("o5", "2026-01-05T12:00:00", "fax", "1", "3", "paid"),
    ]
    bronze = bronze_of(
        spark,
        rows,
        "order_id string, order_time string, id_type string, id_value string, amount string, "
        "status string",
    )
    out = batch.build_batch(bronze, SPECS["orders"], settings)

    got = out.silver.select("order_id", "id_key", "id_status", "amount", "status")
    expected = spark.createDataFrame(
        [
            ("o1", "M1", "ok", 12.0, "paid"),
            ("o2", None, "blocked", 5.0, "refunded"),
            ("o3", None, "invalid", 7.0, "paid"),
        ],
        "order_id string, id_key string, id_status string, amount double, status string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert out.silver.columns == conform.silver_columns(SPECS["orders"])
    quarantine = out.quarantine.select("dataset", "reason")
    expected_q = spark.createDataFrame(
        [("orders", "unparsable:order_time;bad_value:amount"), ("orders", "unknown_id_type")],
        "dataset string, reason string",
    )
    assert_df_equality(quarantine, expected_q, ignore_row_order=True, ignore_nullable=True)

    counts = batch.batch_counts(out.typed.agg(*out.batch_metrics).collect()[0].asDict())
    assert counts == batch.BatchCounts(
        rows=6,
        quarantined=2,
        reasons={"unparsable:order_time": 1, "bad_value:amount": 1, "unknown_id_type": 1},
    )
    silver = out.silver.agg(*out.silver_metrics).collect()[0].asDict()
    assert silver == {"rows": 3, "ids_blocked": 1, "ids_invalid": 1}


# -------------------------------------------------------------- the job itself
def _land(root: Path, dataset: str, name: str, text: str) -> None:
    folder = root / "landing" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


OBS_1 = """source,record_id,id_type,id_value,observed_at,extra
crm,r1,email, Alice@Example.COM ,2026-01-01T10:00:00Z,x
crm,r1,phone,+86 138-1234-5678,2026-01-01T10:00:00Z,x
pos,r2,phone,13812345678,2026-01-02 11:00:00,y
pos,r2,phone,13800000000,2026-01-02 11:00:00,y
pos,r3,fax,12345,2026-01-02 11:00:00,y
pos,r4,phone,13812345678,notadate,y
pos,,phone,13812345678,2026-01-02 11:00:00,y
crm,r1,email, Alice@Example.COM ,2026-01-01T10:00:00Z,x
"""

ORDERS_1 = """order_id,order_time,id_type,id_value,amount,currency,channel,status
o1,2026-01-05T10:00:00,member_id,M1,100.5,cny,app,
o2,2026-01-06T10:00:00,member_id,M2,20,CNY,web,paid
"""


@pytest.fixture
def csv_cfg(tmp_path):
    return load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={tmp_path / 'lakehouse'}",
            "landing.id_observations.format=csv",
            "landing.orders.format=csv",
            "mlflow.enabled=false",
        ],
        run_date="2026-02-01",
    )


def _key(value: str) -> str:
    return hmac.new(DEVELOPMENT_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def test_ingest_accounts_for_every_row_and_hides_pii(spark, csv_cfg, monkeypatch):
    monkeypatch.delenv("PRECIS_PII_KEY", raising=False)
    root = Path(csv_cfg.root)
    _land(root, "id_observations", "part1.csv", OBS_1)
    _land(root, "orders", "o.csv", ORDERS_1)

    summaries = ingest.run(spark, csv_cfg)

    obs = summaries["id_observations"]
    assert (obs.rows_in, obs.silver_inserted, obs.duplicates, obs.quarantined) == (8, 4, 1, 3)
    assert obs.balanced()
    lake = Lakehouse.from_config(spark, csv_cfg)
    silver = lake.read(T.ID_OBSERVATIONS).select(
        "source", "record_id", "id_type", "id_key", "id_status"
    )
    phone = _key("+8613812345678")
    expected = spark.createDataFrame(
        [
            ("crm", "r1", "email", _key("alice@example.com"), "ok"),
            ("crm", "r1", "phone", phone, "ok"),
            ("pos", "r2", "phone", phone, "ok"),
            ("pos", "r2", "phone", None, "blocked"),
        ],
        "source string, record_id string, id_type string, id_key string, id_status string",
    )
    assert_df_equality(silver, expected, ignore_row_order=True, ignore_nullable=True)

    quarantine = lake.read(T.QUARANTINE).select("dataset", "reason")
    expected_q = spark.createDataFrame(
        [
            ("id_observations", "unknown_id_type"),
            ("id_observations", "unparsable:observed_at"),
            ("id_observations", "missing:record_id"),
        ],
        "dataset string, reason string",
    )
    assert_df_equality(quarantine, expected_q, ignore_row_order=True, ignore_nullable=True)

    orders = lake.read(T.ORDERS).select("order_id", "id_key", "amount", "currency", "status")
    expected_o = spark.createDataFrame(
        [("o1", "M1", 100.5, "CNY", "paid"), ("o2", "M2", 20.0, "CNY", "paid")],
        "order_id string, id_key string, amount double, currency string, status string",
    )
    assert_df_equality(orders, expected_o, ignore_row_order=True, ignore_nullable=True)

    # No plain email or phone anywhere in silver, in any form the landing used.
    for table in ("id_observations", "orders"):
        text = " ".join(str(v) for row in lake.read(T.SILVER[table]).collect() for v in row)
        for plain in ("alice", "Alice", "13812345678", "13800000000"):
            assert plain not in text


def test_rerun_changes_nothing_and_new_files_add_only_what_is_new(spark, csv_cfg):
    root = Path(csv_cfg.root)
    _land(root, "orders", "o.csv", ORDERS_1)
    ingest.run(spark, csv_cfg)
    lake = Lakehouse.from_config(spark, csv_cfg)
    before = lake.read(T.ORDERS)
    before_rows = before.collect()
    versions = {t: lake.version(t) for t in (T.BRONZE["orders"], T.ORDERS)}

    again = ingest.run(spark, csv_cfg)["orders"]
    assert (again.files, again.rows_in) == (0, 0)
    assert {t: lake.version(t) for t in versions} == versions
    assert_df_equality(lake.read(T.ORDERS), spark.createDataFrame(before_rows, before.schema))

    # A later file: a new order, a corrected o2 (newer time), and a stale copy of o1
    # (older time, different amount) that arrives late and must not win.
    _land(
        root,
        "orders",
        "o2.csv",
        "order_id,order_time,id_type,id_value,amount,currency,channel,status\n"
        "o3,2026-01-07T09:00:00,member_id,M3,7,CNY,pos,paid\n"
        "o2,2026-01-06T12:00:00,member_id,M2,20,CNY,web,refunded\n"
        "o1,2026-01-04T10:00:00,member_id,M1,1.0,CNY,app,paid\n",
    )
    step = ingest.run(spark, csv_cfg)["orders"]
    assert (
        step.files,
        step.rows_in,
        step.silver_inserted,
        step.silver_updated,
        step.duplicates,
    ) == (1, 3, 1, 1, 1)
    got = lake.read(T.ORDERS).select("order_id", "amount", "status")
    expected = spark.createDataFrame(
        [("o1", 100.5, "paid"), ("o2", 20.0, "refunded"), ("o3", 7.0, "paid")],
        "order_id string, amount double, status string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    bronze_files = {
        r[0].rsplit("/", 1)[-1]
        for r in lake.read(T.BRONZE["orders"]).select("_source_file").distinct().collect()
    }
    assert bronze_files == {"o.csv", "o2.csv"}
    assert lake.read(T.BRONZE["orders"]).count() == 5


def test_quarantine_is_one_commit_per_run_and_a_rewritten_file_replaces_its_rows(spark, csv_cfg):
    root = Path(csv_cfg.root)
    _land(root, "id_observations", "part1.csv", OBS_1)
    _land(
        root, "orders", "o.csv", ORDERS_1 + "o3,2026-01-07T09:00:00,member_id,M3,ten,CNY,pos,paid\n"
    )
    ingest.run(spark, csv_cfg)
    lake = Lakehouse.from_config(spark, csv_cfg)

    def held() -> list[tuple[str, str, str]]:
        rows = lake.read(T.QUARANTINE).select("dataset", "reason", "_source_file").collect()
        return sorted((r[0], r[1], r[2].rsplit("/", 1)[-1]) for r in rows)

    observations = [
        ("id_observations", "missing:record_id", "part1.csv"),
        ("id_observations", "unknown_id_type", "part1.csv"),
        ("id_observations", "unparsable:observed_at", "part1.csv"),
    ]
    assert held() == [*observations, ("orders", "unparsable:amount", "o.csv")]
    first = lake.version(T.QUARANTINE)  # both datasets' rows: the table's first commit
    assert first == 0

    # o.csv rewritten without its bad row: its old quarantine row goes, though the new
    # version quarantines nothing; a new file's bad row joins the earlier file's rows,
    # which stay. One commit for both datasets.
    _land(root, "orders", "o.csv", ORDERS_1)
    _land(root, "id_observations", "part2.csv", "source,record_id,id_type,id_value,observed_at,extra\n"
          "pos,r9,fax,12345,2026-01-03 11:00:00,y\n")  # fmt: skip
    second = ingest.run(spark, csv_cfg)
    assert (second["orders"].quarantined, second["id_observations"].quarantined) == (0, 1)
    assert held() == sorted([*observations, ("id_observations", "unknown_id_type", "part2.csv")])
    assert lake.version(T.QUARANTINE) == first + 1

    ingest.run(spark, csv_cfg)  # nothing new: no commit
    assert lake.version(T.QUARANTINE) == first + 1
    assert held() == sorted([*observations, ("id_observations", "unknown_id_type", "part2.csv")])


def test_retention_empties_the_bronze_of_a_source_that_lands_nothing_any_more(spark, csv_cfg):
    root = Path(csv_cfg.root)
    _land(root, "id_observations", "part1.csv", OBS_1)
    _land(root, "orders", "o.csv", ORDERS_1)
    ingest.run(spark, csv_cfg)
    lake = Lakehouse.from_config(spark, csv_cfg)
    assert lake.read(T.BRONZE["orders"]).count() == 2
    shutil.rmtree(root / "landing" / "orders")  # the source stopped landing

    # Years later, nothing new landed: every bronze row is past its 365 days.
    later = csv_cfg.model_copy(update={"run_date": dt.date(2031, 1, 1)})
    ingest.run(spark, later)
    for table in (T.BRONZE["orders"], T.BRONZE["id_observations"], T.QUARANTINE):
        assert lake.read(table).count() == 0, table.ref


def test_missing_required_column_names_dataset_and_column(spark, csv_cfg):
    root = Path(csv_cfg.root)
    _land(
        root,
        "orders",
        "bad.csv",
        "order_id,order_time,id_type,id_value,currency\no1,2026-01-05,member_id,M1,CNY\n",
    )
    with pytest.raises(ingest.DatasetFailed, match=r"'orders'.*amount"):
        ingest.run(spark, csv_cfg)


def test_explicitly_requested_absent_dataset_fails(spark, tmp_path):
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={tmp_path / 'lh'}", "ingest.datasets=[events]", "mlflow.enabled=false"],
    )
    with pytest.raises(MissingDatasetError, match="events"):
        ingest.run(spark, cfg)
