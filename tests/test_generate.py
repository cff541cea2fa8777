"""The generate job: contract schemas, determinism, planted traps and structure, truth."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
from chispa import assert_df_equality
from chispa.dataframe_comparer import DataFramesNotEqualError
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from precis import tables as T
from precis.config import DATASETS, Config, GenerateConfig, load_config
from precis.errors import ConfigError
from precis.generate import Generated, build
from precis.generate.build import TRUTH_TABLES
from precis.generate.catalog import CHANNELS
from precis.generate.corrupt import CORRUPTED_DATASETS, NUMERIC_COLUMNS, corrupt, kinds
from precis.generate.landing import NOT_GENERATED, as_text, landed_columns
from precis.jobs import generate as job
from precis.schemas import SPECS
from precis.storage import Lakehouse

END = dt.date(2026, 3, 31)
PROJECT = Path(__file__).resolve().parents[1]

# Small, with trap rates raised so that every trap shows up among a few hundred people.
SMALL = GenerateConfig(
    people=300,
    items=120,
    days=120,
    end_date=END,
    partitions=2,
    placeholder_rate=0.03,
    family_share=0.3,
    cafe_share=0.1,
    forget_share=0.02,
    phone_change_share=0.2,
    hotline_rate=0.2,
    experiments=3,
)


def _small(**changes) -> GenerateConfig:
    return SMALL.model_copy(update=changes)


def _with_generate(cfg: Config, g: GenerateConfig, **landing_formats: str) -> Config:
    landing = cfg.landing.model_copy(
        update={
            name: getattr(cfg.landing, name).model_copy(update={"format": fmt})
            for name, fmt in landing_formats.items()
        }
    )
    mlflow = cfg.mlflow.model_copy(
        update={"enabled": False}
    )  # tracking has its own tests; keep this fast
    return cfg.model_copy(update={"generate": g, "landing": landing, "mlflow": mlflow})


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    """One run of the job, with a csv, a json and a delta dataset among the parquet ones.

    The four datasets that can be corrupted stay parquet, so their types are checked.
    """
    root = tmp_path_factory.mktemp("generate") / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml", [f"storage.root={root}"], run_date=END.isoformat()
    )
    cfg = _with_generate(
        cfg, SMALL, customers="csv", campaign_spend="json", forget_requests="delta"
    )
    counts = job.run(spark, cfg)
    return cfg, counts


@pytest.fixture(scope="module")
def gen(spark, generated):
    """What the job landed, typed as the contract says, and its truth tables."""
    cfg, _ = generated
    lake = Lakehouse.from_config(spark, cfg)
    # Checkpointed: a later test reruns the job over these files.
    landing = {name: _typed(_read(spark, cfg, name), name).localCheckpoint() for name in DATASETS}
    truth = {table: lake.read(T.TRUTH[table]).localCheckpoint() for table in TRUTH_TABLES}
    return Generated(landing=landing, truth=truth, corrupted=())


def _read(spark, cfg: Config, name: str) -> DataFrame:
    fmt = cfg.landing_format(name)
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true")
    return reader.load(cfg.landing_path(name))


def _typed(df: DataFrame, name: str) -> DataFrame:
    return df.select(*[F.col(c).cast(t).alias(c) for c, t in landed_columns(name)])


@pytest.fixture(scope="module")
def owners(gen):
    """id_observations rows with the true person of their record."""
    return gen.landing["id_observations"].join(
        gen.truth["record_person"]
        .filter(F.col("dataset") == "id_observations")
        .select("source", "record_id", "person_id"),
        on=["source", "record_id"],
        how="inner",
    )


def _digits(col: str = "id_value"):
    """A phone reduced to its 11 national digits, as identity resolution would."""
    digits = F.regexp_replace(F.col(col), "[^0-9]", "")
    return F.when(F.length(digits) == 13, F.substring(digits, 3, 11)).otherwise(digits)


# ----------------------------------------------------------------- shape and determinism
def test_job_lands_every_dataset_in_its_format(spark, generated):
    cfg, counts = generated
    for name in DATASETS:
        fmt = cfg.landing_format(name)
        landed = _read(spark, cfg, name)
        assert landed.count() == counts[f"landing.{name}"] > 0, name
        if fmt in ("parquet", "delta"):
            assert [(f.name, f.dataType) for f in landed.schema.fields] == landed_columns(name), (
                name
            )
        else:
            assert sorted(landed.columns) == sorted(c for c, _ in landed_columns(name)), name
        if fmt == "parquet":
            files = [f for f in _files(spark, cfg.landing_path(name)) if f.endswith(".parquet")]
            assert 1 <= len(files) <= SMALL.partitions, name
    iso_time = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
    iso_date = r"^\d{4}-\d\d-\d\d$"
    customers = _read(spark, cfg, "customers")
    assert (
        customers.filter(
            ~F.col("signup_time").rlike(iso_time) | ~F.col("birth_date").rlike(iso_date)
        ).count()
        == 0
    )
    assert (
        _read(spark, cfg, "campaign_spend").filter(~F.col("spend_date").rlike(iso_date)).count()
        == 0
    )
    lake = Lakehouse.from_config(spark, cfg)
    for table in TRUTH_TABLES:
        assert lake.read(T.TRUTH[table]).count() == counts[f"truth.{table}"], table


@pytest.fixture(scope="module")
def other(spark):
    """Another seed, corruption on; lazy: only what a test looks at is computed."""
    with job.generator_conf(spark):
        yield build(spark, _small(seed=7, corrupt_fraction=0.15), END)


def test_landing_schemas_are_the_contract(other):
    assert set(other.landing) == set(DATASETS)
    for name in DATASETS:
        actual = [(f.name, f.dataType) for f in other.landing[name].schema.fields]
        if name in CORRUPTED_DATASETS:
            # Corrupted datasets land as text ("abc" in amount); names and order still hold.
            assert actual == [(c, StringType()) for c, _ in landed_columns(name)], name
        else:
            assert actual == landed_columns(name), name
        # The contract's columns, less optional ones this world has no use for.
        skipped = dict(SPECS[name].columns).keys() - dict(actual).keys()
        assert skipped == set(NOT_GENERATED.get(name, ())), name
    assert other.corrupted == CORRUPTED_DATASETS


def test_another_seed_gives_other_rows(gen, other):
    with pytest.raises(DataFramesNotEqualError):
        assert_df_equality(
            gen.landing["customers"],
            other.landing["customers"],
            ignore_row_order=True,
            ignore_nullable=True,
        )
    assert (
        gen.landing["items"]
        .select("item_id")
        .exceptAll(other.landing["items"].select("item_id"))
        .count()
        > 0
    )


def test_rows_fall_in_the_period(gen):
    start = F.lit("2025-12-02T00:00:00Z").cast("timestamp")  # 120 days ending 2026-03-31
    end = F.lit("2026-04-01T00:00:00Z").cast("timestamp")
    for name, column in (
        ("id_observations", "observed_at"),
        ("events", "event_time"),
        ("orders", "order_time"),
        ("touchpoints", "touch_time"),
    ):
        outside = gen.landing[name].filter((F.col(column) < start) | (F.col(column) >= end))
        assert outside.count() == 0, name


# ------------------------------------------------------------------------------ truth
def test_truth_traces_every_landed_record_to_one_person(gen):
    truth = gen.truth["record_person"]
    assert truth.groupBy("dataset", "source", "record_id").count().filter("count > 1").count() == 0
    keyed = {
        "id_observations": gen.landing["id_observations"].select("source", "record_id").distinct(),
        "events": gen.landing["events"].select(
            F.lit("events").alias("source"), F.col("event_id").alias("record_id")
        ),
        "orders": gen.landing["orders"].select(
            F.lit("orders").alias("source"), F.col("order_id").alias("record_id")
        ),
        "touchpoints": gen.landing["touchpoints"].select(
            F.lit("touchpoints").alias("source"), F.col("touch_id").alias("record_id")
        ),
        "customers": gen.landing["customers"].select(
            F.lit("customers").alias("source"),
            F.concat_ws(":", "id_type", "id_value").alias("record_id"),
        ),
        "forget_requests": gen.landing["forget_requests"].select(
            F.lit("forget_requests").alias("source"),
            F.concat_ws(":", "id_type", "id_value").alias("record_id"),
        ),
    }
    for dataset, records in keyed.items():
        known = truth.filter(F.col("dataset") == dataset).select("source", "record_id")
        assert records.count() > 0, dataset
        assert records.join(known, on=["source", "record_id"], how="left_anti").count() == 0, (
            dataset
        )


def test_truth_tables_describe_people_and_channels(gen):
    prefs = gen.truth["person_preferences"]
    sums = prefs.groupBy("person_id").agg(F.sum("weight").alias("total"))
    assert sums.count() == SMALL.people
    assert sums.filter(F.abs(F.col("total") - 1.0) > 1e-9).count() == 0
    params = gen.truth["person_purchase_params"]
    assert params.count() == SMALL.people
    assert params.filter((F.col("lambda") <= 0) | (F.col("p") <= 0) | (F.col("p") > 1)).count() == 0
    effects = {r["channel"]: r for r in gen.truth["channel_effects"].collect()}
    assert set(effects) == {c.name for c in CHANNELS}
    assert effects["search"]["effect"] > effects["display"]["effect"]
    assert abs(sum(r["pre_purchase_share"] for r in effects.values()) - 1.0) < 1e-9


# ------------------------------------------------------------------------------ traps
def test_store_hotline_is_the_phone_of_many_customers_at_pos(gen, owners):
    hotlines = (
        gen.truth["traps"]
        .filter(F.col("kind") == "hotline")
        .select(F.col("id_value").alias("hotline"))
    )
    at_pos = owners.filter((F.col("source") == "pos") & (F.col("id_type") == "phone"))
    shared = (
        at_pos.join(hotlines, _digits() == F.col("hotline"), how="inner")
        .groupBy("hotline")
        .agg(F.countDistinct("person_id").alias("people"))
        .agg(F.max("people"))
        .first()[0]
    )
    assert shared >= 5


def test_placeholder_values_appear(gen):
    seen = {
        (r["id_type"], r["id_value"])
        for r in gen.landing["id_observations"].select("id_type", "id_value").distinct().collect()
    }
    assert ("device_id", "00000000-0000-0000-0000-000000000000") in seen
    assert ("phone", "13800000000") in seen
    assert ("email", "test@test.com") in seen
    junk = {value for kind, value in seen if kind in ("device_id", "cookie_id")}
    assert {"undefined", "null"} <= junk


def test_identifiers_are_spelled_differently_across_sources(gen, owners):
    phones = [
        r["id_value"]
        for r in owners.filter(F.col("id_type") == "phone").select("id_value").collect()
    ]
    assert any(p.startswith("+86") for p in phones)
    assert any(p.startswith("86") and len(p) == 13 for p in phones)
    assert any("-" in p for p in phones) and any(" " in p for p in phones)
    assert all(len(_national(p)) == 11 and _national(p).startswith("1") for p in phones)

    emails = [
        r["id_value"]
        for r in owners.filter(F.col("id_type") == "email").select("id_value").collect()
    ]
    assert any(e != e.strip() for e in emails)
    assert any(e.strip() != e.strip().lower() for e in emails)

    devices = [
        r["id_value"]
        for r in owners.filter(F.col("id_type") == "device_id").select("id_value").collect()
    ]
    assert any(d.isupper() for d in devices if "-" in d) and any(
        d.islower() for d in devices if "-" in d
    )

    # One person's phone written in several ways: the spellings differ, the digits do not.
    spellings = (
        owners.filter(F.col("id_type") == "phone")
        .groupBy("person_id", _digits().alias("digits"))
        .agg(F.countDistinct("id_value").alias("spellings"))
    )
    assert spellings.filter(F.col("spellings") >= 2).count() > 0


def _national(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return digits[2:] if len(digits) == 13 else digits


def test_family_devices_are_shared_by_several_members(gen, owners):
    family = (
        gen.truth["traps"]
        .filter(F.col("kind") == "family_device")
        .select(F.col("id_value").alias("device"))
    )
    app_devices = owners.filter(
        (F.col("source") == "app") & (F.col("id_type") == "device_id")
    ).select(F.lower("id_value").alias("device"), "person_id")
    sharing = (
        app_devices.join(family, on="device", how="inner")
        .groupBy("device")
        .agg(F.countDistinct("person_id").alias("people"))
        .filter(F.col("people") >= 2)
    )
    assert sharing.count() > 0
    # Members logged in on a shared device: the same device sits in records of different members.
    members = owners.filter(F.col("id_type") == "member_id").select(
        "source", "record_id", F.col("id_value").alias("member")
    )
    linked = (
        app_devices.join(family, on="device", how="inner")
        .join(
            owners.select("source", "record_id", F.lower("id_value").alias("device")),
            on="device",
            how="inner",
        )
        .join(members, on=["source", "record_id"], how="inner")
        .groupBy("device")
        .agg(F.countDistinct("member").alias("members"))
        .agg(F.max("members"))
        .first()[0]
    )
    assert linked >= 2


def test_internet_cafe_cookies_are_seen_with_many_emails(gen, owners):
    cafes = (
        gen.truth["traps"]
        .filter(F.col("kind") == "cafe_cookie")
        .select(F.col("id_value").alias("cookie"))
    )
    cookies = owners.filter(F.col("id_type") == "cookie_id").select(
        "source", "record_id", F.col("id_value").alias("cookie")
    )
    emails = owners.filter(F.col("id_type") == "email").select(
        "source", "record_id", F.lower(F.trim("id_value")).alias("email"), "person_id"
    )
    per_cafe = (
        cookies.join(cafes, on="cookie", how="inner")
        .join(emails, on=["source", "record_id"], how="inner")
        .groupBy("cookie")
        .agg(F.countDistinct("email").alias("emails"), F.countDistinct("person_id").alias("people"))
        .first()
    )
    assert per_cafe["emails"] >= 3 and per_cafe["people"] >= 3


def test_some_people_change_phone_numbers(gen, owners):
    crm = owners.filter(F.col("source") == "crm")
    phones = crm.filter(F.col("id_type") == "phone").select(
        "record_id", "person_id", _digits().alias("phone")
    )
    changed = (
        phones.groupBy("person_id")
        .agg(F.countDistinct("phone").alias("numbers"))
        .filter("numbers >= 2")
    )
    assert changed.count() > 0


def test_people_have_several_devices_and_rotating_cookies(gen, owners):
    per_person = owners.groupBy("person_id").agg(
        F.countDistinct(F.when(F.col("id_type") == "device_id", F.lower("id_value"))).alias(
            "devices"
        ),
        F.countDistinct(F.when(F.col("id_type") == "cookie_id", F.col("id_value"))).alias(
            "cookies"
        ),
    )
    top = per_person.agg(
        F.max("devices").alias("devices"), F.max("cookies").alias("cookies")
    ).first()
    assert top["devices"] >= 2 and top["cookies"] >= 3


def test_own_cookies_and_devices_sign_in_once_with_the_account(gen, owners):
    """signin_share (0.95) of a person's own cookies, devices and WeChat accounts sign in
    once, with the person's account; the shared cafe cookie and family device never do."""
    signins = owners.filter(F.col("record_id").rlike("^SI[WAX]"))
    own = {"web": "cookie_id", "app": "device_id", "wechat": "open_id"}
    own_type = F.when(F.col("source") == "web", "cookie_id").when(
        F.col("source") == "app", "device_id"
    )
    own_type = own_type.otherwise("open_id")
    per_record = signins.groupBy("source", "record_id", "person_id").agg(
        F.sort_array(F.collect_set("id_type")).alias("types"),
        F.max(F.when(F.col("id_type") == own_type, F.lower("id_value"))).alias("own"),
    )
    rows = per_record.collect()
    assert {r["source"] for r in rows} == set(own)
    assert all("phone" in r["types"] and own[r["source"]] in r["types"] for r in rows)
    signed = {(r["person_id"], r["own"]) for r in rows}
    assert len(signed) == len(rows)  # once each

    event_owner = (
        gen.truth["record_person"]
        .filter(F.col("dataset") == "events")
        .select(F.col("record_id").alias("event_id"), "person_id")
    )
    traps = {
        r["id_value"].lower() for r in gen.truth["traps"].select("id_value").collect()
    }  # placeholders too
    used = (
        gen.landing["events"]
        .filter(F.col("id_type").isin("cookie_id", "device_id"))
        .join(event_owner, "event_id")
        .select("person_id", F.lower("id_value").alias("own"))
        .distinct()
        .collect()
    )
    mine = {(r["person_id"], r["own"]) for r in used if r["own"] not in traps}
    assert 0.85 < len(mine & signed) / len(mine) < 1.0
    assert not {value for _, value in signed} & traps


