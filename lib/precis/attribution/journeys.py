"""Journeys: each person's marketing touches cut at their conversions.

Definitions (docs/attribution.md):

- a *conversion* is an order that passes the conversion filter (by default: paid);
  its value is the revenue expression (by default the order amount);
- the *converting journey* of a conversion in the analysis window is the person's
  touches after their previous conversion and at most ``lookback_days`` before it;
- every other touch in the window belongs to the *non-converting journey* of the
  person's touches between the same two conversions (the ones that led nowhere within
  the lookback, and the ones after the last conversion up to the run date).

So every touch in the window belongs to exactly one journey, and nothing after the run
date is used. Channels are labelled by ``channel`` or, at campaign granularity, by
``channel:campaign_id`` (touches without a campaign keep the bare channel).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ONE_ID, ORDER_ID
from precis.days import day_end, day_start
from precis.errors import ConfigError
from precis.tables import ORDERS

SECONDS_PER_DAY = 86_400

#: Columns of a journey's touch rows, the input of every model.
TOUCH_COLUMNS = (
    "journey_id",
    ONE_ID,
    "converted",
    "revenue",
    "channel",
    "position",
    "touches",
    "days_before",
)


@dataclass(frozen=True)
class AnalysisWindow:
    """The analysis window: conversions and non-converting touches in [start, end]."""

    start: dt.date
    end: dt.date
    lookback_days: int

    @classmethod
    def ending(cls, end: dt.date, window_days: int, lookback_days: int) -> AnalysisWindow:
        return cls(end - dt.timedelta(days=window_days - 1), end, lookback_days)

    @property
    def start_ts(self) -> Column:
        return day_start(self.start)

    @property
    def end_ts(self) -> Column:
        """Exclusive: midnight after the end date, so the end date counts in full."""
        return day_end(self.end)

    @property
    def earliest_ts(self) -> Column:
        """Oldest touch a journey of the window can hold."""
        return day_start(self.start - dt.timedelta(days=self.lookback_days))


def touch_label(granularity: str) -> Column:
    if granularity == "campaign":
        return F.when(F.col("campaign_id").isNull(), F.col("channel")).otherwise(
            F.concat_ws(":", "channel", "campaign_id")
        )
    return F.col("channel")


def conversions(
    orders: DataFrame, revenue: str = "amount", condition: str | None = None
) -> DataFrame:
    """Resolved orders -> ``one_id``, ``order_id``, ``at``, ``revenue`` of conversions.

    The contract: a missing status means paid; refunded orders are not conversions
    unless ``condition`` says otherwise.
    """
    status = F.lower(F.coalesce(F.col("status"), F.lit("paid")))
    kept = orders.filter(F.expr(condition)) if condition else orders.filter(status == "paid")
    return kept.select(
        ONE_ID,
        ORDER_ID,
        F.col("order_time").alias("at"),
        F.coalesce(F.expr(revenue).cast("double"), F.lit(0.0)).alias("revenue"),
    )


def checked_conversions(orders: DataFrame, revenue: str, condition: str | None) -> DataFrame:
    """``conversions``, analysed at once: a bad ``attribution.revenue`` or
    ``attribution.conversion_filter`` fails here, before any work, naming both settings."""
    try:
        found = conversions(orders, revenue, condition)
        _ = found.schema  # analysis happens here
    except Exception as exc:  # AnalysisException or ParseException, both name the column
        raise ConfigError(
            f"attribution.revenue ({revenue!r}) or attribution.conversion_filter "
            f"({condition!r}) is not valid over {ORDERS.ref}: {str(exc).splitlines()[0]}"
        ) from exc
    return found


def touches(touchpoints: DataFrame, granularity: str = "channel") -> DataFrame:
    """Resolved touchpoints -> ``one_id``, ``touch_id``, ``at``, ``channel`` (the label)."""
    return touchpoints.filter(F.col("channel").isNotNull()).select(
        ONE_ID,
        "touch_id",
        F.col("touch_time").alias("at"),
        touch_label(granularity).alias("channel"),
    )


def journey_touches(
    touch_rows: DataFrame, conversion_rows: DataFrame, window: AnalysisWindow
) -> DataFrame:
    """One row per touch in a journey of the window (``TOUCH_COLUMNS``).

    ``position`` counts from 1 in time order; ``touches`` is the journey's length;
    ``days_before`` is the time from the touch to its conversion (null when none).
    """
    lookback_s = window.lookback_days * SECONDS_PER_DAY
    in_reach = (F.col("at") >= window.earliest_ts) & (F.col("at") < window.end_ts)
    # Touches and conversions as one stream of events per person, carrying what the
    # journeys need (channel, revenue), so that every step below runs on the one
    # shuffle by person: each later window is partitioned by the person and more.
    no_text, no_value = F.lit(None).cast("string"), F.lit(None).cast("double")
    events = (
        touch_rows.filter(in_reach)
        .select(
            ONE_ID,
            "at",
            F.lit(0).alias("kind"),
            F.col("touch_id").alias("id"),
            "channel",
            no_value.alias("revenue"),
        )
        .unionByName(
            conversion_rows.filter(in_reach).select(
                ONE_ID,
                "at",
                F.lit(1).alias("kind"),
                F.col(ORDER_ID).alias("id"),
                no_text.alias("channel"),
                "revenue",
            )
        )
    )
    # Each event's segment = the number of the person's conversions strictly before it;
    # a touch's candidate conversion is the first conversion after it, which closes its
    # segment. At equal times a touch comes before the conversion (it can have caused
    # it). Both come from one pass backwards in time, so one sort: the closing
    # conversion is the latest conversion seen so far, and the segment is the person's
    # conversions less those at or after the event.
    backwards = Window.partitionBy(ONE_ID).orderBy(
        F.col("at").desc(), F.col("kind").desc(), F.col("id").desc()
    )
    so_far = backwards.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    # The whole person in the same order spec: same window pass, no sort of its own.
    person = backwards.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    conversion = F.when(F.col("kind") == 1, F.struct(F.col("id"), F.col("at"), F.col("revenue")))
    touched = events.select(
        "*",
        (F.sum("kind").over(person) - F.sum("kind").over(so_far)).alias("segment"),
        F.last(conversion, ignorenulls=True).over(so_far).alias("closing"),
    ).filter(F.col("kind") == 0)
    gap_s = F.unix_timestamp("closing.at") - F.unix_timestamp("at")
    converting = F.col("closing").isNotNull() & (gap_s <= F.lit(lookback_s))
    assigned = touched.select(
        ONE_ID,
        F.col("id").alias("touch_id"),
        "at",
        "channel",
        F.when(converting, F.col("closing.id"))
        .otherwise(F.concat(F.lit("~"), F.col(ONE_ID), F.lit("#"), F.col("segment").cast("string")))
        .alias("journey_id"),
        converting.alias("converted"),
        F.when(converting, F.col("closing.revenue")).otherwise(F.lit(0.0)).alias("revenue"),
        F.when(converting, gap_s / F.lit(float(SECONDS_PER_DAY))).alias("days_before"),
        F.when(converting, F.col("closing.at")).alias("converted_at"),
    )
    # Converting journeys belong to the window by their conversion, the others by touch.
    in_window = F.when(F.col("converted"), F.col("converted_at") >= window.start_ts).otherwise(
        F.col("at") >= window.start_ts
    )
    journey = Window.partitionBy(ONE_ID, "journey_id").orderBy("at", "touch_id")
    whole = journey.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    return assigned.filter(in_window).select(
        "journey_id",
        ONE_ID,
        "converted",
        "revenue",
        "channel",
        F.row_number().over(journey).alias("position"),
        F.count(F.lit(1)).over(whole).cast("int").alias("touches"),
        "days_before",
    )


#: Columns of a journey's summary row (``summaries``): ``steps`` holds its touches in
#: time order, as structs of ``position``, ``channel`` and ``days_before``.
JOURNEY_COLUMNS = ("journey_id", ONE_ID, "converted", "revenue", "steps")


def summaries(journey_rows: DataFrame) -> DataFrame:
    """One row per journey (``JOURNEY_COLUMNS``) from its touch rows.

    Grouped by person and journey: straight after ``journey_touches`` the rows are
    already partitioned by person, so this adds no shuffle, and the models read a
    journey once instead of once per touch.
    """
    return journey_rows.groupBy("journey_id", ONE_ID).agg(
        F.first("converted").alias("converted"),
        F.first("revenue").alias("revenue"),
        F.array_sort(F.collect_list(F.struct("position", "channel", "days_before"))).alias("steps"),
    )


def touch_rows_of(journey_summaries: DataFrame) -> DataFrame:
    """``summaries`` back to touch rows (``TOUCH_COLUMNS``): ``journey_touches`` again."""
    return journey_summaries.select(
        "journey_id",
        ONE_ID,
        "converted",
        "revenue",
        F.size("steps").alias("touches"),
        F.inline("steps"),
    ).select(*TOUCH_COLUMNS)


def untouched_conversions(
    conversion_rows: DataFrame, journey_rows: DataFrame, window: AnalysisWindow
) -> DataFrame:
    """Conversions in the window without any touch in their journey (no channel to credit)."""
    in_window = conversion_rows.filter(
        (F.col("at") >= window.start_ts) & (F.col("at") < window.end_ts)
    )
    return in_window.join(
        journey_rows.select(F.col("journey_id").alias(ORDER_ID)), ORDER_ID, how="left_anti"
    )


def journey_metrics() -> list[Column]:
    """Aggregates over journey summaries (``summaries``): ``journeys``, ``converting``
    (journeys) and ``revenue`` (of the converting ones)."""
    return [
        F.count(F.lit(1)).alias("journeys"),
        F.count_if(F.col("converted")).alias("converting"),
        F.sum(F.when(F.col("converted"), F.col("revenue"))).alias("revenue"),
    ]


def window_metrics(window: AnalysisWindow) -> list[Column]:
    """Aggregates over conversion rows: ``conversions`` and ``revenue`` in the window."""
    inside = (F.col("at") >= window.start_ts) & (F.col("at") < window.end_ts)
    return [
        F.count_if(inside).alias("conversions"),
        F.sum(F.when(inside, F.col("revenue"))).alias("revenue"),
    ]


def counts(journey: Mapping[str, Any], window: Mapping[str, Any]) -> dict[str, float]:
    """What was attributed and what was not, from ``journey_metrics`` over the journeys'
    rows and ``window_metrics`` over the conversions.

    Every converting journey is a conversion of the window, so the window's conversions
    without a journey (no touch within the lookback) are the difference.
    """
    converting = int(journey["converting"] or 0)
    attributed = float(journey["revenue"] or 0.0)
    untouched = int(window["conversions"] or 0) - converting
    return {
        "journeys": int(journey["journeys"] or 0),
        "converting_journeys": converting,
        "attributed_revenue": attributed,
        "untouched_conversions": untouched,
        # No conversion left out: exactly 0, not the rounding error of a difference.
        "untouched_revenue": float(window["revenue"] or 0.0) - attributed if untouched else 0.0,
    }


def paths(journey_rows: DataFrame, collapse_repeats: bool = False) -> DataFrame:
    """Distinct channel paths of journey touch rows (``paths_of`` their ``summaries``)."""
    return paths_of(summaries(journey_rows), collapse_repeats)


def paths_of(journey_summaries: DataFrame, collapse_repeats: bool = False) -> DataFrame:
    """Distinct channel paths: ``path`` (array), ``journeys``, ``conversions``, ``revenue``, ``nulls``."""
    path = F.transform("steps", lambda s: s["channel"])
    if collapse_repeats:
        # get() is 0-based and null before the start, so the first step is always kept.
        path = F.filter(path, lambda x, i: (i == 0) | (x != F.get(path, i - 1)))
    return (
        journey_summaries.select(path.alias("path"), "converted", "revenue")
        .groupBy("path")
        .agg(
            F.count(F.lit(1)).alias("journeys"),
            F.sum(F.col("converted").cast("long")).alias("conversions"),
            F.sum("revenue").alias("revenue"),
        )
        .withColumn("nulls", F.col("journeys") - F.col("conversions"))
    )
