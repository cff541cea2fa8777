"""Churn risk: behavioural features at a cut-off date, time-based labels, Spark ML GBTs.

A buyer *churns* after a cut-off when they make no paid order in the ``horizon_days``
after it. The model is trained on features at ``run_date - 2 * horizon`` (labels from
the horizon after it), evaluated on features at ``run_date - horizon`` (labels up to the
run date: a later period the model never saw), and then scores everyone as of the run
date. Features only ever look back from their cut-off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ONE_ID

FEATURES = (
    "recency_days",
    "tenure_days",
    "orders_total",
    "spend_total",
    "avg_order_value",
    "orders_30d",
    "orders_90d",
    "orders_prev_90d",
    "order_trend",
    "spend_90d",
    "refunds_total",
    "refund_share",
    "visit_days_30d",
    "visit_days_90d",
    "visit_days_prev_90d",
    "visit_trend",
    "carts_90d",
)


def _age(day: str, as_of: dt.date) -> Column:
    return F.datediff(F.lit(as_of), F.col(day))


def _count_if(cond: Column) -> Column:
    return F.sum(F.when(cond, 1).otherwise(0))


def features(orders: DataFrame, events: DataFrame | None, as_of: dt.date) -> DataFrame:
    """One row per person with a paid order on or before ``as_of``: ``one_id`` + FEATURES.

    ``orders``: ``one_id``, ``order_date``, ``amount``, ``refunded``;
    ``events``: ``one_id``, ``event_date``, ``event_type`` (None: no browsing data).
    """
    past = orders.filter(F.col("order_date") <= F.lit(as_of)).withColumn(
        "_age", _age("order_date", as_of)
    )
    paid = ~F.col("refunded")
    buying = (
        past.groupBy(ONE_ID)
        .agg(
            F.max(F.when(paid, F.col("order_date"))).alias("_last"),
            F.min(F.when(paid, F.col("order_date"))).alias("_first"),
            _count_if(paid).alias("orders_total"),
            F.sum(F.when(paid, F.col("amount")).otherwise(0.0)).alias("spend_total"),
            _count_if(paid & (F.col("_age") < 30)).alias("orders_30d"),
            _count_if(paid & (F.col("_age") < 90)).alias("orders_90d"),
            _count_if(paid & (F.col("_age") >= 90) & (F.col("_age") < 180)).alias(
                "orders_prev_90d"
            ),
            F.sum(F.when(paid & (F.col("_age") < 90), F.col("amount")).otherwise(0.0)).alias(
                "spend_90d"
            ),
            _count_if(F.col("refunded")).alias("refunds_total"),
        )
        .filter(F.col("orders_total") > 0)
    )
    frame = buying.select(
        ONE_ID,
        _age("_last", as_of).alias("recency_days"),
        _age("_first", as_of).alias("tenure_days"),
        "orders_total",
        "spend_total",
        (F.col("spend_total") / F.col("orders_total")).alias("avg_order_value"),
        "orders_30d",
        "orders_90d",
        "orders_prev_90d",
        (F.col("orders_90d") - F.col("orders_prev_90d")).alias("order_trend"),
        "spend_90d",
        "refunds_total",
        (F.col("refunds_total") / (F.col("refunds_total") + F.col("orders_total"))).alias(
            "refund_share"
        ),
    )
    visit_columns = ("visit_days_30d", "visit_days_90d", "visit_days_prev_90d", "carts_90d")
    if events is None:
        visits = None
    else:
        recent = events.filter(
            (F.col("event_date") <= F.lit(as_of))
            & (F.col("event_date") > F.lit(as_of - dt.timedelta(days=180)))
        ).withColumn("_age", _age("event_date", as_of))
        visits = recent.groupBy(ONE_ID).agg(
            F.count_distinct(F.when(F.col("_age") < 30, F.col("event_date"))).alias(
                "visit_days_30d"
            ),
            F.count_distinct(F.when(F.col("_age") < 90, F.col("event_date"))).alias(
                "visit_days_90d"
            ),
            F.count_distinct(F.when(F.col("_age") >= 90, F.col("event_date"))).alias(
                "visit_days_prev_90d"
            ),
            _count_if((F.col("event_type") == "add_to_cart") & (F.col("_age") < 90)).alias(
                "carts_90d"
            ),
        )
    if visits is None:
        joined = frame.select("*", *[F.lit(0).alias(c) for c in visit_columns])
    else:
        joined = frame.join(visits, on=ONE_ID, how="left").fillna(0, list(visit_columns))
    out = joined.withColumn("visit_trend", F.col("visit_days_90d") - F.col("visit_days_prev_90d"))
    return out.select(ONE_ID, *[F.col(c).cast("double").alias(c) for c in FEATURES])


def future_buyers(orders: DataFrame, as_of: dt.date, horizon_days: int) -> DataFrame:
    """``one_id`` of everyone with a paid order in (as_of, as_of + horizon], ``_bought`` = true."""
    end = as_of + dt.timedelta(days=horizon_days)
    future = (
        orders.filter(
            ~F.col("refunded")
            & (F.col("order_date") > F.lit(as_of))
            & (F.col("order_date") <= F.lit(end))
        )
        .select(ONE_ID)
        .distinct()
        .withColumn("_bought", F.lit(True))
    )
    return future


def labelled(
    orders: DataFrame, events: DataFrame | None, as_of: dt.date, horizon_days: int
) -> DataFrame:
    """``features`` at ``as_of`` + ``label``: 1.0 when the buyer makes no paid order in the horizon."""
    bought = future_buyers(orders, as_of, horizon_days)
    return (
        features(orders, events, as_of)
        .join(bought, on=ONE_ID, how="left")
        .withColumn("label", F.when(F.col("_bought"), 0.0).otherwise(1.0))
        .drop("_bought")
    )


@dataclass(frozen=True)
class ChurnSettings:
    horizon_days: int = 90
    max_iter: int = 30
    max_depth: int = 4
    step_size: float = 0.1
    seed: int = 7


def train(training: DataFrame, settings: ChurnSettings) -> PipelineModel:
    assembler = VectorAssembler(inputCols=list(FEATURES), outputCol="features")
    gbt = GBTClassifier(
        labelCol="label",
        featuresCol="features",
        maxIter=settings.max_iter,
        maxDepth=settings.max_depth,
        stepSize=settings.step_size,
        seed=settings.seed,
    )
    return Pipeline(stages=[assembler, gbt]).fit(training)


def churn_probability(model: PipelineModel, frame: DataFrame) -> DataFrame:
    """``frame`` + ``churn_risk`` (the model's probability of class 1)."""
    scored = model.transform(frame)
    return scored.withColumn("churn_risk", vector_to_array(F.col("probability"))[1]).drop(
        "features", "rawPrediction", "probability", "prediction"
    )


def binary_metrics(scored: DataFrame, score: str, threshold: float = 0.5) -> dict[str, float]:
    """AUC (ROC and PR) of ``score`` against ``label``, and precision/recall at ``threshold``."""
    evaluator = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol=score)
    counts = scored.agg(
        _count_if((F.col(score) >= threshold) & (F.col("label") == 1.0)).alias("tp"),
        _count_if((F.col(score) >= threshold) & (F.col("label") == 0.0)).alias("fp"),
        _count_if((F.col(score) < threshold) & (F.col("label") == 1.0)).alias("fn"),
        F.count(F.lit(1)).alias("n"),
        F.avg("label").alias("base_rate"),
    ).collect()[0]
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "auc": evaluator.evaluate(scored, {evaluator.metricName: "areaUnderROC"}),
        "auc_pr": evaluator.evaluate(scored, {evaluator.metricName: "areaUnderPR"}),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "people": float(counts["n"]),
        "base_rate": float(counts["base_rate"] or 0.0),
    }
