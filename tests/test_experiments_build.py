"""experiments.build on tiny frames: people from identifiers, closed experiments only."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from chispa import assert_df_equality
from scipy import stats as st

from precis.errors import ConfigError
from precis.experiments import ExperimentInputs, build, explain
from precis.experiments.settings import ExperimentsConfig

T0 = dt.datetime(2026, 3, 1, 9, 0)
RUN_DATE = dt.date(2026, 3, 31)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


@pytest.fixture
def inputs(spark):
    assignments = spark.createDataFrame(
        [
            # e1: two people per arm, one of them known only by a cookie nobody else has.
            ("e1", "control", "email", "k1", T0),
            ("e1", "control", "cookie", "c-new", T0),
            ("e1", "b", "email", "k3", T0),
            ("e1", "b", "phone", "k4", T0),
            ("e1", "b", "cookie", "k1c", at(1)),  # p1's cookie, later, other arm: crossover
            ("e1", "b", "email", None, T0),  # an invalid identifier assigns nobody
            # e2 closes after the run date: not judged.
            ("e2", "control", "email", "k1", at(20)),
            ("e2", "b", "email", "k3", at(20)),
        ],
        "experiment_id string, arm string, id_type string, id_key string, assigned_at timestamp",
    )
    identity_map = spark.createDataFrame(
        [
            ("email", "k1", "p1"),
            ("cookie", "k1c", "p1"),
            ("email", "k3", "p3"),
            ("phone", "k4", "p4"),
        ],
        "id_type string, id_key string, one_id string",
    )
    orders = spark.createDataFrame(
        [
            ("email", "k1", at(2), 30.0, "paid"),
            ("email", "k3", at(3), 10.0, None),
            ("phone", "k4", at(5), 20.0, "paid"),
            ("phone", "k4", at(-2), 8.0, "paid"),
        ],
        "id_type string, id_key string, order_time timestamp, amount double, status string",
    )
    return ExperimentInputs(assignments, orders, identity_map)


def test_each_closed_experiment_gets_a_row_per_arm_and_metric(inputs):
    settings = ExperimentsConfig(cuped=False)
    out = build(inputs, settings, RUN_DATE, "run-1")
    rows = {(r.arm, r.metric): r for r in out.rows}
    assert {r.experiment_id for r in out.rows} == {"e1"}
    conv, rev = rows[("b", "conversion_rate")], rows[("b", "revenue_per_person")]
    # control: p1 (converted, 30) and the unknown cookie (nothing); b: p3 and p4.
    assert (conv.n, conv.n_control) == (2, 2)
    assert (conv.value, conv.control_value, conv.lift_abs) == pytest.approx((1.0, 0.5, 0.5))
    assert (rev.value, rev.control_value) == pytest.approx((15.0, 15.0))
    assert not conv.adjusted
    assert out.counts == {
        "experiments": 2,
        "assigned": 6,  # p1 once in e1 (two identifiers), the cookie, p3, p4; e2: 2
        "crossovers": 1,
        "unresolved": 1,
        "judged_experiments": 1,
        "srm_failed": 0,
        "without_control": 0,
    }
    table = out.table.collect()
    assert len(table) == 2
    assert {(r["run_date"], r["run_id"]) for r in table} == {(RUN_DATE, "run-1")}
    assert {r["metric"] for r in table} == {"conversion_rate", "revenue_per_person"}


def test_the_intended_weights_come_from_the_experiments_table(spark, inputs):
    # 2 and 2 people: a perfect split for equal weights, not for 1 to 3.
    equal = build(inputs, ExperimentsConfig(), RUN_DATE, "run-1")
    assert [r.srm_p_value for r in equal.rows] == pytest.approx([1.0, 1.0])
    arms = spark.createDataFrame(
        [("e1", "control", 1.0, None), ("e1", "b", 3.0, None)],
        "experiment_id string, arm string, weight double, channel string",
    )
    weighted = ExperimentInputs(inputs.assignments, inputs.orders, inputs.identity_map, arms=arms)
    out = build(weighted, ExperimentsConfig(), RUN_DATE, "run-1")
    oracle = st.chisquare([2, 2], [3.0, 1.0]).pvalue  # arms sorted: b, control
    assert [r.srm_p_value for r in out.rows] == pytest.approx([oracle, oracle])


def test_an_isolated_identifier_assigns_nobody_and_its_orders_count_for_nobody(spark, inputs):
    # p4's phone is a shared hotline: p4 leaves arm b, and its orders go with it.
    guards = spark.createDataFrame(
        [(RUN_DATE, "over_linked", "phone", "k4", None)],
        "run_date date, guard string, id_type string, id_key string, other_key string",
    )
    guarded = ExperimentInputs(
        inputs.assignments, inputs.orders, inputs.identity_map, guards=guards
    )
    out = build(guarded, ExperimentsConfig(cuped=False), RUN_DATE, "run-1")
    conv = next(r for r in out.rows if r.metric == "conversion_rate")
    assert (conv.n, conv.n_control, conv.value) == (1, 2, pytest.approx(1.0))  # p3 alone


def test_explain_traces_one_person_through_the_same_steps(spark, inputs):
    orders = spark.createDataFrame(
        [
            ("o1", "email", "k1", at(2), 30.0, "paid"),
            ("o2", "cookie", "k1c", at(3), 5.0, "refunded"),
            ("o3", "email", "k3", at(3), 10.0, None),  # someone else's
        ],
        "order_id string, id_type string, id_key string, order_time timestamp, "
        "amount double, status string",
    )
    found = explain.trace(
        dataclasses.replace(inputs, orders=orders), ExperimentsConfig(), RUN_DATE, "p1"
    )
    assignments = spark.createDataFrame(
        [
            ("e1", "control", "email", "k1", T0, False, True, True),
            ("e1", "b", "cookie", "k1c", at(1), False, False, True),  # the crossover
            ("e2", "control", "email", "k1", at(20), False, True, False),  # still open
        ],
        "experiment_id string, arm string, id_type string, id_key string, "
        "assigned_at timestamp, isolated boolean, counted boolean, judged boolean",
    )
    assert_df_equality(found.assignments, assignments, ignore_nullable=True)
    near = spark.createDataFrame(
        [
            ("e1", "o1", at(2), 30.0, "paid", "window", True),
            ("e1", "o2", at(3), 5.0, "refunded", "window", False),
            ("e2", "o1", at(2), 30.0, "paid", "pre", True),  # 18 days before e2's
            ("e2", "o2", at(3), 5.0, "refunded", "pre", False),
        ],
        "experiment_id string, order_id string, order_time timestamp, amount double, "
        "status string, period string, counted boolean",
    )
    assert_df_equality(found.orders, near, ignore_nullable=True, ignore_row_order=True)
    outcomes = spark.createDataFrame(
        [("e1", "control", 1.0, 30.0, 0.0, 0.0)],
        "experiment_id string, arm string, converted double, revenue double, "
        "pre_orders double, pre_revenue double",
    )
    assert_df_equality(found.outcomes, outcomes, ignore_nullable=True)
    assert explain.lines(found)[0] == "experiments of one_id p1:"


def test_explain_takes_a_one_id_never_an_identifier():
    assert ExperimentsConfig(explain="p000dd7970ef87581a977").explain == "p000dd7970ef87581a977"
    with pytest.raises(ConfigError, match="experiments.explain takes a one_id") as caught:
        ExperimentsConfig(explain="email:alice@example.com")
    assert "alice" not in str(caught.value)
