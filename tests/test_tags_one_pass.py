"""Tags of one dataset in one aggregation give the values that one aggregation per tag
gave: the per-tag computation the job used before is kept here as the reference."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.tags import compute
from precis.tags.compute import DOUBLE_DIGITS, spark_type
from precis.tags.definitions import Tag, build_tags

RUN = dt.date(2026, 3, 31)
ORDERS = "one_id string, _date date, _ts timestamp, order_id string, amount double, channel string"
CUSTOMERS = "one_id string, consent_marketing boolean, city string, birth_date date"


def ago(days: int, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(RUN - dt.timedelta(days=days), dt.time(hour))


# ------------------------------------------------ the per-tag computation, as it was
def _typed(value, tag_type):
    cast = value.cast(spark_type(tag_type))
    return F.round(cast, DOUBLE_DIGITS) if tag_type == "double" else cast


def _in_window(df, spec, as_of):
    start, end = compute.window_bounds(as_of, spec.window_days)
    cond = F.col("_date") <= F.lit(end)
    if start is not None:
        cond = cond & (F.col("_date") >= F.lit(start))
    for field, wanted in sorted(spec.where.items()):
        cond = cond & F.col(field).isin(*(wanted if isinstance(wanted, list) else [wanted]))
    return df.filter(cond)


def _most_frequent(df, field, name):
    counts = (
        df.filter(F.col(field).isNotNull())
        .groupBy("one_id", F.col(field).cast("string").alias("_v"))
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    ranked = Window.partitionBy("one_id").orderBy(F.col("_n").desc(), F.col("_v").asc())
    return (
        counts.withColumn("_r", F.row_number().over(ranked))
        .filter(F.col("_r") == 1)
        .select("one_id", F.col("_v").alias(name))
    )


def window_tag(df, tag, as_of):
    spec = tag.spec
    rows = _in_window(df, spec, as_of)
    field, t = spec.field, spec.template
    if t == "most_frequent":
        return _most_frequent(rows, field, tag.name)
    if t in ("first", "last", "sum", "avg", "min", "max", "unique_count"):
        rows = rows.filter(F.col(field).isNotNull())
    value = {
        "count": lambda: F.count(F.lit(1)),
        "days_since": lambda: F.datediff(F.lit(as_of), F.max("_date")),
        "sum": lambda: F.sum(field),
        "avg": lambda: F.avg(field),
        "min": lambda: F.min(field),
        "max": lambda: F.max(field),
        "unique_count": lambda: F.countDistinct(field),
        "first": lambda: F.min(F.struct("_ts", field))[field],
        "last": lambda: F.max(F.struct("_ts", field))[field],
    }[t]()
    return rows.groupBy("one_id").agg(_typed(value, tag.type).alias(tag.name))


def attribute_tag(df, tag):
    spec = tag.spec
    field = spec.field
    if spec.combine == "most_frequent":
        return _most_frequent(df, field, tag.name)
    value = {
        "all": lambda: F.bool_and(F.coalesce(F.col(field), F.lit(False))),
        "any": lambda: F.bool_or(F.coalesce(F.col(field), F.lit(False))),
        "min": lambda: F.min(field),
        "max": lambda: F.max(field),
    }[spec.combine]()
    return df.groupBy("one_id").agg(_typed(value, tag.type).alias(tag.name))


def per_tag_profile(people: DataFrame, data: dict[str, DataFrame], tags: list[Tag]) -> DataFrame:
    """One frame per tag, joined one by one; derived tags one withColumn at a time."""
    wide = people
    for t in tags:
        if t.template == "attribute":
            wide = wide.join(attribute_tag(data[t.spec.dataset], t), "one_id", "left")
        elif t.template in ("expression", "bucket"):
            wide = wide.withColumn(t.name, compute.derived_column(t))
        else:
            wide = wide.join(window_tag(data[t.spec.dataset], t, RUN), "one_id", "left")
    return wide.select("one_id", *[F.col(t.name).cast(spark_type(t.type)) for t in tags])


# ------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def data(spark):
    orders = [
        # a: web and app inside 30 days (one web order without an amount), pos inside the
        # year, web before the year, and an order after the run date (never read).
        ("a", ago(0, 23), "a1", 10.0, "web"),
        ("a", ago(3), "a2", 20.0, "app"),
        ("a", ago(4), "a3", None, "web"),
        ("a", ago(100), "a4", 40.0, "pos"),
        ("a", ago(400), "a5", 70.0, "web"),
        ("a", ago(-1), "a6", 1000.0, "web"),
        # b: rows in every window, but none on the web; two at the same instant.
        ("b", ago(5), "b1", 5.0, "pos"),
        ("b", ago(5), "b2", 7.0, "app"),
        ("b", ago(50), "b3", 7.0, "pos"),
        # c: only after the run date; d: only web orders without an amount.
        ("c", ago(-3), "c1", 99.0, "web"),
        ("d", ago(2), "d1", None, "web"),
        ("d", ago(2, 13), "d2", None, "web"),
        # e: only before every window but all history.
        ("e", ago(500), "e1", 3.0, "app"),
    ]
    customers = [
        ("a", True, "Wuhan", dt.date(1990, 1, 1)),
        ("a", None, "Xian", None),
        ("a", True, "Xian", dt.date(1991, 1, 1)),
        ("b", True, None, None),
        ("d", False, "Wuhan", dt.date(1980, 5, 5)),
    ]
    return {
        "orders": spark.createDataFrame(
            [(o, t.date(), t, i, a, c) for o, t, i, a, c in orders], ORDERS
        ),
        "customers": spark.createDataFrame(customers, CUSTOMERS),
    }


WEB = {"channel": "web"}
SPECS = {
    "web_30d": {"template": "count", "window_days": 30, "where": WEB},
    "app_pos_365d": {"template": "count", "window_days": 365, "where": {"channel": ["app", "pos"]}},
    "orders_all": {"template": "count"},
    "web_spend_30d": {"template": "sum", "field": "amount", "window_days": 30, "where": WEB},
    "spend_365d": {"template": "sum", "field": "amount", "window_days": 365},
    "aov_365d": {"template": "avg", "field": "amount", "window_days": 365},
    "min_30d": {"template": "min", "field": "amount", "window_days": 30},
    "max_all": {"template": "max", "field": "amount"},
    "channels_365d": {"template": "unique_count", "field": "channel", "window_days": 365},
    # A second distinct count with another condition: Spark plans two distinct groups.
    "web_amounts_30d": {
        "template": "unique_count",
        "field": "amount",
        "window_days": 30,
        "where": WEB,
    },
    "first_channel": {"template": "first", "field": "channel"},
    "last_channel_30d": {"template": "last", "field": "channel", "window_days": 30},
    "last_web_amount": {"template": "last", "field": "amount", "where": WEB},
    "top_channel_365d": {"template": "most_frequent", "field": "channel", "window_days": 365},
    "top_app_pos_30d": {
        "template": "most_frequent",
        "field": "channel",
        "window_days": 30,
        "where": {"channel": ["app", "pos"]},
    },
    "days_since_web": {"template": "days_since", "where": WEB},
    "days_since_30d": {"template": "days_since", "window_days": 30},
}
ATTRIBUTES = {
    "consent": {"template": "attribute", "field": "consent_marketing", "combine": "all"},
    "consent_any": {"template": "attribute", "field": "consent_marketing", "combine": "any"},
    "city": {"template": "attribute", "field": "city"},
    "born_first": {"template": "attribute", "field": "birth_date", "combine": "min"},
    "born_last": {"template": "attribute", "field": "birth_date", "combine": "max"},
}
DERIVED = {
    # Three levels: share reads base tags, share_band reads share, flag reads both.
    "share": {"template": "expression", "expr": "web_30d / orders_all", "type": "double"},
    "share_band": {
        "template": "bucket",
        "source": "share",
        "buckets": [{"label": "low", "max": 0.5}, {"label": "high", "min": 0.5}],
    },
    "flag": {
        "template": "expression",
        "expr": "coalesce(share_band, '') = 'high' or coalesce(consent, false)",
        "type": "boolean",
    },
}


def test_one_aggregation_per_dataset_gives_the_per_tag_values(spark, data):
    ts = build_tags(
        {
            **{k: {"dataset": "orders", **v} for k, v in SPECS.items()},
            **ATTRIBUTES,
            **DERIVED,
        }
    )
    # z has no row anywhere; c only after the run date.
    people = spark.createDataFrame([(p,) for p in "abcdez"], "one_id string")
    orders_tags = [t for t in ts.tags if t.name in SPECS]
    customer_tags = [t for t in ts.tags if t.name in ATTRIBUTES]
    base = {
        **dict.fromkeys(
            [t.name for t in orders_tags],
            compute.dataset_values(data["orders"], orders_tags, RUN),
        ),
        **dict.fromkeys(
            [t.name for t in customer_tags],
            compute.dataset_values(data["customers"], customer_tags, RUN),
        ),
    }
    got = compute.profile(people, base, ts.tags)
    expected = per_tag_profile(people, data, list(ts.tags))
    assert got.schema == expected.schema
    assert_df_equality(got, expected, ignore_row_order=True)

    # The cases the conditions must get right, by hand: b has rows in the window but
    # none on the web, d only rows without an amount, z and c no row that counts.
    rows = {r["one_id"]: r for r in got.collect()}
    assert (rows["b"]["web_30d"], rows["b"]["app_pos_365d"], rows["b"]["web_spend_30d"]) == (
        None,
        3,
        None,
    )
    assert (rows["a"]["web_30d"], rows["a"]["web_spend_30d"], rows["a"]["last_web_amount"]) == (
        2,
        10.0,
        10.0,
    )
    assert (rows["d"]["web_30d"], rows["d"]["spend_365d"], rows["d"]["channels_365d"]) == (
        2,
        None,
        1,
    )
    assert rows["d"]["web_amounts_30d"] is None and rows["e"]["orders_all"] == 1
    assert rows["b"]["top_app_pos_30d"] == "app" and rows["a"]["top_channel_365d"] == "web"
    assert rows["a"]["city"] == "Xian" and rows["b"]["city"] is None
    for person in ("c", "z"):
        assert {k: v for k, v in rows[person].asDict().items() if v is not None} == {
            "one_id": person,
            "flag": False,
        }

    # One join per dataset, not one per tag.
    plan = got._jdf.queryExecution().optimizedPlan().toString()
    assert plan.count(" Join ") == 2
