"""Daily spend and daily attributed outcomes per channel: the points a curve is fitted on.

Both are a few rows per day and channel, aggregated on Spark; the fit runs on the driver.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.attribution import rules
from precis.columns import ORDER_ID

#: Columns of ``points``: one row per day and paid channel of the window.
POINT_COLUMNS = ("day", "channel", "spend", "conversions", "revenue")


def spend_by_day(campaign_spend: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """``day``, ``channel``, ``spend``: each channel's spend per day of [start, end]."""
    return (
        campaign_spend.filter(F.col("spend_date").between(F.lit(start), F.lit(end)))
        .groupBy(F.col("spend_date").alias("day"), "channel")
        .agg(F.sum(F.col("spend").cast("double")).alias("spend"))
    )


def credit_by_day(
    journey_rows: DataFrame, conversion_rows: DataFrame, model: str, weights: rules.RuleSettings
) -> DataFrame:
    """``day``, ``channel``, ``conversions``, ``revenue``: what a rule-based ``model``
    credits each channel with, by the day of the conversion.

    ``journey_rows``: ``journeys.journey_touches`` (a converting journey's id is its
    order's); ``conversion_rows``: ``journeys.conversions``.
    """
    days = conversion_rows.select(F.col(ORDER_ID).alias("journey_id"), F.to_date("at").alias("day"))
    dated = journey_rows.filter(F.col("converted")).join(days, "journey_id", how="inner")
    return rules.rule_credits(dated, (model,), weights, by=("day",)).select(
        "day", "channel", "conversions", "revenue"
    )


def points(spend: DataFrame, credit: DataFrame) -> pd.DataFrame:
    """``POINT_COLUMNS`` on the driver: every day a channel spent, with what it was
    credited that day (0 on a day it was credited nothing)."""
    joined = spend.join(credit, ["day", "channel"], "left").select(
        "day",
        "channel",
        "spend",
        F.coalesce("conversions", F.lit(0.0)).alias("conversions"),
        F.coalesce("revenue", F.lit(0.0)).alias("revenue"),
    )
    # Days x paid channels: a few hundred rows whatever the number of people.
    found: pd.DataFrame = joined.toPandas()
    return found.sort_values(["channel", "day"]).reset_index(drop=True)
