"""Lifecycle results against the generator's ground truth (used by the evaluate job).

The generator draws purchases from BG/NBD in days: rates ~ Gamma(r, alpha), dropout
~ Beta(a, b), and refunds a share of the orders, which thins the observed paid rate
to (1 - refund_rate) * lambda, i.e. alpha / (1 - refund_rate) for paid orders.

Two fits are scored. ``fitted_*`` are the lifecycle job's estimates: orders grouped by
the identity graph's ``one_id``, so any person the graph split shows up as extra,
lighter buyers. ``oracle_*`` refit the same data grouped by the true person, which
isolates the estimator from identity errors.
"""

from __future__ import annotations

import datetime as dt

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ONE_ID, ORDER_ID, RECORD_ID
from precis.lifecycle import summary, value


def true_params(
    r: float, alpha_days: float, a: float, b: float, refund_rate: float
) -> dict[str, float]:
    """The paid-order process the generator's settings imply, alpha in days."""
    return {"r": r, "alpha_days": alpha_days / (1.0 - refund_rate), "a": a, "b": b}


def in_days(params: dict[str, float], time_unit: str) -> dict[str, float]:
    out = {k: v for k, v in params.items() if k != "alpha"}
    out["alpha_days"] = params["alpha"] * summary.UNIT_DAYS[time_unit]
    return out


def oracle_orders(silver_orders: DataFrame, truth: DataFrame) -> DataFrame:
    """Silver orders keyed by the true person instead of a one_id (as ``resolve_orders``)."""
    person = truth.filter(F.col("dataset") == "orders").select(
        F.col(RECORD_ID).alias(ORDER_ID), F.col("person_id").cast("string").alias(ONE_ID)
    )
    return silver_orders.join(person, on=ORDER_ID, how="inner").select(
        ONE_ID,
        ORDER_ID,
        F.to_date("order_time").alias("order_date"),
        F.col("amount").cast("double").alias("amount"),
        (F.lower(F.coalesce(F.col("status"), F.lit("paid"))) == "refunded").alias("refunded"),
    )


def oracle_fit(
    silver_orders: DataFrame, truth: DataFrame, as_of: dt.date, time_unit: str
) -> dict[str, float]:
    orders = oracle_orders(silver_orders, truth)
    person = summary.person_summary(summary.transactions(orders, as_of), as_of, time_unit)
    models, _ = value.fit(person, time_unit)
    return in_days(models.bg_nbd.params, time_unit)


def p_alive_auc(
    customer_value: DataFrame, record_identity: DataFrame, truth: DataFrame, people: DataFrame
) -> float:
    """AUC of ``p_alive`` for the truth's ``alive_at_end``, each buyer one_id standing for
    the true person behind most of its orders."""
    keys = ["dataset", "source", RECORD_ID]
    orders = (
        record_identity.filter(F.col("dataset") == "orders")
        .select(*keys, ONE_ID)
        .join(
            truth.filter(F.col("dataset") == "orders").select(*keys, "person_id"),
            on=keys,
            how="inner",
        )
    )
    counted = orders.groupBy(ONE_ID, "person_id").agg(F.count(F.lit(1)).alias("n"))
    top = Window.partitionBy(ONE_ID).orderBy(F.desc("n"), "person_id")
    owner = (
        counted.withColumn("_rank", F.row_number().over(top))
        .filter("_rank = 1")
        .select(ONE_ID, "person_id")
    )
    scored = (
        customer_value.filter(F.col("p_alive").isNotNull())
        .select(ONE_ID, "p_alive")
        .join(owner, on=ONE_ID, how="inner")
        .join(
            people.select("person_id", F.col("alive_at_end").cast("double").alias("label")),
            on="person_id",
            how="inner",
        )
    )
    evaluator = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol="p_alive")
    return float(evaluator.evaluate(scored))