def test_retail_records_join_each_persons_strong_identifiers(gen, owners):
    """The retail family is the default, and its sign-ins and WeChat follows nearly always
    put a member's contacts and their WeChat union id in one record (in the siloed family
    weak identifiers alone join them: tests/test_generate_siloed.py)."""
    assert (SMALL.family, SMALL.signin_contacts, SMALL.household_size) == ("retail", "all", 4)
    assert SMALL.kiosk_share == 0
    assert gen.truth["traps"].filter(F.col("kind") == "kiosk_device").count() == 0
    both = gen.truth["people"].filter(F.col("is_member") & F.col("wechat_user")).select("person_id")
    bridged = (
        owners.groupBy("source", "record_id", "person_id")
        .agg(
            F.max(F.col("id_type").isin("member_id", "email", "phone")).alias("contacts"),
            F.max(F.col("id_type") == "union_id").alias("wechat"),
        )
        .filter(F.col("contacts") & F.col("wechat"))
        .select("person_id")
        .distinct()
    )
    assert both.count() > 20
    assert both.join(bridged, on="person_id", how="left_anti").count() / both.count() < 0.1


# ----------------------------------------------------------------- behaviour structure
def test_order_totals_equal_their_lines_and_refunds_exist(gen):
    orders = gen.landing["orders"]
    lines = gen.landing["order_items"]
    totals = lines.groupBy("order_id").agg(
        F.sum(F.col("quantity") * F.col("unit_price")).alias("lines_total")
    )
    joined = orders.join(totals, on="order_id", how="left")
    assert joined.filter(F.col("lines_total").isNull()).count() == 0
    assert joined.filter(F.abs(F.col("amount") - F.col("lines_total")) > 0.005 + 1e-9).count() == 0
    assert lines.join(orders, on="order_id", how="left_anti").count() == 0
    statuses = {r[0] for r in orders.select("status").distinct().collect()}
    assert {"paid", "refunded"} <= statuses and statuses <= {"paid", "refunded", None}
    assert orders.filter(F.col("status") == "refunded").count() < orders.count() * 0.2
    assert orders.filter(F.col("amount") <= 0).count() == 0
    assert lines.filter((F.col("quantity") < 1) | (F.col("unit_price") <= 0)).count() == 0
    items = gen.landing["items"].select("item_id")
    assert lines.join(items, on="item_id", how="left_anti").count() == 0


