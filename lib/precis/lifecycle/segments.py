"""Lifecycle stages and RFM segments: rules over the purchase summary.

Stages, first matching rule wins (days counted back from the as-of date):

==============  ==========================================================
prospect        a person (``one_id``) with no paid order up to the date
new             first purchase within ``new_days``
reactivated     last purchase within ``active_days``, after a gap of more than
                ``churn_days`` since the purchase before it (a win-back)
active          last purchase within ``active_days``
at_risk         last purchase within ``churn_days``
churned         last purchase longer ago than ``churn_days``
==============  ==========================================================

RFM: recency (days since the last purchase, fewer is better), frequency (paid orders)
and monetary value (total spend) are scored 1-5 against the buyers' quintiles; a
named segment is the first rule whose recency and frequency score ranges hold.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

STAGES = ("prospect", "new", "reactivated", "active", "at_risk", "churned")


def lifecycle_stage(new_days: int, active_days: int, churn_days: int) -> Column:
    """Stage of a row of the person summary (null ``last_purchase``: never bought)."""
    recency = F.col("recency_days")
    first_age = recency + F.datediff("last_purchase", "first_purchase")
    gap = F.datediff("last_purchase", "previous_purchase")
    return (
        F.when(F.col("last_purchase").isNull(), "prospect")
        .when(first_age <= new_days, "new")
        .when((recency <= active_days) & (gap > churn_days), "reactivated")
        .when(recency <= active_days, "active")
        .when(recency <= churn_days, "at_risk")
        .otherwise("churned")
    )


def quintile_cuts(
    df: DataFrame, columns: Sequence[str], bins: int = 5, error: float = 0.001
) -> dict[str, list[float]]:
    """Inner cut points (bins - 1 quantiles) of each column, from one pass of approxQuantile."""
    probabilities = [k / bins for k in range(1, bins)]
    cuts = df.approxQuantile(list(columns), probabilities, error)
    return dict(zip(columns, cuts))


def score(column: str, cuts: Sequence[float], higher_is_better: bool = True) -> Column:
    """1..len(cuts)+1: one more than the number of cut points the value exceeds.

    Ties stay together (a value equal to a cut point scores below it), so a frequency
    where most buyers have one order gives those buyers the lowest score, not a spread.
    """
    above = sum((F.col(column) > F.lit(float(c))).cast("int") for c in cuts) if cuts else F.lit(0)
    top = len(cuts) + 1
    value = F.lit(1) + above if higher_is_better else F.lit(top) - above
    return F.when(F.col(column).isNotNull(), value.cast("int"))


def rfm_segment(rules: Sequence[tuple[str, tuple[int, int], tuple[int, int]]]) -> Column:
    """Name of the first (name, (r_min, r_max), (f_min, f_max)) rule that holds, else null."""
    expr: Column | None = None
    for name, (r_lo, r_hi), (f_lo, f_hi) in rules:
        cond = F.col("r_score").between(r_lo, r_hi) & F.col("f_score").between(f_lo, f_hi)
        expr = F.when(cond, name) if expr is None else expr.when(cond, name)
    return expr if expr is not None else F.lit(None).cast("string")


def with_rfm(buyers: DataFrame, cuts: dict[str, list[float]], rules) -> DataFrame:
    """Adds ``r_score``, ``f_score``, ``m_score``, ``rfm_score`` ("545") and ``rfm_segment``."""
    scored = buyers.select(
        "*",
        score("recency_days", cuts["recency_days"], higher_is_better=False).alias("r_score"),
        score("orders", cuts["orders"]).alias("f_score"),
        score("total_spend", cuts["total_spend"]).alias("m_score"),
    )
    return scored.withColumn(
        "rfm_score",
        F.concat(
            F.col("r_score").cast("string"),
            F.col("f_score").cast("string"),
            F.col("m_score").cast("string"),
        ),
    ).withColumn("rfm_segment", rfm_segment(rules))
