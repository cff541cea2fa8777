"""Lifecycle transforms on hand-built frames (hand-computed values) and the job end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import load_config
from precis.jobs import lifecycle
from precis.lifecycle import VALUE_COLUMNS, Inputs, build, churn, segments, summary
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
D0 = dt.date(2026, 1, 1)
ORDERS = "one_id string, order_id string, order_date date, amount double, refunded boolean"


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def orders(spark):
    rows = [
        # a: two orders on day 0 (one transaction of 15), day 7, a refund on day 8, day 14,
        # and an order after the as-of date.
        ("a", "a1", day(0), 10.0, False),
        ("a", "a2", day(0), 5.0, False),
        ("a", "a3", day(7), 20.0, False),
        ("a", "a4", day(8), 100.0, True),
        ("a", "a5", day(14), 30.0, False),
        ("a", "a6", day(30), 7.0, False),
        # b: one order; c: only a refunded order (not a buyer).
        ("b", "b1", day(3), 40.0, False),
        ("c", "c1", day(5), 60.0, True),
    ]
    return spark.createDataFrame(rows, ORDERS)


def test_person_summary(spark, orders):
    as_of = day(21)
    got = summary.person_summary(summary.transactions(orders, as_of), as_of, "week").drop(
        "t_x", "T"
    )
    expected = spark.createDataFrame(
        [
            ("a", 2, 14, 21, 25.0, 4, 65.0, day(0), day(14), day(7), 7),
            ("b", 0, 0, 18, None, 1, 40.0, day(3), day(3), None, 18),
        ],
        "one_id string, x int, t_x_days int, T_days int, monetary_value double, orders long, total_spend double, "
        "first_purchase date, last_purchase date, previous_purchase date, recency_days int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    weeks = {
        r["one_id"]: (r["t_x"], r["T"])
        for r in summary.person_summary(
            summary.transactions(orders, as_of), as_of, "week"
        ).collect()
    }
    assert weeks["a"] == (2.0, 3.0)


def test_summary_ignores_everything_after_the_as_of_date(orders):
    as_of = day(10)
    rows = {
        r["one_id"]: r
        for r in summary.person_summary(summary.transactions(orders, as_of), as_of, "day").collect()
    }
    assert (rows["a"]["x"], rows["a"]["t_x"], rows["a"]["T"], rows["a"]["total_spend"]) == (
        1,
        7.0,
        10.0,
        35.0,
    )


def test_gamma_gamma_counts_bin_equal_spends(spark):
    person = spark.createDataFrame(
        [("a", 2, 10.0), ("b", 2, 10.0), ("c", 2, 10.0004), ("d", 1, 10.0), ("e", 0, None)],
        "one_id string, x int, monetary_value double",
    )
    got = {
        (r["x"], round(r["m"], 3)): r["people"]
        for r in summary.gamma_gamma_counts(person).collect()
    }
    # 10.0004 is within 1e-4 of 10 in relative terms: one bin; x = 0 is left out.
    assert got == {(2, 10.0): 3, (1, 10.0): 1}


def test_resolve_orders_drops_isolated_identifiers(spark):
    silver = spark.createDataFrame(
        [
            ("o1", dt.datetime(2026, 1, 2, 23, 59), "phone", "hA", 10.0, None),
            ("o2", dt.datetime(2026, 1, 3), "phone", "hotline", 20.0, "paid"),
            ("o3", dt.datetime(2026, 1, 4), "member_id", "m1", 30.0, "REFUNDED"),
            ("o4", dt.datetime(2026, 1, 5), "phone", None, 40.0, "paid"),
        ],
        "order_id string, order_time timestamp, id_type string, id_key string, amount double, status string",
    )
    identity_map = spark.createDataFrame(
        [("phone", "hA", "p1"), ("phone", "hotline", "p9"), ("member_id", "m1", "p1")],
        "id_type string, id_key string, one_id string",
    )
    isolated = spark.createDataFrame([("phone", "hotline")], "id_type string, id_key string")
    got = summary.resolve_orders(silver, identity_map, isolated)
    expected = spark.createDataFrame(
        [
            ("p1", "o1", dt.date(2026, 1, 2), 10.0, False),
            ("p1", "o3", dt.date(2026, 1, 4), 30.0, True),
        ],
        ORDERS,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------ stages and RFM
def test_lifecycle_stages(spark):
    as_of = day(400)
    people = spark.createDataFrame(
        [
            ("prospect", None, None, None),
            ("new", day(380), day(395), day(380)),  # first purchase 20 days ago
            ("won_back", day(0), day(350), day(100)),  # 250-day gap, then a purchase 50 days ago
            ("active", day(200), day(330), day(300)),  # last purchase 70 days ago, no long gap
            ("at_risk", day(100), day(250), day(200)),  # 150 days ago
            ("churned", day(10), day(200), day(150)),  # 200 days ago
            ("edge_active", day(0), day(310), day(290)),  # exactly active_days (90) ago: active
            ("edge_churn", day(0), day(220), None),  # exactly churn_days (180) ago: at_risk
        ],
        "one_id string, first_purchase date, last_purchase date, previous_purchase date",
    ).withColumn("recency_days", F.datediff(F.lit(as_of), "last_purchase"))
    got = {
        r["one_id"]: r["stage"]
        for r in people.select(
            "one_id", segments.lifecycle_stage(30, 90, 180).alias("stage")
        ).collect()
    }
    assert got == {
        "prospect": "prospect",
        "new": "new",
        "won_back": "reactivated",
        "active": "active",
        "at_risk": "at_risk",
        "churned": "churned",
        "edge_active": "active",
        "edge_churn": "at_risk",
    }


def test_rfm_scores_and_segments(spark):
    buyers = spark.createDataFrame(
        [("a", 3, 9, 900.0), ("b", 40, 1, 50.0), ("c", 200, 5, 300.0), ("d", 10, 1, 80.0)],
        "one_id string, recency_days int, orders long, total_spend double",
    )
    cuts = {
        "recency_days": [5.0, 20.0, 60.0, 120.0],
        "orders": [1.0, 1.0, 2.0, 4.0],
        "total_spend": [60, 100, 200, 500],
    }
    rules = [
        ("champions", (5, 5), (4, 5)),
        ("new_customers", (5, 5), (1, 1)),
        ("hibernating", (1, 2), (1, 5)),
    ]
    got = {
        r["one_id"]: (r["r_score"], r["f_score"], r["m_score"], r["rfm_score"], r["rfm_segment"])
        for r in segments.with_rfm(buyers, cuts, rules).collect()
    }
    assert got == {
        # recency 3 beats every cut: R 5; 9 orders exceed all four cuts: F 5.
        "a": (5, 5, 5, "555", "champions"),
        # recency 40 exceeds two cuts: R 3; one order ties the lowest cuts: F 1; no rule.
        "b": (3, 1, 1, "311", None),
        "c": (1, 5, 4, "154", "hibernating"),
        "d": (4, 1, 2, "412", None),
    }


def test_quintile_cuts(spark):
    frame = spark.createDataFrame([(float(v),) for v in range(1, 101)], "v double")
    assert segments.quintile_cuts(frame, ["v"]) == {"v": [20.0, 40.0, 60.0, 80.0]}


# ------------------------------------------------------------------------- churn
def test_churn_features_and_labels(spark, orders):
    events = spark.createDataFrame(
        [
            ("a", day(9), "view"),
            ("a", day(9), "add_to_cart"),
            ("a", day(2), "view"),
            ("b", day(25), "view"),
        ],
        "one_id string, event_date date, event_type string",
    )
    got = {r["one_id"]: r for r in churn.labelled(orders, events, day(21), 10).collect()}
    assert set(got) == {"a", "b"}  # c never paid
    a = got["a"]
    assert (a["recency_days"], a["tenure_days"], a["orders_total"], a["spend_total"]) == (
        7.0,
        21.0,
        4.0,
        65.0,
    )
    assert (a["refunds_total"], a["refund_share"], a["visit_days_30d"], a["carts_90d"]) == (
        1.0,
        0.2,
        2.0,
        1.0,
    )
    # a bought on day 30, inside (21, 31]: retained; b did not: churned. b's event on day 25
    # is after the cut-off and not a feature.
    assert (a["label"], got["b"]["label"], got["b"]["visit_days_30d"]) == (0.0, 1.0, 0.0)


# ------------------------------------------------------------------ the job, twice
IDENTITY = "id_type string, id_key string, one_id string, first_seen timestamp, last_seen timestamp"
SILVER_ORDERS = (
    "order_id string, order_time timestamp, id_type string, id_key string, id_status string, amount double, "
    "currency string, channel string, status string"
)
RUN_DATE = dt.date(2026, 3, 31)


def _simulated_orders(n: int = 400, days: int = 365, seed: int = 11):
    """BG/NBD buyers over ``days`` before the run date, with Gamma-Gamma spend."""
    rng = np.random.default_rng(seed)
    start = RUN_DATE - dt.timedelta(days=days)
    rows = []
    for i in range(n):
        lam, p, nu = rng.gamma(0.8, 1 / 40.0), rng.beta(1.0, 3.0), rng.gamma(4.0, 1 / 150.0)
        t, alive, k = rng.uniform(0, days * 0.7), True, 0
        while alive and t <= days:
            when = dt.datetime.combine(start + dt.timedelta(days=int(t)), dt.time(12))
            rows.append(
                (
                    f"o{i}_{k}",
                    when,
                    "member_id",
                    f"m{i}",
                    "ok",
                    float(round(rng.gamma(6.0, 1 / nu), 2)),
                    "CNY",
                    "web",
                    "paid",
                )
            )
            k += 1
            alive = k == 1 or rng.uniform() > p
            t += rng.exponential(1 / lam)
    return rows


def _world(spark, n: int = 400):
    """(silver orders, identity map, identity guards, member ids): simulated buyers, the
    hand-checked person, orders on an isolated hotline, and a prospect."""
    seen = dt.datetime(2025, 1, 1)
    orders = _simulated_orders(n) + [
        # The hand-checked person: day -20 (two orders, 15), day -10 (25), a refund.
        ("h1", dt.datetime(2026, 3, 11, 9), "member_id", "mh", "ok", 10.0, "CNY", "pos", "paid"),
        ("h2", dt.datetime(2026, 3, 11, 18), "member_id", "mh", "ok", 5.0, "CNY", "pos", None),
        ("h3", dt.datetime(2026, 3, 21, 9), "member_id", "mh", "ok", 25.0, "CNY", "pos", "paid"),
        (
            "h4",
            dt.datetime(2026, 3, 22, 9),
            "member_id",
            "mh",
            "ok",
            90.0,
            "CNY",
            "pos",
            "refunded",
        ),
        # Orders on the store hotline, which the identity graph isolated.
        ("x1", dt.datetime(2026, 3, 1), "phone", "hotline", "ok", 500.0, "CNY", "pos", "paid"),
        ("x2", dt.datetime(2026, 3, 2), "phone", "hotline", "ok", 500.0, "CNY", "pos", "paid"),
    ]
    members = sorted({r[3] for r in orders if r[2] == "member_id"})
    ids = [("member_id", m, f"p_{m}", seen, seen) for m in members]
    ids += [
        ("phone", "hotline", "p_hotline", seen, seen),
        ("email", "prospect", "p_prospect", seen, seen),
    ]
    guards = spark.createDataFrame(
        [
            (
                RUN_DATE,
                "r0",
                "over_linked",
                "phone",
                "hotline",
                None,
                None,
                "linked to 9 member_id values",
                9,
            )
        ],
        "run_date date, run_id string, guard string, id_type string, id_key string, other_type string, "
        "other_key string, detail string, records long",
    )
    return (
        spark.createDataFrame(orders, SILVER_ORDERS),
        spark.createDataFrame(ids, IDENTITY),
        guards,
        members,
    )


@pytest.fixture(scope="module")
def job_runs(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle_job") / "lakehouse"
    lake = Lakehouse(spark, str(root))
    orders, identity_map, guards, members = _world(spark)
    lake.overwrite(orders, T.ORDERS)
    lake.overwrite(identity_map, T.IDENTITY_MAP)
    lake.overwrite(guards, T.IDENTITY_GUARDS)
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={root}", "lifecycle.churn.max_iter=5", "lifecycle.churn.log_model=false"],
        run_date=RUN_DATE.isoformat(),
    )
    first = lifecycle.run(spark, cfg)
    table = lake.read(T.CUSTOMER_VALUE).localCheckpoint()
    params = lake.read(T.CLV_MODEL_PARAMS).localCheckpoint()
    second = lifecycle.run(spark, cfg)
    return {
        "cfg": cfg,
        "lake": lake,
        "first": first,
        "second": second,
        "table": table,
        "params": params,
        "members": members,
    }


def test_job_writes_one_row_per_person_with_the_contract_columns(job_runs):
    table = job_runs["table"]
    assert table.columns == list(VALUE_COLUMNS)
    ids = [r["one_id"] for r in table.select("one_id").collect()]
    assert sorted(ids) == sorted(
        [f"p_{m}" for m in job_runs["members"]] + ["p_hotline", "p_prospect"]
    )


def test_job_values_of_a_hand_checked_person(job_runs):
    row = job_runs["table"].filter(F.col("one_id") == "p_mh").first()
    assert (row["frequency"], row["recency"], row["T"], row["monetary_value"]) == (
        1,
        10 / 7,
        20 / 7,
        25.0,
    )
    assert (row["orders"], row["total_spend"], row["recency_days"]) == (3, 40.0, 10)
    assert (row["first_purchase"], row["last_purchase"]) == (
        dt.date(2026, 3, 11),
        dt.date(2026, 3, 21),
    )
    assert row["lifecycle_stage"] == "new"
    assert 0 < row["p_alive"] <= 1 and row["expected_purchases"] > 0 and row["clv"] > 0
    assert row["clv"] < row["expected_spend"] * row["expected_purchases"]  # discounted
    assert 0 <= row["churn_risk"] <= 1


def test_job_leaves_isolated_and_prospects_without_values(job_runs):
    rows = {
        r["one_id"]: r
        for r in job_runs["table"].filter(F.col("one_id").isin("p_hotline", "p_prospect")).collect()
    }
    for one_id, row in rows.items():
        assert row["lifecycle_stage"] == "prospect", one_id
        assert (
            row["orders"],
            row["total_spend"],
            row["p_alive"],
            row["clv"],
            row["rfm_segment"],
        ) == (0, 0.0, None, None, None)


def test_job_buyers_have_finite_scores_and_a_segment(job_runs):
    buyers = job_runs["table"].filter(F.col("orders") > 0)
    bad = buyers.filter(
        F.isnan("p_alive")
        | F.isnan("clv")
        | F.col("p_alive").isNull()
        | F.col("clv").isNull()
        | F.col("rfm_segment").isNull()
        | ~F.col("lifecycle_stage").isin(*segments.STAGES)
    )
    assert bad.count() == 0, bad.first()
    assert buyers.filter((F.col("p_alive") < 0) | (F.col("p_alive") > 1)).count() == 0


def test_job_params_table(job_runs):
    rows = {(r["model"], r["param"]): r for r in job_runs["params"].collect()}
    assert set(rows) == {("bg_nbd", k) for k in ["r", "alpha", "a", "b"]} | {
        ("gamma_gamma", k) for k in ("p", "q", "gamma")
    }
    assert {r["run_date"] for r in rows.values()} == {RUN_DATE}
    assert all(r["value"] > 0 and r["run_id"] for r in rows.values())
    assert job_runs["first"]["params"]["bg_nbd"] == {
        k: rows[("bg_nbd", k)]["value"] for k in ("r", "alpha", "a", "b")
    }


def test_job_rerun_changes_nothing(job_runs):
    # The rerun replaced its date's snapshot with the same rows: one snapshot, no doubles.
    assert job_runs["second"]["written"] == job_runs["first"]["written"] > 0
    lake = job_runs["lake"]
    assert lake.snapshot_dates(T.CUSTOMER_VALUE) == [RUN_DATE]
    assert_df_equality(lake.read(T.CUSTOMER_VALUE), job_runs["table"], ignore_row_order=True)
    params = lake.read(T.CLV_MODEL_PARAMS).drop("run_id")
    assert_df_equality(params, job_runs["params"].drop("run_id"), ignore_row_order=True)


def test_job_logs_holdout_and_churn_to_mlflow(job_runs):
    import mlflow

    from precis.tracking import tracking_uri

    first = job_runs["first"]
    assert first["holdout"]["holdout_people"] > 0 and first["churn"]["churn_auc"] > 0.5
    client = mlflow.MlflowClient(tracking_uri(job_runs["cfg"]))
    experiment = client.get_experiment_by_name("precis-lifecycle")
    run = client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])[0]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "holdout")}
    assert artifacts == {"holdout/holdout.json", "holdout/holdout.png"}
    assert run.data.metrics["bg_nbd_r"] == pytest.approx(first["params"]["bg_nbd"]["r"])
    assert "churn_baseline_p_alive_auc" in run.data.metrics


def test_job_without_identity_map_names_the_missing_table(spark, tmp_path):
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={tmp_path}", "mlflow.enabled=false"],
        run_date="2026-03-31",
    )
    lake = Lakehouse(spark, str(tmp_path))
    lake.overwrite(spark.createDataFrame([], SILVER_ORDERS), T.ORDERS)
    with pytest.raises(Exception, match="gold/identity_map not found.*run the identity job"):
        lifecycle.run(spark, cfg)


def test_build_on_a_small_world(spark):
    orders, identity_map, guards, members = _world(spark, n=150)
    settings = load_config(
        PROJECT / "conf" / "base.yaml",
        ["lifecycle.churn.enabled=false", "lifecycle.holdout_days=0"],
    ).lifecycle
    out = build(
        Inputs(orders=orders, identity_map=identity_map, guards=guards),
        settings,
        run_date=RUN_DATE,
        run_id="r1",
    )
    table = out.customer_value
    assert table.columns == list(VALUE_COLUMNS)
    got = table.filter(F.col("one_id").isin("p_mh", "p_hotline", "p_prospect")).select(
        "one_id",
        "lifecycle_stage",
        "frequency",
        "recency_days",
        "orders",
        "total_spend",
        "first_purchase",
        "last_purchase",
        "churn_risk",
        "time_unit",
        "horizon_days",
        "run_date",
    )
    schema = (
        "one_id string, lifecycle_stage string, frequency int, recency_days int, orders long, "
        "total_spend double, first_purchase date, last_purchase date, churn_risk double, "
        "time_unit string, horizon_days int, run_date date"
    )
    march = dt.date(2026, 3, 11), dt.date(2026, 3, 21)
    expected = spark.createDataFrame(
        [
            ("p_mh", "new", 1, 10, 3, 40.0, *march, None, "week", 365, RUN_DATE),
            ("p_hotline", "prospect", None, None, 0, 0.0, None, None, None, "week", 365, RUN_DATE),
            ("p_prospect", "prospect", None, None, 0, 0.0, None, None, None, "week", 365, RUN_DATE),
        ],
        schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    stages = {r[0]: r[1] for r in table.groupBy("lifecycle_stage").count().collect()}
    assert out.stages == stages and out.people == len(members) + 2
    assert sorted(tuple(r) for r in out.params.collect()) == sorted(
        (m, p, v, "r1", RUN_DATE, "week") for m, p, v in out.models.rows()
    )
    assert (out.holdout, out.churn) == (None, None)
    assert out.metrics()["stage_prospect"] == stages["prospect"]
    assert out.metrics()["bg_nbd_r"] == out.models.bg_nbd.params["r"]


# ------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "override, message",
    [
        (
            "lifecycle.stages.churn_days=60",
            r"new_days <= active_days < churn_days \(got 30, 90, 60\)",
        ),
        ("lifecycle.time_unit=month", r"lifecycle.time_unit"),
        (
            "lifecycle.rfm_segments=[{name: a, r: [0, 5], f: [1, 5]}]",
            r"segment 'a': r must be \[low, high\] within 1..5",
        ),
        (
            "lifecycle.rfm_segments=[{name: a, r: [1, 5], f: [1, 5]}, {name: a, r: [1, 1], f: [1, 1]}]",
            r"\['a'\] appear more than once",
        ),
        ("lifecycle.churn.horizn_days=30", r"horizn_days"),
    ],
)
def test_bad_lifecycle_config_names_the_key(override, message):
    from precis.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(PROJECT / "conf" / "base.yaml", [override])
