"""Purchases per person as of a date: the BG/NBD summary, RFM features, aggregation.

Definitions (Fader, Hardie & Lee 2005, and the ``lifetimes`` package):

- a *transaction* is one calendar day with at least one paid order of the person
  (same-day orders are summed), so the CDNOW estimates come out exactly;
- ``x`` = transactions after the first, ``t_x`` = last minus first transaction,
  ``T`` = as-of date minus first transaction, both in the time unit (day or week);
- ``monetary_value`` = mean value of the repeat transactions (the first excluded),
  null without repeat transactions.

Everything is keyed by ``one_id`` and everything after the as-of date is ignored.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ONE_ID, ORDER_ID
from precis.identity.resolve import resolve

UNIT_DAYS = {"day": 1, "week": 7}


def resolve_orders(
    orders: DataFrame, identity_map: DataFrame, isolated: DataFrame | None = None
) -> DataFrame:
    """Silver orders -> ``one_id``, ``order_id``, ``order_date``, ``amount``, ``refunded``.

    ``isolated`` (``id_type``, ``id_key``) lists identifiers a guard isolated (a store
    hotline typed at the till): their orders belong to nobody and are dropped.
    """
    return resolve(orders, identity_map, isolated).select(
        ONE_ID,
        ORDER_ID,
        F.to_date("order_time").alias("order_date"),
        F.col("amount").cast("double").alias("amount"),
        # The contract: a missing status means paid.
        (F.lower(F.coalesce(F.col("status"), F.lit("paid"))) == "refunded").alias("refunded"),
    )


def transactions(orders: DataFrame, as_of: dt.date, since: dt.date | None = None) -> DataFrame:
    """Paid orders on or before ``as_of`` (and after ``since``) as one row per person and day."""
    paid = orders.filter(~F.col("refunded") & (F.col("order_date") <= F.lit(as_of)))
    if since is not None:
        paid = paid.filter(F.col("order_date") > F.lit(since))
    return paid.groupBy(ONE_ID, "order_date").agg(
        F.sum("amount").alias("amount"), F.count(F.lit(1)).alias("orders")
    )


def person_summary(daily: DataFrame, as_of: dt.date, time_unit: str = "week") -> DataFrame:
    """Per buyer: the BG/NBD summary in the time unit plus RFM features in days.

    ``x``, ``t_x_days``, ``T_days`` (integers: exact aggregation keys), ``t_x``, ``T``,
    ``monetary_value``, ``orders``, ``total_spend``, ``first_purchase``,
    ``last_purchase``, ``recency_days`` (as-of date minus last purchase),
    ``previous_purchase`` (the transaction day before the last one).
    """
    unit = UNIT_DAYS[time_unit]
    ordered = Window.partitionBy(ONE_ID).orderBy("order_date")
    with_previous = daily.withColumn("_previous", F.lag("order_date").over(ordered))
    people = with_previous.groupBy(ONE_ID).agg(
        F.min("order_date").alias("first_purchase"),
        F.max("order_date").alias("last_purchase"),
        F.count(F.lit(1)).alias("_days"),
        F.sum("orders").alias("orders"),
        F.sum("amount").alias("total_spend"),
        F.min_by("amount", "order_date").alias("_first_amount"),
        F.max_by("_previous", "order_date").alias("previous_purchase"),
    )
    x = F.col("_days") - 1
    return people.select(
        ONE_ID,
        x.cast("int").alias("x"),
        F.datediff("last_purchase", "first_purchase").alias("t_x_days"),
        F.datediff(F.lit(as_of), "first_purchase").alias("T_days"),
        (F.datediff("last_purchase", "first_purchase") / F.lit(float(unit))).alias("t_x"),
        (F.datediff(F.lit(as_of), "first_purchase") / F.lit(float(unit))).alias("T"),
        F.when(x > 0, (F.col("total_spend") - F.col("_first_amount")) / x).alias("monetary_value"),
        F.col("orders").cast("long").alias("orders"),
        "total_spend",
        "first_purchase",
        "last_purchase",
        "previous_purchase",
        F.datediff(F.lit(as_of), "last_purchase").alias("recency_days"),
    )


def bg_nbd_counts(summary: DataFrame) -> DataFrame:
    """Distinct (x, t_x_days, T_days) with the number of people: all the BG/NBD fit needs."""
    return summary.groupBy("x", "t_x_days", "T_days").agg(F.count(F.lit(1)).alias("people"))


#: Mean repeat spend is binned to this relative precision for the Gamma-Gamma fit, so
#: the fit sees a bounded number of rows. 1e-4 moves no estimate at the printed digits.
SPEND_RELATIVE_PRECISION = 1e-4


def gamma_gamma_counts(summary: DataFrame) -> DataFrame:
    """Repeat buyers binned by (x, mean repeat spend): ``x``, ``m`` (bin mean), ``people``."""
    repeat = summary.filter((F.col("x") > 0) & (F.col("monetary_value") > 0))
    spend_bin = F.round(F.log("monetary_value") / F.lit(SPEND_RELATIVE_PRECISION)).cast("long")
    return (
        repeat.groupBy("x", spend_bin.alias("_bin"))
        .agg(F.avg("monetary_value").alias("m"), F.count(F.lit(1)).alias("people"))
        .drop("_bin")
    )


def repeat_transactions_between(daily: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """Per person: transaction days in (start, end]: ``one_id``, ``actual``."""
    window = daily.filter(
        (F.col("order_date") > F.lit(start)) & (F.col("order_date") <= F.lit(end))
    )
    return window.groupBy(ONE_ID).agg(F.count(F.lit(1)).alias("actual"))
