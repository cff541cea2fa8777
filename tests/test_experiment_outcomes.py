"""Each assigned person's outcome and the per-arm sums, on tiny frames."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from precis.experiments import outcomes as O
from precis.experiments.stats import Moments

T0 = dt.datetime(2026, 3, 1, 12, 0)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


@pytest.fixture
def assigned(spark):
    return spark.createDataFrame(
        [
            ("e1", "control", "p1", T0),
            ("e1", "control", "p2", T0),
            ("e1", "b", "p3", T0),
            ("e1", "b", "p4", T0),
        ],
        "experiment_id string, arm string, one_id string, assigned_at timestamp",
    )


def test_outcomes_count_only_paid_orders_inside_the_window_and_the_pre_period(spark, assigned):
    orders = spark.createDataFrame(
        [
            ("p1", at(1), 10.0, "paid"),  # inside
            ("p1", at(14), 5.0, None),  # the window's last instant counts; missing = paid
            ("p1", at(14.01), 99.0, "paid"),  # after the window
            ("p1", at(-3), 7.0, "paid"),  # pre-period
            ("p1", at(-29), 50.0, "paid"),  # before the pre-period
            ("p2", at(0), 8.0, "paid"),  # at the assignment itself: pre? no, neither
            ("p3", at(2), 20.0, "refunded"),  # refunded: nothing
            ("p3", at(-1), 4.0, "paid"),
            # p4: no orders at all
        ],
        "one_id string, order_time timestamp, amount double, status string",
    )
    got = O.person_outcomes(assigned, orders, window_days=14, pre_days=28)
    expected = spark.createDataFrame(
        [
            ("e1", "control", "p1", T0, 1.0, 15.0, 1.0, 7.0),
            ("e1", "control", "p2", T0, 0.0, 0.0, 0.0, 0.0),
            ("e1", "b", "p3", T0, 0.0, 0.0, 1.0, 4.0),
            ("e1", "b", "p4", T0, 0.0, 0.0, 0.0, 0.0),
        ],
        "experiment_id string, arm string, one_id string, assigned_at timestamp, "
        "converted double, revenue double, pre_orders double, pre_revenue double",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_person_counts_once_at_the_first_assignment_and_crossovers_are_marked(spark):
    assigned = spark.createDataFrame(
        [
            ("e1", "b", "p1", at(2)),
            ("e1", "control", "p1", at(1)),  # the same person, earlier, another arm
            ("e1", "b", "p2", at(0)),
            ("e1", "b", "p2", at(3)),  # two identifiers of one person, one arm
            ("e2", "b", "p1", at(0)),  # another experiment: its own row
        ],
        "experiment_id string, arm string, one_id string, assigned_at timestamp",
    )
    got = O.first_assignments(assigned)
    expected = spark.createDataFrame(
        [
            ("e1", "control", "p1", at(1), 2),
            ("e1", "b", "p2", at(0), 1),
            ("e2", "b", "p1", at(0), 1),
        ],
        "experiment_id string, arm string, one_id string, assigned_at timestamp, arms int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_only_experiments_whose_last_window_closed_are_judged(spark):
    assigned = spark.createDataFrame(
        [
            ("done", "control", "p1", dt.datetime(2026, 3, 1, 0, 0)),
            ("done", "b", "p2", dt.datetime(2026, 3, 17, 0, 0)),  # + 14 days = end of 30th
            ("open", "control", "p3", dt.datetime(2026, 3, 1, 0, 0)),
            ("open", "b", "p4", dt.datetime(2026, 3, 17, 0, 1)),  # closes after the 30th
        ],
        "experiment_id string, arm string, one_id string, assigned_at timestamp",
    )
    got = O.closed(assigned, window_days=14, as_of=dt.date(2026, 3, 30))
    assert sorted(r[0] for r in got.select("experiment_id").distinct().collect()) == ["done"]


def test_arm_sums_are_the_moments_of_each_metric_and_its_covariate(spark):
    rows = [
        ("e1", "control", "p1", T0, 1.0, 15.0, 2.0, 7.0),
        ("e1", "control", "p2", T0, 0.0, 0.0, 1.0, 2.0),
        ("e1", "b", "p3", T0, 1.0, 4.0, 0.0, 4.0),
    ]
    people = spark.createDataFrame(
        rows,
        "experiment_id string, arm string, one_id string, assigned_at timestamp, "
        "converted double, revenue double, pre_orders double, pre_revenue double",
    )
    got = {
        (r["arm"], r["metric"]): Moments(r["n"], r["y"], r["yy"], r["x"], r["xx"], r["xy"])
        for r in O.arm_sums(people).collect()
    }
    # Conversion against pre-period orders, revenue against pre-period revenue.
    assert got[("control", "conversion_rate")] == Moments(2, 1.0, 1.0, 3.0, 5.0, 2.0)
    assert got[("b", "conversion_rate")] == Moments(1, 1.0, 1.0, 0.0, 0.0, 0.0)
    assert got[("control", "revenue_per_person")] == Moments(2, 15.0, 225.0, 9.0, 53.0, 105.0)
    assert got[("b", "revenue_per_person")] == Moments(1, 4.0, 16.0, 4.0, 16.0, 16.0)
    assert len(got) == 4