def test_purchases_follow_the_planted_rate_and_dropout(gen):
    params = gen.truth["person_purchase_params"]
    orders = gen.landing["orders"].join(
        gen.truth["record_person"]
        .filter(F.col("dataset") == "orders")
        .select(F.col("record_id").alias("order_id"), "person_id"),
        on="order_id",
        how="inner",
    )
    counts = orders.groupBy("person_id").agg(F.count(F.lit(1)).alias("orders"))
    joined = params.join(counts, on="person_id", how="left").fillna(0, subset=["orders"])
    # Experiments' participants also buy what the experiments planted.
    assert params.filter("experiment_orders > 0").count() > 0
    assert (
        joined.filter(F.col("orders") != F.col("purchases") + F.col("experiment_orders")).count()
        == 0
    )
    buyers = joined.filter(F.col("purchases") > 0)
    median = buyers.approxQuantile("lambda", [0.5], 0.0)[0]
    high = buyers.filter(F.col("lambda") > median).agg(F.avg("purchases")).first()[0]
    low = buyers.filter(F.col("lambda") <= median).agg(F.avg("purchases")).first()[0]
    assert high > low
    assert params.filter(F.col("dropout_at").isNotNull()).count() > 0
    assert params.filter("alive_at_end").count() > 0
    # Dropped-out people buy exactly dropout_after repeat purchases, never more.
    dropped = params.filter(F.col("dropout_at").isNotNull())
    assert dropped.filter(F.col("purchases") != F.col("dropout_after") + 1).count() == 0


