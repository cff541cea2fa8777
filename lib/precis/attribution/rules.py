"""Rule-based attribution on journey touch rows, all on Spark.

Each model gives every touch of a converting journey a weight; a journey's weights sum
to 1, so credited conversions sum to the converting journeys that have touches. The
same weight times the journey's revenue credits revenue.

- ``first_touch`` / ``last_touch``: everything to the first / last touch;
- ``linear``: 1/n to each of the n touches, repeats included;
- ``time_decay``: weight 2^(-days before the conversion / half-life), normalized;
- ``position_based``: ``first`` and ``last`` shares to the end touches and ``middle``
  split evenly over the touches between; a two-touch journey splits everything between
  its ends in proportion first : last, a one-touch journey gives it all to that touch.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ONE_ID

RULE_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")


@dataclass(frozen=True)
class RuleSettings:
    half_life_days: float = 7.0
    first: float = 0.4
    middle: float = 0.2
    last: float = 0.4


def _position_weight(s: RuleSettings) -> Column:
    n, pos = F.col("touches"), F.col("position")
    ends = s.first + s.last
    return (
        F.when(n == 1, F.lit(1.0))
        .when(n == 2, F.when(pos == 1, F.lit(s.first / ends)).otherwise(F.lit(s.last / ends)))
        .when(pos == 1, F.lit(s.first))
        .when(pos == n, F.lit(s.last))
        .otherwise(F.lit(s.middle) / (n - 2))
    )


def _weight(model: str, s: RuleSettings) -> Column:
    """The weight of a converting journey's touch under ``model``."""
    n, pos = F.col("touches"), F.col("position")
    if model == "first_touch":
        return (pos == 1).cast("double")
    if model == "last_touch":
        return (pos == n).cast("double")
    if model == "linear":
        return F.lit(1.0) / n
    if model == "time_decay":
        raw = F.pow(F.lit(2.0), -F.col("days_before") / F.lit(s.half_life_days))
        # By person and journey: straight from journey_touches, partitioned by person.
        return raw / F.sum(raw).over(Window.partitionBy(ONE_ID, "journey_id"))
    if model == "position_based":
        return _position_weight(s)
    raise ValueError(
        f"unknown rule-based model '{model}'; expected one of {', '.join(RULE_MODELS)}"
    )


def touch_weights(
    journey_rows: DataFrame, model: str, s: RuleSettings = RuleSettings()
) -> DataFrame:
    """``channel``, ``weight``, ``revenue`` of every touch of a converting journey."""
    rows = journey_rows.filter(F.col("converted"))
    return rows.select("channel", _weight(model, s).alias("weight"), "revenue")


def rule_credits(
    journey_rows: DataFrame,
    models: tuple[str, ...],
    s: RuleSettings = RuleSettings(),
    by: tuple[str, ...] = (),
) -> DataFrame:
    """``model``, ``channel``, ``conversions``, ``revenue`` for each rule-based model
    (per value of the ``by`` columns of the rows too, ahead of them: a day, say).

    One pass over the rows and one aggregation by channel for all the models together.
    """
    weights = journey_rows.filter(F.col("converted")).select(
        *by,
        "channel",
        "revenue",
        *[_weight(m, s).alias(f"w{i}") for i, m in enumerate(models)],
    )
    sums = weights.groupBy(*by, "channel").agg(
        *[
            agg
            for i in range(len(models))
            for agg in (
                F.sum(f"w{i}").alias(f"c{i}"),
                F.sum(F.col(f"w{i}") * F.col("revenue")).alias(f"r{i}"),
            )
        ]
    )
    by_model = F.array(
        *[
            F.struct(
                F.lit(m).alias("model"),
                F.col(f"c{i}").alias("conversions"),
                F.col(f"r{i}").alias("revenue"),
            )
            for i, m in enumerate(models)
        ]
    )
    return sums.select(*by, "channel", F.inline(by_model)).select(
        *by, "model", "channel", "conversions", "revenue"
    )
