"""Implicit feedback per (person, item): weighted, optionally time-decayed, summed.

A row of evidence is an event on an item (``silver/events``, weighted by event type) or
a line of a paid order (``silver/order_items`` of ``silver/orders``). Its weight decays
by half every ``half_life_days`` before the as-of date when a half-life is set; the
confidence of a pair is the sum. Only evidence on or before the as-of date counts.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis import tables as T
from precis.columns import ID_KEY, ID_TYPE, ITEM_ID, ONE_ID, ORDER_ID
from precis.days import day_end, day_start
from precis.errors import MissingDatasetError
from precis.recommend.settings import RecommendConfig

EVIDENCE = [ONE_ID, ITEM_ID, "weight", "at"]


def _resolve(df: DataFrame, identity_map: DataFrame) -> DataFrame:
    return df.filter(F.col(ID_KEY).isNotNull()).join(
        identity_map.select(ID_TYPE, ID_KEY, ONE_ID), [ID_TYPE, ID_KEY], how="inner"
    )


def event_evidence(
    events: DataFrame, identity_map: DataFrame, weights: Mapping[str, float], as_of: dt.date
) -> DataFrame:
    """Events on items with a positive weight: one_id, item_id, weight, at."""
    positive = {k: float(v) for k, v in weights.items() if v > 0}
    if not positive:
        return events.sparkSession.createDataFrame(
            [], "one_id string, item_id string, weight double, at timestamp"
        )
    weight = F.element_at(
        F.create_map(*[F.lit(x) for kv in positive.items() for x in kv]), F.col("event_type")
    )
    kept = events.filter(
        F.col(ITEM_ID).isNotNull()
        & F.col("event_type").isin(*positive)
        & (F.col("event_time") < day_end(as_of))
    )
    return _resolve(kept, identity_map).select(
        ONE_ID, ITEM_ID, weight.alias("weight"), F.col("event_time").alias("at")
    )


def purchase_evidence(
    orders: DataFrame,
    order_items: DataFrame,
    identity_map: DataFrame,
    weight: float,
    as_of: dt.date,
) -> DataFrame:
    """Lines of paid orders: one_id, item_id, weight, at (refunded orders are no evidence)."""
    paid = orders.filter(
        (F.lower(F.coalesce(F.col("status"), F.lit("paid"))) != "refunded")
        & (F.col("order_time") < day_end(as_of))
    )
    lines = (
        _resolve(paid, identity_map)
        .select(ORDER_ID, ONE_ID, "order_time")
        .join(order_items.select(ORDER_ID, ITEM_ID), ORDER_ID, how="inner")
    )
    return lines.select(
        ONE_ID, ITEM_ID, F.lit(float(weight)).alias("weight"), F.col("order_time").alias("at")
    )


def confidence(evidence: DataFrame, as_of: dt.date, half_life_days: float | None) -> DataFrame:
    """one_id, item_id, confidence (summed, decayed weights), last_at."""
    weight = F.col("weight")
    if half_life_days:
        age_days = (F.unix_timestamp(day_end(as_of)) - F.unix_timestamp("at")) / F.lit(86400.0)
        weight = weight * F.pow(F.lit(0.5), age_days / F.lit(float(half_life_days)))
    return (
        evidence.groupBy(ONE_ID, ITEM_ID)
        .agg(F.sum(weight).alias("confidence"), F.max("at").alias("last_at"))
        .filter(F.col("confidence") > 0)
    )


def bought(
    identity_map: DataFrame,
    events: DataFrame | None,
    orders: DataFrame | None,
    order_items: DataFrame | None,
    purchase_event_types: tuple[str, ...],
    as_of: dt.date,
) -> DataFrame | None:
    """Distinct (one_id, item_id) a person bought on or before the date: lines of paid
    orders, and events of ``purchase_event_types`` on an item (None: neither exists)."""
    parts = []
    if orders is not None and order_items is not None:
        lines = purchase_evidence(orders, order_items, identity_map, 1.0, as_of)
        parts.append(lines.select(ONE_ID, ITEM_ID))
    if events is not None and purchase_event_types:
        # Any weight: a bought item is left out whether or not it counts as evidence.
        weights = dict.fromkeys(purchase_event_types, 1.0)
        parts.append(event_evidence(events, identity_map, weights, as_of).select(ONE_ID, ITEM_ID))
    if not parts:
        return None
    return functools.reduce(DataFrame.unionByName, parts).distinct()


def without_evidence(
    events: DataFrame | None, orders: DataFrame | None, order_items: DataFrame | None
) -> str | None:
    """Why there is nothing to learn from (no events, no order lines), or None."""
    if events is None and (orders is None or order_items is None):
        return (
            f"no interactions: recommend needs {T.EVENTS.ref} or {T.ORDERS.ref} with "
            f"{T.ORDER_ITEMS.ref}"
        )
    return None


def gather(
    identity_map: DataFrame,
    events: DataFrame | None,
    orders: DataFrame | None,
    order_items: DataFrame | None,
    settings: RecommendConfig,
    as_of: dt.date,
) -> tuple[DataFrame, DataFrame | None]:
    """(evidence of the lookback: ``EVIDENCE``; bought pairs (``bought``), or None).

    Events count when present; order lines when both orders and their items are.
    """
    parts = []
    if events is not None:
        parts.append(event_evidence(events, identity_map, settings.event_weights, as_of))
    if orders is not None and order_items is not None and settings.order_weight > 0:
        parts.append(
            purchase_evidence(orders, order_items, identity_map, settings.order_weight, as_of)
        )
    if not parts:
        raise MissingDatasetError(
            without_evidence(events, orders, order_items) or "no interactions"
        )
    evidence = functools.reduce(DataFrame.unionByName, parts)
    if settings.lookback_days:
        since = as_of - dt.timedelta(days=settings.lookback_days - 1)
        evidence = evidence.filter(F.col("at") >= day_start(since))
    paid = bought(identity_map, events, orders, order_items, settings.purchase_event_types, as_of)
    return evidence, paid