def test_views_follow_latent_preferences(gen):
    prefs = gen.truth["person_preferences"]
    favourite = (
        prefs.withColumn("rank", F.row_number().over(_by_person_weight()))
        .filter(F.col("rank") == 1)
        .select("person_id", F.col("category").alias("favourite"))
    )
    owners = (
        gen.truth["record_person"]
        .filter(F.col("dataset") == "events")
        .select(F.col("record_id").alias("event_id"), "person_id")
    )
    views = (
        gen.landing["events"]
        .filter(F.col("event_type").isin("view", "add_to_cart"))
        .join(owners, on="event_id", how="inner")
        .join(gen.landing["items"].select("item_id", "category"), on="item_id", how="inner")
        .join(favourite, on="person_id", how="inner")
    )
    share = views.agg(F.avg((F.col("category") == F.col("favourite")).cast("double"))).first()[0]
    assert share > 0.3  # a uniform taste would give 1/12


def _by_person_weight():
    return Window.partitionBy("person_id").orderBy(F.col("weight").desc(), F.col("category"))


def test_item_popularity_is_long_tailed(gen):
    views = gen.landing["events"].filter(F.col("item_id").isNotNull()).groupBy("item_id").count()
    ranked = [r["count"] for r in views.orderBy(F.col("count").desc()).collect()]
    top = sum(ranked[: max(1, len(ranked) // 10)])
    assert top / sum(ranked) > 0.25  # the top 10% of items draw over a quarter of the views


def test_effective_channels_precede_purchases_more_often(gen):
    owner = gen.truth["record_person"].select(F.col("record_id"), "person_id")
    touches = gen.landing["touchpoints"].join(
        owner, F.col("touch_id") == F.col("record_id"), how="inner"
    )
    orders = (
        gen.landing["orders"]
        .join(owner, F.col("order_id") == F.col("record_id"), how="inner")
        .select(F.col("person_id").alias("buyer"), "order_time")
    )
    before = touches.join(
        orders,
        (F.col("person_id") == F.col("buyer"))
        & (F.col("order_time") >= F.col("touch_time"))
        & (F.col("order_time") <= F.col("touch_time") + F.expr("INTERVAL 3 DAYS")),
        how="left_semi",
    )
    rate = {
        r["channel"]: r["rate"]
        for r in touches.groupBy("channel")
        .count()
        .join(
            before.groupBy("channel").count().withColumnRenamed("count", "before"),
            on="channel",
            how="left",
        )
        .select("channel", (F.coalesce("before", F.lit(0)) / F.col("count")).alias("rate"))
        .collect()
    }
    assert rate["search"] > rate["display"] and rate["direct"] > rate["display"]
    # People who never buy are touched too.
    buyers = orders.select(F.col("buyer").alias("person_id")).distinct()
    assert touches.join(buyers, on="person_id", how="left_anti").count() > 0


def test_campaign_spend_covers_the_campaigns_touches_name(gen):
    spend = gen.landing["campaign_spend"]
    paid = [c.name for c in CHANNELS if c.cost_per_click is not None]
    assert spend.select("spend_date").distinct().count() == SMALL.days
    assert {r[0] for r in spend.select("channel").distinct().collect()} == set(paid)
    assert spend.filter(F.col("spend") <= 0).count() == 0
    named = (
        gen.landing["touchpoints"]
        .filter(F.col("campaign_id").isNotNull())
        .select(F.to_date("touch_time").alias("spend_date"), "channel", "campaign_id")
    )
    assert (
        named.join(spend, on=["spend_date", "channel", "campaign_id"], how="left_anti").count() == 0
    )
    direct = gen.landing["touchpoints"].filter(F.col("channel") == "direct")
    assert direct.filter(F.col("campaign_id").isNotNull() | F.col("cost").isNotNull()).count() == 0


def test_customers_and_forget_requests(gen):
    customers = gen.landing["customers"]
    total = customers.count()
    opted_out = customers.filter(~F.col("consent_marketing")).count()
    assert 0.05 < opted_out / total < 0.3
    assert (
        customers.filter(
            F.col("consent_marketing").isNull() | F.col("signup_time").isNull()
        ).count()
        == 0
    )
    assert (
        customers.filter(F.col("birth_date") > F.lit(dt.date(2008, 4, 1))).count() == 0
    )  # adults only
    assert {r[0] for r in customers.select("gender").distinct().collect()} <= {"F", "M", None}
    forget = gen.landing["forget_requests"]
    assert forget.count() >= 1
    assert {r[0] for r in forget.select("id_type").distinct().collect()} <= {
        "email",
        "phone",
        "member_id",
    }


def test_experiments_are_planted_among_members_with_their_truth(gen):
    arms = {
        (r["experiment_id"], r["arm"]): r["weight"] for r in gen.landing["experiments"].collect()
    }
    # Two arms, two, then three; equal shares (no weight) in all three.
    assert sorted(arms) == [
        ("exp_01", "control"), ("exp_01", "variant_a"),
        ("exp_02", "control"), ("exp_02", "variant_a"),
        ("exp_03", "control"), ("exp_03", "variant_a"), ("exp_03", "variant_b"),
    ]  # fmt: skip
    assert set(arms.values()) == {None}
    assigned = gen.landing["experiment_assignments"]
    assert {r[0] for r in assigned.select("id_type").distinct().collect()} == {"member_id"}
    assert {
        (r[0], r[1]) for r in assigned.select("experiment_id", "arm").distinct().collect()
    } <= set(arms)
    # One row per person and experiment.
    assert assigned.count() == assigned.select("experiment_id", "id_value").distinct().count()
    # Every treatment arm has its truth, for both metrics; exp_02 lost assignments.
    lifts = {
        (r["experiment_id"], r["arm"], r["metric"]): r
        for r in gen.truth["experiment_lifts"].collect()
    }
    assert set(lifts) == {
        (e, a, m)
        for e, a in arms
        if a != "control"
        for m in ("conversion_rate", "revenue_per_person")
    }
    assert {k[0] for k, r in lifts.items() if r["lost"] > 0} == {"exp_02"}
    assert all(r["true_lift"] >= 0 and r["people"] > 0 for r in lifts.values())


# ---------------------------------------------------------------------------- corruption
def test_no_corruption_by_default(gen):
    assert gen.truth["corruptions"].count() == 0
    for name in CORRUPTED_DATASETS:
        df = gen.landing[name]
        spec = SPECS[name]
        assert df.groupBy(*spec.keys).count().filter("count > 1").count() == 0, name
        assert df.filter(" OR ".join(f"{c} IS NULL" for c in spec.required)).count() == 0, name
    seen = {r[0] for r in gen.landing["id_observations"].select("id_type").distinct().collect()}
    assert seen <= KNOWN_ID_TYPES


@pytest.mark.parametrize("name", CORRUPTED_DATASETS)
def test_corruption_plants_every_kind_and_records_it(gen, name):
    text = as_text(gen.landing[name], name, every_column=True)
    landed_df, truth_df = corrupt(text, name, SMALL.seed, 0.15)
    # A few thousand rows: check them in Python rather than with a Spark job per check.
    clean = text.collect()
    landed = landed_df.collect()
    truth = truth_df.collect()
    spec = SPECS[name]
    recorded = {kind: sum(1 for t in truth if t["kind"] == kind) for kind in kinds(name)}

    assert all(n > 0 for n in recorded.values()), recorded
    assert 0.08 < len(truth) / len(clean) < 0.25
    # Every recorded corruption is in the landed rows exactly as recorded...
    raw_rows = {json.dumps(r.asDict(), separators=(",", ":")) for r in landed}
    assert all(t["raw"] in raw_rows for t in truth)
    # ...and the landed rows are wrong in exactly those ways, nowhere else.
    assert len(landed) == len(clean) + recorded["duplicate"]
    counts = Counter(tuple(r) for r in landed)
    assert sum(1 for c in counts.values() if c > 1) == recorded["duplicate"]
    times = [r[spec.order_by] for r in landed if r[spec.order_by] is not None]
    assert sum(1 for t in times if not _iso(t)) == recorded["bad_timestamp"]
    assert (
        sum(1 for r in landed if any(r[c] is None for c in spec.required))
        == recorded["missing_required"]
    )
    id_types = [r["id_type"] for r in landed if r["id_type"] is not None]
    assert sum(1 for t in id_types if t not in KNOWN_ID_TYPES) == recorded["unknown_id_type"]
    if name in NUMERIC_COLUMNS:
        column = NUMERIC_COLUMNS[name]
        assert (
            sum(1 for r in landed if r[column] is not None and not _number(r[column]))
            == recorded["wrong_type"]
        )


KNOWN_ID_TYPES = {"email", "phone", "member_id", "device_id", "cookie_id", "open_id", "union_id"}


def _iso(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _files(spark, path: str) -> list[str]:
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return [status.getPath().getName() for status in fs.listStatus(hadoop_path)]


def test_base_config_spells_out_the_defaults(cfg):
    # conf/base.yaml documents every generate key; its values are the code's defaults.
    assert cfg.generate == GenerateConfig()


def test_main_rejects_a_bad_config_before_spark():
    assert job.main(["--set", "generate.people=0"]) == 2


# Last: it rewrites the files the tests above read.
def test_rerun_with_other_partitioning_rewrites_the_same_rows(spark, generated, gen):
    cfg, counts = generated
    # More partitions and files this time: rows must not depend on either.
    again = cfg.model_copy(update={"generate": _small(partitions=3)})
    assert job.run(spark, again) == counts
    files = [f for f in _files(spark, cfg.landing_path("events")) if f.endswith(".parquet")]
    assert len(files) == 3
    for name in DATASETS:
        rewritten = _typed(_read(spark, cfg, name), name)
        assert_df_equality(
            rewritten, gen.landing[name], ignore_row_order=True, ignore_nullable=True
        )
    lake = Lakehouse.from_config(spark, cfg)
    for table in ("record_person", "person_purchase_params", "corruptions"):
        assert_df_equality(
            lake.read(T.TRUTH[table]), gen.truth[table], ignore_row_order=True, ignore_nullable=True
        )


def test_a_world_without_experiments_lands_none_and_empties_an_earlier_worlds(spark, tmp_path):
    base = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={tmp_path / 'lakehouse'}"],
        run_date=END.isoformat(),
    )
    tiny = {"people": 80, "items": 40, "days": 60, "partitions": 1, "experiment_share": 0.5}
    without = _with_generate(base, _small(**tiny, experiments=0))
    assert job.run(spark, without)["landing.experiment_assignments"] == 0
    assert not Path(without.landing_path("experiment_assignments")).exists()  # ingest: absent
    assert (
        job.run(spark, _with_generate(base, _small(**tiny, experiments=2)))[
            "landing.experiment_assignments"
        ]
        > 0
    )
    # An earlier world's experiments would otherwise be ingested with this one.
    job.run(spark, without)
    assert _read(spark, without, "experiment_assignments").count() == 0


def test_refuses_to_replace_landing_data_it_did_not_write(spark, tmp_path):
    root = tmp_path / "lakehouse"
    mine = root / "landing" / "orders" / "from_the_shop.csv"
    mine.parent.mkdir(parents=True)
    mine.write_text("order_id,order_time\no1,2026-03-30T10:00:00\n")
    cfg = load_config(PROJECT / "conf" / "base.yaml", [f"storage.root={root}"], run_date=END)
    tiny = _with_generate(cfg, _small(people=60, items=20, days=30, partitions=1))
    with pytest.raises(ConfigError, match=r"landing/orders.*generate\.replace_landing=true"):
        job.run(spark, tiny)
    assert mine.read_text().startswith("order_id")  # untouched, and nothing else written
    assert sorted(p.name for p in (root / "landing").iterdir()) == ["orders"]
    # Told to, it replaces the folder; then the folder is its own and reruns need no flag.
    told = tiny.model_copy(
        update={"generate": tiny.generate.model_copy(update={"replace_landing": True})}
    )
    counts = job.run(spark, told)
    assert not mine.exists() and counts["landing.orders"] > 0
    assert job.run(spark, tiny) == counts
