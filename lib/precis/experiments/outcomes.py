"""Each assigned person's outcome, and the per-arm sums the statistics need.

The estimands (docs/experiments.md): for a person assigned at ``assigned_at``,

- *converted*: 1 when they have at least one paid order in
  (``assigned_at``, ``assigned_at`` + ``window_days``], else 0;
- *revenue*: the amount of those orders (0 without any);
- *pre-period orders* and *pre-period revenue*: the number and amount of their paid
  orders in [``assigned_at`` - ``pre_days``, ``assigned_at``), the covariates of CUPED
  for conversion and revenue (a count predicts a 0/1 outcome better than a 0/1 does).

People are ``one_id``s: two identifiers of one person assigned to one experiment count
once, at their first assignment, and a person the identity graph finds in two arms is
a *crossover* (reported; kept in their first arm, as intention to treat).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ONE_ID

EXPERIMENT = "experiment_id"
ARM = "arm"
ASSIGNED_AT = "assigned_at"
#: The two metrics of ``gold/experiment_results``, each with its per-person column.
METRICS = {"conversion_rate": "converted", "revenue_per_person": "revenue"}
#: Each metric's covariate in CUPED, from the pre-period.
PRE_ORDERS, PRE_REVENUE = "pre_orders", "pre_revenue"
COVARIATES = {"conversion_rate": PRE_ORDERS, "revenue_per_person": PRE_REVENUE}


def first_assignments(assigned: DataFrame) -> DataFrame:
    """One row per (experiment, person): the earliest assignment (ties: arm name), with
    ``arms`` = how many arms the person was found in (more than 1: a crossover)."""
    person = Window.partitionBy(EXPERIMENT, ONE_ID)
    first = person.orderBy(ASSIGNED_AT, ARM)
    return (
        assigned.withColumn("arms", F.size(F.collect_set(ARM).over(person)))
        .withColumn("_first", F.row_number().over(first))
        .filter("_first = 1")
        .select(EXPERIMENT, ARM, ONE_ID, ASSIGNED_AT, "arms")
    )


def closed_experiments(assigned: DataFrame, window_days: int, as_of: dt.date) -> DataFrame:
    """``experiment_id`` of the experiments whose every window has closed by the end of
    ``as_of`` (the last assignment plus ``window_days``): one row each."""
    end = F.lit(as_of + dt.timedelta(days=1)).cast("timestamp")
    # One row per experiment (not a window over all of an experiment's people, which
    # would put each experiment in one task).
    last = assigned.groupBy(EXPERIMENT).agg(F.max(ASSIGNED_AT).alias("_last"))
    done = last.filter(F.col("_last") + F.make_dt_interval(F.lit(window_days)) <= end)
    return done.select(EXPERIMENT)


def closed(assigned: DataFrame, window_days: int, as_of: dt.date) -> DataFrame:
    """The assignments of experiments whose every window has closed by the end of
    ``as_of``: later ones are not judged."""
    done = closed_experiments(assigned, window_days, as_of)
    return assigned.join(F.broadcast(done), EXPERIMENT, how="left_semi")


def in_window(t: Column, window_days: int) -> Column:
    """``t`` in the outcome window of the row's assignment: (assigned_at, + window_days]."""
    at = F.col(ASSIGNED_AT)
    return (t > at) & (t <= at + F.make_dt_interval(F.lit(window_days)))


def in_pre_period(t: Column, pre_days: int) -> Column:
    """``t`` in the pre-period of the row's assignment: [assigned_at - pre_days, assigned_at)."""
    at = F.col(ASSIGNED_AT)
    return (t >= at - F.make_dt_interval(F.lit(pre_days))) & (t < at)


def person_outcomes(
    assigned: DataFrame, orders: DataFrame, window_days: int, pre_days: int
) -> DataFrame:
    """``experiment_id``, ``arm``, ``one_id``, ``assigned_at``, ``converted`` (0/1),
    ``revenue``, ``pre_orders``, ``pre_revenue``: one row per first assignment.

    ``orders``: ``one_id``, ``order_time``, ``amount``, ``status`` (silver orders with
    their person); refunded orders do not count (a missing status means paid).
    """
    paid = orders.filter(F.lower(F.coalesce(F.col("status"), F.lit("paid"))) != "refunded").select(
        F.col(ONE_ID).alias("_person"),
        "order_time",
        F.col("amount").cast("double").alias("amount"),
    )
    t = F.col("order_time")
    inside, before = in_window(t, window_days), in_pre_period(t, pre_days)
    # Left join: a person without orders near the assignment converts 0 and spends 0.
    # Only those orders are joined, not the person's whole history.
    joined = assigned.join(
        paid, (F.col(ONE_ID) == F.col("_person")) & (inside | before), how="left"
    )
    amount = F.coalesce(F.col("amount"), F.lit(0.0))
    return joined.groupBy(EXPERIMENT, ARM, ONE_ID, ASSIGNED_AT).agg(
        F.max(F.when(inside, 1.0).otherwise(0.0)).alias("converted"),
        F.sum(F.when(inside, amount).otherwise(0.0)).alias("revenue"),
        F.sum(F.when(before, 1.0).otherwise(0.0)).alias(PRE_ORDERS),
        F.sum(F.when(before, amount).otherwise(0.0)).alias(PRE_REVENUE),
    )


def arm_sums(outcomes: DataFrame) -> DataFrame:
    """Per (experiment, arm, metric): ``n`` and the sums of y, y^2, x, x^2 and x y, where
    y is the metric's per-person value and x its covariate (``COVARIATES``)."""
    per_metric = [
        F.struct(
            F.lit(metric).alias("metric"),
            F.col(column).alias("y"),
            F.col(COVARIATES[metric]).alias("x"),
        )
        for metric, column in METRICS.items()
    ]
    long = outcomes.select(EXPERIMENT, ARM, F.explode(F.array(*per_metric)).alias("m"))
    x, y = F.col("m.x"), F.col("m.y")
    return long.groupBy(EXPERIMENT, ARM, F.col("m.metric").alias("metric")).agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(y).alias("y"),
        F.sum(y * y).alias("yy"),
        F.sum(x).alias("x"),
        F.sum(x * x).alias("xx"),
        F.sum(x * y).alias("xy"),
    )
