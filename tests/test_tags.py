"""Tag templates, definitions, history and segments on hand-built frames (hand-computed
values), and the tags job on a tiny lakehouse: rerun without changes, explain."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality

from precis import tables as T
from precis import tags as tagging
from precis.config import TagsConfig, load_config
from precis.consent import marketing_consent
from precis.errors import ConfigError
from precis.jobs import tags as tags_job
from precis.storage import Lakehouse
from precis.tags import compute, definitions, history, segments, sources
from precis.tags.definitions import build_segments, build_tags

PROJECT = Path(__file__).resolve().parents[1]
RUN = dt.date(2026, 3, 31)
SOURCE = "one_id string, _date date, _ts timestamp, order_id string, amount double, channel string"


def ago(days: int, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(RUN - dt.timedelta(days=days), dt.time(hour))


def tag(name: str, **spec):
    return build_tags({name: spec})[name]


@pytest.fixture(scope="module")
def orders(spark):
    rows = [
        # a: on the run date (late evening: still inside), 29 days before (first day of a
        # 30-day window), 30 days before (outside it), and one day after the run date.
        ("a", ago(0, 23), "a1", 10.0, "web"),
        ("a", ago(29), "a2", 20.0, "app"),
        ("a", ago(30), "a3", 40.0, "web"),
        ("a", ago(-1), "a4", 1000.0, "pos"),
        # b: two orders at the same instant; c: only after the run date.
        ("b", ago(5), "b1", 5.0, "pos"),
        ("b", ago(5), "b2", 7.0, "app"),
        ("c", ago(-3), "c1", 99.0, "web"),
    ]
    return spark.createDataFrame([(o, t.date(), t, i, a, c) for o, t, i, a, c in rows], SOURCE)


def values(spark, df, name):
    return {r["one_id"]: r[name] for r in df.collect()}


def alone(df, t):
    """One tag's frame, computed the way the job computes a dataset's tags together."""
    return compute.dataset_values(df, [t], RUN)


# --------------------------------------------------------------------- templates
@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"template": "count", "window_days": 30}, {"a": 2, "b": 2}),
        ({"template": "count", "window_days": 31}, {"a": 3, "b": 2}),
        ({"template": "count", "window_days": 1}, {"a": 1}),
        ({"template": "count"}, {"a": 3, "b": 2}),
        ({"template": "sum", "field": "amount", "window_days": 30}, {"a": 30.0, "b": 12.0}),
        ({"template": "avg", "field": "amount", "window_days": 31}, {"a": 70.0 / 3, "b": 6.0}),
        ({"template": "min", "field": "amount", "window_days": 30}, {"a": 10.0, "b": 5.0}),
        ({"template": "max", "field": "amount"}, {"a": 40.0, "b": 7.0}),
        ({"template": "first", "field": "channel"}, {"a": "web", "b": "app"}),
        ({"template": "last", "field": "channel"}, {"a": "web", "b": "pos"}),
        ({"template": "first", "field": "channel", "window_days": 30}, {"a": "app", "b": "app"}),
        ({"template": "unique_count", "field": "channel"}, {"a": 2, "b": 2}),
        ({"template": "most_frequent", "field": "channel"}, {"a": "web", "b": "app"}),
        ({"template": "days_since"}, {"a": 0, "b": 5}),
        ({"template": "days_since", "where": {"channel": "app"}}, {"a": 29, "b": 5}),
        ({"template": "count", "where": {"channel": ["web", "pos"]}}, {"a": 2, "b": 1}),
    ],
)
def test_window_templates(spark, orders, spec, expected):
    t = tag("t", dataset="orders", **spec)
    got = values(spark, alone(orders, t), "t")
    assert got == pytest.approx(expected) if t.type == "double" else got == expected


def test_window_tag_frame_and_types(spark, orders):
    t = tag("spend_30d", template="sum", dataset="orders", field="amount", window_days=30)
    expected = spark.createDataFrame([("a", 30.0), ("b", 12.0)], "one_id string, spend_30d double")
    assert_df_equality(alone(orders, t), expected, ignore_row_order=True, ignore_nullable=True)


def test_nothing_after_the_run_date(spark, orders):
    # c only has an order after the run date: no value at all, not even a zero.
    for spec in (
        {"template": "count"},
        {"template": "last", "field": "channel"},
        {"template": "days_since"},
    ):
        t = tag("t", dataset="orders", **spec)
        assert "c" not in values(spark, alone(orders, t), "t")
    assert compute.window_bounds(RUN, 30) == (dt.date(2026, 3, 2), RUN)


def test_most_frequent_ties_go_to_the_smallest_value(spark):
    rows = [("a", RUN, ago(0), "x", 1.0, c) for c in ("web", "app", "web", "app", "pos")]
    df = spark.createDataFrame(rows, SOURCE)
    assert values(
        spark,
        alone(df, tag("t", template="most_frequent", dataset="orders", field="channel")),
        "t",
    ) == {"a": "app"}


def test_refunds_are_excluded_and_missing_status_is_paid(spark):
    silver_orders = spark.createDataFrame(
        [
            ("o1", ago(1), "member_id", "M1", 10.0, "CNY", "web", "paid"),
            ("o2", ago(2), "member_id", "M1", 50.0, "CNY", "web", "refunded"),
            ("o3", ago(3), "member_id", "M1", 7.0, "CNY", "app", None),
            ("o4", ago(3), "member_id", None, 9.0, "CNY", "app", "paid"),  # no usable identifier
        ],
        "order_id string, order_time timestamp, id_type string, id_key string, amount double, currency string, "
        "channel string, status string",
    )
    identity_map = spark.createDataFrame(
        [("member_id", "M1", "p1")], "id_type string, id_key string, one_id string"
    )
    data = sources.build({"orders": silver_orders}, identity_map, {"orders", "refunds"})
    spend = tag("s", template="sum", dataset="orders", field="amount")
    assert values(spark, alone(data["orders"], spend), "s") == {"p1": 17.0}
    assert values(
        spark,
        alone(data["refunds"], tag("r", template="count", dataset="refunds")),
        "r",
    ) == {"p1": 1}


def test_order_lines_carry_item_category(spark):
    paid = spark.createDataFrame([("p1", RUN, ago(0), "o1", 10.0, "web")], SOURCE)
    items = spark.createDataFrame(
        [("i1", "shoes", "X"), ("i2", "books", "Y")],
        "item_id string, category string, brand string",
    )
    lines = spark.createDataFrame(
        [("o1", "i1", 2, 3.5), ("o1", "i2", 1, 1.0)],
        "order_id string, item_id string, quantity int, unit_price double",
    )
    got = sources.order_lines(paid, lines, items).select("item_id", "category", "line_amount")
    expected = spark.createDataFrame(
        [("i1", "shoes", 7.0), ("i2", "books", 1.0)],
        "item_id string, category string, line_amount double",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------- consent / attributes
@pytest.fixture(scope="module")
def customers(spark):
    return spark.createDataFrame(
        [
            ("p1", "member_id", "M1", True, "Wuhan"),
            ("p2", "member_id", "M2", True, "Wuhan"),
            ("p2", "member_id", "M3", False, "Xian"),  # one row says no
            ("p3", "member_id", "M4", None, "Xian"),  # says nothing
            ("p4", "member_id", "M5", True, None),
        ],
        "one_id string, id_type string, id_key string, consent_marketing boolean, city string",
    )


def test_consent_any_false_or_missing_means_no(spark, customers):
    people = spark.createDataFrame([(p,) for p in ("p1", "p2", "p3", "p4", "p5")], "one_id string")
    got = marketing_consent(customers, people)
    expected = spark.createDataFrame(
        [("p1", True), ("p2", False), ("p3", False), ("p4", True), ("p5", False)],
        "one_id string, consent_marketing boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    attr = tag("consent_marketing", template="attribute", field="consent_marketing", combine="all")
    assert values(spark, alone(customers, attr), "consent_marketing") == {
        "p1": True,
        "p2": False,
        "p3": False,
        "p4": True,
    }
    city = tag("city", template="attribute", field="city")
    assert values(spark, alone(customers, city), "city") == {
        "p1": "Wuhan",
        "p2": "Wuhan",
        "p3": "Xian",
    }


# ------------------------------------------------------------------ definitions
DERIVED = {
    # Declared before what they read: evaluation must follow the references.
    "aov": {"template": "expression", "expr": "spend / nullif(orders, 0)", "type": "double"},
    "big": {
        "template": "expression",
        "expr": "aov >= 10 and not coalesce(vip, false)",
        "type": "boolean",
    },
    "aov_band": {
        "template": "bucket",
        "source": "aov",
        "buckets": [{"label": "low", "max": 10}, {"label": "high", "min": 10}],
    },
    "spend": {"template": "sum", "dataset": "orders", "field": "amount"},
    "orders": {"template": "count", "dataset": "orders"},
    "vip": {"template": "attribute", "field": "consent_marketing", "combine": "any"},
}


def test_expression_tags_are_evaluated_after_what_they_read(spark, orders):
    ts = build_tags(DERIVED)
    names = ts.names
    assert names.index("aov") > max(names.index("spend"), names.index("orders"))
    assert names.index("big") > names.index("aov") and names.index("aov_band") > names.index("aov")
    read = ts.by_template("sum", "count")
    base = dict.fromkeys([t.name for t in read], compute.dataset_values(orders, read, RUN))
    people = spark.createDataFrame([("a",), ("b",), ("z",)], "one_id string")
    got = compute.profile(people, base, ts.tags).select("one_id", "aov", "big", "aov_band")
    expected = spark.createDataFrame(
        [
            ("a", 23.333333, True, "high"),
            ("b", 6.0, False, "low"),
            ("z", None, None, None),
        ],  # 70/3, 6 decimals
        "one_id string, aov double, big boolean, aov_band string",
    )
    assert_df_equality(
        got, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True
    )


def test_tall_rows_have_type_and_version(spark):
    ts = build_tags(
        {
            "n": {"template": "count", "dataset": "orders"},
            "flag": {"template": "expression", "expr": "n > 1", "type": "boolean"},
        }
    )
    wide = spark.createDataFrame(
        [("a", 2, True), ("b", None, None)], "one_id string, n bigint, flag boolean"
    )
    at = dt.datetime(2026, 4, 1, 2, 0)
    got = compute.tall(wide, ts.tags, at, RUN).drop("computed_at", "run_date")
    expected = spark.createDataFrame(
        [
            ("a", "n", "2", "long", ts["n"].version),
            ("a", "flag", "true", "boolean", ts["flag"].version),
        ],
        "one_id string, tag string, value string, type string, rule_version string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"x": {"template": "count", "dataset": "ordersz"}}, "tag 'x': unknown dataset 'ordersz'"),
        (
            {"x": {"template": "sum", "dataset": "orders", "field": "amout"}},
            "tag 'x': unknown field 'amout'",
        ),
        (
            {"x": {"template": "sum", "dataset": "orders", "field": "channel"}},
            "tag 'x': sum needs a numeric field",
        ),
        (
            {"x": {"template": "count", "dataset": "orders", "window_days": 0}},
            "tag 'x': window_days: window_days must be",
        ),
        (
            {"x": {"template": "count", "dataset": "orders", "window": 30}},
            "tag 'x': unknown key 'window'",
        ),
        (
            {"x": {"template": "counter", "dataset": "orders"}},
            "tag 'x': unknown template 'counter'",
        ),
        (
            {"x": {"template": "count", "dataset": "events", "where": {"kind": "view"}}},
            "tag 'x': where on unknown field 'kind'",
        ),
        (
            {"x": {"template": "count", "dataset": "customers"}},
            "tag 'x': dataset 'customers' has no time column",
        ),
        (
            {
                "x": {"template": "expression", "expr": "y + 1", "type": "long"},
                "y": {"template": "expression", "expr": "x * 2", "type": "long"},
            },
            "cycle between expression tags: x -> y -> x",
        ),
        (
            {"x": {"template": "expression", "expr": "nope > 1", "type": "boolean"}},
            "tag 'x': expression reads unknown tag(s) ['nope']",
        ),
        (
            {"x": {"template": "bucket", "source": "x2", "buckets": [{"label": "a"}]}},
            "tag 'x': bucket source 'x2' is not a tag",
        ),
        (
            {"x": {"template": "model", "field": "clvv"}},
            "tag 'x': unknown field 'clvv' of model source",
        ),
        ({"Bad": {"template": "count", "dataset": "orders"}}, "tag name 'Bad'"),
    ],
)
def test_invalid_definitions_name_the_tag(raw, message):
    with pytest.raises(ConfigError, match=None) as err:
        build_tags(raw)
    assert message in str(err.value)


def test_rule_version_follows_the_definition_and_its_inputs():
    base = build_tags(DERIVED)
    renamed = build_tags(
        {**DERIVED, "spend": {**DERIVED["spend"], "description": "only words changed"}}
    )
    assert renamed["spend"].version == base["spend"].version
    changed = build_tags({**DERIVED, "spend": {**DERIVED["spend"], "window_days": 90}})
    assert changed["spend"].version != base["spend"].version
    # aov, big and aov_band read spend (directly or not): their versions change too.
    for name in ("aov", "big", "aov_band"):
        assert changed[name].version != base[name].version
    assert changed["orders"].version == base["orders"].version


def test_segment_definitions():
    ts = build_tags(DERIVED)
    (seg,) = build_segments(
        {"s": {"where": "spend >= 10 and aov_band in ('high') and not vip"}}, ts
    )
    assert seg.depends == ("spend", "aov_band", "vip")
    with pytest.raises(ConfigError, match="segment 's': condition reads unknown tag"):
        build_segments({"s": {"where": "spendd > 1"}}, ts)
    with pytest.raises(ConfigError, match="segment 's': missing key 'where'; unknown key 'wher'"):
        build_segments({"s": {"wher": "spend > 1"}}, ts)


def test_default_definitions_are_valid(cfg):
    ts, segs = definitions.from_settings(cfg.tags)
    required = {
        "order_count_30d",
        "order_count_90d",
        "spend_90d",
        "spend_365d",
        "avg_order_value_365d",
        "days_since_last_order",
        "top_category_90d",
        "view_count_30d",
        "cart_count_30d",
        "consent_marketing",
        "lifecycle_stage",
        "rfm_segment",
        "churn_risk",
    }
    assert required <= set(ts.names)
    assert {s.name for s in segs} >= {"high_value_at_risk"}
    assert {t.template for t in ts.tags} >= {
        "count",
        "sum",
        "avg",
        "most_frequent",
        "days_since",
        "attribute",
        "model",
        "kmeans",
        "expression",
        "bucket",
    }


def test_tags_file_with_unknown_top_level_key(tmp_path):
    path = tmp_path / "tags.yaml"
    path.write_text(
        yaml.safe_dump({"tags": {"n": {"template": "count", "dataset": "orders"}}, "tagz": {}})
    )
    with pytest.raises(ConfigError, match="unknown key"):
        definitions.load(path, None)
    with pytest.raises(ConfigError, match="tags file not found"):
        definitions.load(tmp_path / "missing.yaml", None)


# ---------------------------------------------------------------------- history
TALL = "one_id string, tag string, value string, rule_version string"


def test_changes_between_runs(spark):
    old = spark.createDataFrame(
        [
            ("a", "n", "1", "v1"),
            ("b", "n", "2", "v1"),
            ("c", "n", "3", "v1"),
            ("d", "n", "4", "v1"),
        ],
        TALL,
    )
    new = spark.createDataFrame(
        [
            ("a", "n", "1", "v1"),
            ("b", "n", "5", "v1"),
            ("c", "n", "3", "v2"),
            ("e", "n", "6", "v1"),
        ],
        TALL,
    )
    at = dt.datetime(2026, 4, 1)
    got = history.changes(old, new, RUN, "r1", at).select(
        "one_id", "change", "old_value", "new_value"
    )
    expected = spark.createDataFrame(
        [
            ("b", "updated", "2", "5"),
            ("c", "updated", "3", "3"),
            ("d", "deleted", "4", None),
            ("e", "inserted", None, "6"),
        ],
        "one_id string, change string, old_value string, new_value string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert history.changes(old, old, RUN, "r2", at).count() == 0


def test_stats(spark):
    ts = build_tags(
        {
            "n": {"template": "count", "dataset": "orders"},
            "ch": {"template": "last", "dataset": "orders", "field": "channel"},
        }
    )
    new = spark.createDataFrame(
        [
            ("a", "n", "1", "long"),
            ("b", "n", "3", "long"),
            ("a", "ch", "web", "string"),
            ("b", "ch", "web", "string"),
            ("c", "ch", "app", "string"),
        ],
        "one_id string, tag string, value string, type string",
    )
    got = {r["tag"]: r for r in history.stats(new, 4, ts.tags, {"n": 2}, RUN, "r1").collect()}
    assert (
        got["n"]["covered"],
        got["n"]["coverage"],
        got["n"]["min"],
        got["n"]["max"],
        got["n"]["mean"],
    ) == (2, 0.5, 1.0, 3.0, 2.0)
    assert (got["n"]["changes"], got["ch"]["changes"], got["ch"]["coverage"]) == (2, 0, 0.75)
    assert got["ch"]["top_values"] == "web:2, app:1" and got["ch"]["min"] is None


# --------------------------------------------------------------------- segments
def test_segments_boolean_logic_and_consent(spark):
    ts = build_tags(
        {
            "spend": {"template": "sum", "dataset": "orders", "field": "amount"},
            "stage": {"template": "model", "field": "lifecycle_stage"},
        }
    )
    segs = build_segments(
        {
            "rich_or_new": {"where": "spend >= 100 or stage in ('new')"},
            "not_rich": {"where": "not (spend >= 100) and stage <> 'churned'"},
        },
        ts,
    )
    wide = spark.createDataFrame(
        [
            ("a", 150.0, "active"),
            ("b", 20.0, "new"),
            ("c", 500.0, "new"),
            ("d", 10.0, "churned"),
            ("e", None, "active"),
        ],
        "one_id string, spend double, stage string",
    )
    # c is rich and new but said no; e has no consent record at all.
    consent = spark.createDataFrame(
        [("a", True), ("b", True), ("c", False), ("d", True)],
        "one_id string, consent_marketing boolean",
    )
    got = segments.members(wide, segs, consent, RUN, dt.datetime(2026, 4, 1)).select(
        "segment", "one_id"
    )
    expected = spark.createDataFrame(
        [("rich_or_new", "a"), ("rich_or_new", "b"), ("not_rich", "b")],
        "segment string, one_id string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------ build (pure)
def test_build_on_a_tiny_world(spark):
    """The pure entry: profiles, tall rows, changes, statistics and segments, no lake."""
    ts = build_tags(
        {
            "orders_30d": {"template": "count", "dataset": "orders", "window_days": 30},
            "spend": {"template": "sum", "dataset": "orders", "field": "amount"},
            "big": {"template": "expression", "expr": "spend >= 100", "type": "boolean"},
        }
    )
    segs = build_segments({"big_spenders": {"where": "big"}}, ts)
    identity_map = spark.createDataFrame(
        [("member_id", "M1", "p1"), ("member_id", "M2", "p2"), ("member_id", "M3", "p3")],
        "id_type string, id_key string, one_id string",
    )
    orders = spark.createDataFrame(
        [
            ("o1", ago(1), "member_id", "M1", "ok", 150.0, "CNY", "web", "paid"),
            ("o2", ago(40), "member_id", "M1", "ok", 50.0, "CNY", "web", "paid"),
            ("o3", ago(2), "member_id", "M2", "ok", 120.0, "CNY", "app", "paid"),
            ("o4", ago(3), "member_id", "M2", "ok", 80.0, "CNY", "app", "refunded"),
        ],
        "order_id string, order_time timestamp, id_type string, id_key string, id_status string, "
        "amount double, currency string, channel string, status string",
    )
    # p2 spends as much as p1 but said no to marketing: in no segment.
    customers = spark.createDataFrame(
        [("member_id", "M1", "ok", True), ("member_id", "M2", "ok", False)],
        "id_type string, id_key string, id_status string, consent_marketing boolean",
    ).selectExpr(
        "*",
        "cast(null as string) as gender",
        "cast(null as string) as city",
        "cast(null as date) as birth_date",
        "cast(null as timestamp) as signup_time",
    )
    inputs = tagging.Inputs(
        identity_map=identity_map, silver={"orders": orders, "customers": customers}
    )
    at = dt.datetime(2026, 4, 1, 2, 3, 4)
    out = tagging.build(inputs, TagsConfig(), ts, segs, run_date=RUN, run_id="r1", computed_at=at)

    assert_df_equality(
        out.profiles,
        spark.createDataFrame(
            [
                ("p1", 1, 200.0, True, at, RUN),
                ("p2", 1, 120.0, True, at, RUN),
                ("p3", None, None, None, at, RUN),
            ],
            "one_id string, orders_30d bigint, spend double, big boolean, "
            "computed_at timestamp, run_date date",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    tall = {(r["one_id"], r["tag"]): r["value"] for r in out.profile_tags.collect()}
    assert tall == {
        ("p1", "orders_30d"): "1",
        ("p1", "spend"): "200.0",
        ("p1", "big"): "true",
        ("p2", "orders_30d"): "1",
        ("p2", "spend"): "120.0",
        ("p2", "big"): "true",
    }
    assert {(r["one_id"], r["tag"], r["change"], r["run_id"]) for r in out.changes.collect()} == {
        (p, t, "inserted", "r1") for p, t in tall
    }
    assert out.people == 3 and out.change_counts == {"orders_30d": 2, "spend": 2, "big": 2}
    assert {r["tag"]: (r["covered"], r["coverage"]) for r in out.stats_rows} == {
        "orders_30d": (2, 0.666667),
        "spend": (2, 0.666667),
        "big": (2, 0.666667),
    }
    assert out.segments is not None and out.segment_counts == {"big_spenders": 1}
    assert {(r["segment"], r["one_id"]) for r in out.segments.export.collect()} == {
        ("big_spenders", "p1")
    }
    assert [tuple(r) for r in out.segments.tally.collect()] == [("big_spenders", 1)]

    # The same world again, compared with what the first build stored: nothing changed.
    again = tagging.build(
        replace(inputs, previous=out.profile_tags),
        TagsConfig(),
        ts,
        segs,
        run_date=RUN,
        run_id="r2",
    )
    assert again.change_counts == {} and again.changes.collect() == []


# ------------------------------------------------------------- the job, tiny lake
@pytest.fixture(scope="module")
def tiny(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("tags")
    root = base / "lakehouse"
    # A subset of the shipped definitions keeps Spark's plans (and this file) small; the
    # whole default set runs in the end-to-end test.
    shipped = yaml.safe_load((PROJECT / "conf" / "tags.yaml").read_text())["tags"]
    keep = (
        "order_count_30d",
        "spend_90d",
        "spend_365d",
        "days_since_last_order",
        "top_category_90d",
        "avg_unit_price_365d",
        "price_sensitivity",
        "view_count_30d",
        "cart_count_30d",
        "consent_marketing",
        "lifecycle_stage",
        "high_value",
    )
    (base / "tags.yaml").write_text(yaml.safe_dump({"tags": {k: shipped[k] for k in keep}}))
    shipped_segments = yaml.safe_load((PROJECT / "conf" / "segments.yaml").read_text())["segments"]
    (base / "segments.yaml").write_text(
        yaml.safe_dump(
            {
                "segments": {
                    k: shipped_segments[k] for k in ("cart_abandoners", "price_sensitive_browsers")
                }
            }
        )
    )
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "mlflow.enabled=false",
            f"tags.definitions={base / 'tags.yaml'}",
            f"tags.segments={base / 'segments.yaml'}",
        ],
        run_date=RUN.isoformat(),
    )
    lake = Lakehouse.from_config(spark, cfg)
    ims = [
        ("member_id", "M1", "p1"),
        ("member_id", "M2", "p2"),
        ("cookie_id", "ck2", "p2"),
        ("member_id", "M3", "p3"),
    ]
    lake.overwrite(
        spark.createDataFrame(ims, "id_type string, id_key string, one_id string"),
        T.IDENTITY_MAP,
    )
    order_rows = [
        ("o1", ago(1), "member_id", "M1", 600.0, "paid"),
        ("o2", ago(40), "member_id", "M1", 700.0, "paid"),
        ("o3", ago(2), "member_id", "M1", 900.0, "refunded"),
        ("o4", ago(45), "member_id", "M2", 50.0, "paid"),
        ("o5", ago(10), "member_id", "M3", 1500.0, "paid"),
    ]
    lake.overwrite(
        spark.createDataFrame(
            [(o, t, it, k, "ok", a, "CNY", "web", s) for o, t, it, k, a, s in order_rows],
            "order_id string, order_time timestamp, id_type string, id_key string, id_status string, amount double, "
            "currency string, channel string, status string",
        ),
        T.ORDERS,
    )
    lake.overwrite(
        spark.createDataFrame(
            [
                ("o1", "i1", 1, 600.0),
                ("o2", "i2", 1, 700.0),
                ("o4", "i1", 2, 25.0),
                ("o5", "i2", 1, 1500.0),
            ],
            "order_id string, item_id string, quantity int, unit_price double",
        ),
        T.ORDER_ITEMS,
    )
    lake.overwrite(
        spark.createDataFrame(
            [("i1", "shoes", "A"), ("i2", "books", "B")],
            "item_id string, category string, brand string",
        ),
        T.ITEMS,
    )
    lake.overwrite(
        spark.createDataFrame(
            [
                ("e1", ago(3), "web", "cookie_id", "ck2", "ok", "add_to_cart", "i1", None),
                ("e2", ago(3), "web", "cookie_id", "ck2", "ok", "view", "i1", None),
            ],
            "event_id string, event_time timestamp, source string, id_type string, id_key string, id_status string, "
            "event_type string, item_id string, channel string",
        ),
        T.EVENTS,
    )
    lake.overwrite(
        spark.createDataFrame(
            [
                ("member_id", "M1", "ok", True),
                ("member_id", "M2", "ok", True),
                ("member_id", "M3", "ok", False),
            ],
            "id_type string, id_key string, id_status string, consent_marketing boolean",
        ).selectExpr(
            "*",
            "cast(null as string) as gender",
            "cast(null as string) as city",
            "cast(null as date) as birth_date",
            "cast(null as timestamp) as signup_time",
        ),
        T.CUSTOMERS,
    )
    first = tags_job.run(spark, cfg)
    second = tags_job.run(spark, cfg)
    return cfg, lake, first, second


def test_job_values_and_rerun(tiny):
    _cfg, lake, first, second = tiny
    rows = {(r["one_id"], r["tag"]): r["value"] for r in lake.read(T.PROFILE_TAGS).collect()}
    assert rows[("p1", "spend_365d")] == "1300.0" and rows[("p1", "order_count_30d")] == "1"
    assert rows[("p1", "days_since_last_order")] == "1" and ("p1", "spend_90d") in rows
    assert rows[("p2", "cart_count_30d")] == "1" and rows[("p2", "top_category_90d")] == "shoes"
    assert rows[("p3", "consent_marketing")] == "false" and rows[("p3", "high_value")] == "false"
    assert (
        "p1",
        "lifecycle_stage",
    ) not in rows  # no gold/customer_value: model tags have no values
    assert first["people"] == 3 and sum(first["changes"].values()) == len(rows)
    # A rerun of the date compares with the snapshot before it, as the first run did: the
    # same changes, replacing the first run's rows, and the same snapshot.
    assert second["changes"] == first["changes"] and second["written"] == first["written"]
    assert lake.read(T.PROFILES).count() == 3
    assert lake.read(T.TAG_CHANGES).count() == len(rows)
    assert lake.snapshot_dates(T.PROFILE_TAGS) == lake.snapshot_dates(T.PROFILES) == [_cfg.run_date]


def test_job_segments_exclude_no_consent(tiny, spark):
    _cfg, lake, first, _ = tiny
    members = {(r["segment"], r["one_id"]) for r in lake.read(T.SEGMENTS).collect()}
    # p2 added to cart without ordering in 30 days; p3 (no consent) is in no segment.
    assert ("cart_abandoners", "p2") in members and not any(p == "p3" for _, p in members)
    exported = spark.read.parquet(f"{lake.root}/exports/segments/run_date={RUN}")
    assert {(r["segment"], r["one_id"]) for r in exported.collect()} == members
    assert ("price_sensitive_browsers", "p2") in members and first["segments"][
        "cart_abandoners"
    ] == 1


def test_explain(tiny, spark, capsys):
    cfg, _lake, _, _ = tiny
    ex = cfg.model_copy(
        update={
            "tags": cfg.tags.model_copy(
                update={
                    "explain": cfg.tags.explain.model_copy(
                        update={"id": "member_id:M1", "tag": "spend_365d"}
                    )
                }
            )
        }
    )
    out = tags_job.run(spark, ex)
    printed = capsys.readouterr().out
    assert out["one_id"] == "p1" and out["value"] == 1300.0 and out["stored"] == "1300.0"
    assert [r["order_id"] for r in out["inputs"]] == ["o2", "o1"]  # the refund o3 is no input
    assert "rule version " + out["version"] in printed and "2 row(s)" in printed
    bad = ex.model_copy(
        update={
            "tags": ex.tags.model_copy(
                update={"explain": ex.tags.explain.model_copy(update={"id": "nobody"})}
            )
        }
    )
    with pytest.raises(ConfigError, match="not a one_id"):
        tags_job.run(spark, bad)


def test_tags_of_absent_silver_tables_are_skipped_and_named(spark, tmp_path):
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={tmp_path}", "mlflow.enabled=false"],
        run_date=RUN.isoformat(),
    )
    lake = Lakehouse.from_config(spark, cfg)
    lake.overwrite(
        spark.createDataFrame(
            [("member_id", "M1", "p1")], "id_type string, id_key string, one_id string"
        ),
        T.IDENTITY_MAP,
    )
    result = tags_job.run(spark, cfg)
    # No silver table at all: every tag that reads one is skipped, and says which.
    assert result["skipped"]["order_count_30d"] == "no silver/orders"
    assert result["skipped"]["top_category_90d"] == "no silver/orders, silver/order_items"
    assert result["skipped"]["consent_marketing"] == "no silver/customers"
    assert len(result["skipped"]) == 18
    assert result["people"] == 1
    stats = {r["tag"]: r["skipped"] for r in lake.read(T.TAG_STATS).collect()}
    assert {t for t, why in stats.items() if why} == set(result["skipped"])


def test_bad_sql_fails_before_any_data_is_read(spark):
    ts = build_tags(
        {
            "n": {"template": "count", "dataset": "orders"},
            "bad": {"template": "expression", "expr": "n >= ", "type": "boolean"},
            "good": {"template": "expression", "expr": "coalesce(n, 0) > 1", "type": "boolean"},
        }
    )
    problems = compute.check_expressions(
        spark, ts.tags, {"segment 's'": "n in (1, 2) and not good", "segment 't'": "n >= >= 1"}
    )
    assert [name for name, _ in problems] == ["bad", "segment 't'"]


def test_main_rejects_bad_definitions_before_spark(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("precis.session.get_spark", lambda cfg: pytest.fail("Spark must not start"))
    bad = tmp_path / "tags.yaml"
    bad.write_text(
        "tags:\n  spend_90d: {template: sum, dataset: orders, field: amout, window_days: 90}\n"
    )
    code = tags_job.main(["--set", f"tags.definitions={bad}", "--set", f"storage.root={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(
        "precis tags: error: tag 'spend_90d': unknown field 'amout' of dataset 'orders'"
    )


def test_next_day_is_a_new_snapshot_and_logs_only_what_moved(tiny, spark):
    # Last test on the tiny lake: it moves the lake to the next run date.
    cfg, lake, _, _ = tiny
    from pyspark.sql import functions as F

    def snapshot(day):
        rows = lake.read_snapshot(T.PROFILE_TAGS, day).collect()
        return {(r["one_id"], r["tag"]): (r["value"], r["computed_at"]) for r in rows}

    before = snapshot(RUN)
    nxt = tags_job.run(spark, cfg.model_copy(update={"run_date": RUN + dt.timedelta(days=1)}))
    after = snapshot(RUN + dt.timedelta(days=1))
    assert snapshot(RUN) == before  # the older snapshot stays as it was
    moved = {k for k in after if k not in before or after[k][0] != before[k][0]}
    assert ("p1", "days_since_last_order") in moved and after[("p1", "days_since_last_order")][
        0
    ] == "2"
    assert ("p1", "spend_365d") not in moved  # both orders are still inside the year
    # Every value of the new snapshot was computed by its run.
    assert min(v[1] for v in after.values()) > max(v[1] for v in before.values())
    logged = lake.read(T.TAG_CHANGES).filter(F.col("run_date") == RUN + dt.timedelta(days=1))
    assert (
        logged.count() == sum(nxt["changes"].values()) == len(moved) + len(set(before) - set(after))
    )
    assert lake.read_latest(T.PROFILES).count() == 3
