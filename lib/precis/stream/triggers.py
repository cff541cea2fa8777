"""Marketing triggers: the rules of ``stream.cart_abandoned`` and ``stream.returning``.

A trigger row is (``trigger``, ``one_id``, ``event_id``, ``fired_at``, ``details``), keyed
by trigger and event: a micro-batch replayed after a crash finds its rows already there
and fires nothing twice. Only people whose marketing consent is on record fire
(``precis.consent``); a provisional person (not yet in the identity map) has none.

- *cart abandoned*: an add-to-cart with no purchase (a purchase event or a paid order)
  by the same person within ``minutes``. It is decided once the watermark passes the
  cart's due time, so a purchase that lands a little late (within the watermark) still
  cancels it.
- *returning*: a visit by a member of ``segment`` whose previous activity (in the
  stream, or the identity map's last sighting of any of their identifiers) is at least
  ``days_away`` days older.

Pure functions over DataFrames.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ITEM_ID, ONE_ID
from precis.stream.activity import ORDER_KIND
from precis.stream.settings import CartAbandonedConfig, ReturningConfig

CART_ABANDONED, RETURNING = "cart_abandoned", "returning"
TRIGGER_COLUMNS = ("trigger", ONE_ID, "event_id", "fired_at", "details")


def _stamp(at: dt.datetime) -> Column:
    return F.lit(at).cast("timestamp")


def _fired(rows: DataFrame, trigger: str, details: Column) -> DataFrame:
    return rows.select(
        F.lit(trigger).alias("trigger"),
        ONE_ID,
        F.col("activity_id").alias("event_id"),
        # The processing time: when the trigger row is written.
        F.current_timestamp().alias("fired_at"),
        F.to_json(details).alias("details"),
    )


def consented(people: DataFrame, consent: DataFrame) -> DataFrame:
    """``people`` rows whose one_id has marketing consent (``consent``: one_id,
    consent_marketing, from ``precis.consent.marketing_consent``)."""
    yes = consent.filter(F.col("consent_marketing")).select(ONE_ID)
    return people.join(yes, ONE_ID, how="left_semi")


def abandoned_carts(
    activity: DataFrame,
    settings: CartAbandonedConfig,
    since: dt.datetime | None,
    watermark: dt.datetime,
) -> DataFrame:
    """The carts due in (``since``, ``watermark``] (added ``minutes`` before) with no
    purchase by their person in (added, due]: activity rows, before consent."""
    wait = dt.timedelta(minutes=settings.minutes)
    carts = activity.filter(
        (F.col("dataset") == "events") & F.col("kind").isin(*settings.add_events)
        & (F.col("at") <= _stamp(watermark - wait))
    )  # fmt: skip
    if since is not None:
        carts = carts.filter(F.col("at") > _stamp(since - wait))
    buys = activity.filter(
        (F.col("dataset") == "orders") & (F.col("kind") == ORDER_KIND)
        | (F.col("dataset") == "events") & F.col("kind").isin(*settings.purchase_events)
    ).select(ONE_ID, F.col("at").alias("bought_at"))
    bought = (
        (F.col("c." + ONE_ID) == F.col("b." + ONE_ID))
        & (F.col("b.bought_at") > F.col("c.at"))
        & (F.col("b.bought_at") <= F.col("c.at") + F.expr(f"INTERVAL {settings.minutes} MINUTES"))
    )
    return carts.alias("c").join(buys.alias("b"), bought, how="left_anti")


def cart_rows(carts: DataFrame, settings: CartAbandonedConfig) -> DataFrame:
    due = F.col("at") + F.expr(f"INTERVAL {settings.minutes} MINUTES")
    details = F.struct(F.col(ITEM_ID), F.col("at").alias("added_at"), due.alias("due_at"))
    return _fired(carts, CART_ABANDONED, details)


def returning_visits(
    new: DataFrame,
    activity: DataFrame,
    members: DataFrame,
    last_seen: DataFrame,
    settings: ReturningConfig,
) -> DataFrame:
    """Rows of ``new`` (this micro-batch's events) by ``members`` (one_id) whose previous
    activity is ``days_away`` days or more before them; ``last_seen`` has ``id_type``,
    ``id_key``, ``one_id`` and ``last_seen`` (the identity map's rows of the members)."""
    visits = new.filter(F.col("dataset") == "events")
    if settings.visit_events:
        visits = visits.filter(F.col("kind").isin(*settings.visit_events))
    visits = visits.join(F.broadcast(members.distinct()), ONE_ID, how="left_semi")
    before = (
        visits.alias("v")
        .join(
            activity.select(ONE_ID, F.col("at").alias("earlier")).alias("a"),
            (F.col("v." + ONE_ID) == F.col("a." + ONE_ID)) & (F.col("a.earlier") < F.col("v.at")),
            how="left",
        )
        .groupBy(*[F.col("v." + c) for c in visits.columns])
        .agg(F.max("a.earlier").alias("in_stream"))
    )
    batch = last_seen.groupBy(ONE_ID).agg(F.max("last_seen").alias("in_batch"))
    prior = F.greatest(F.col("in_stream"), F.col("in_batch"))
    away = F.col("at") - F.expr(f"INTERVAL {settings.days_away} DAYS")
    return (
        before.join(batch, ONE_ID, how="left")
        .withColumn("previous", prior)
        .filter(F.col("previous") <= away)
    )


def returning_rows(visits: DataFrame) -> DataFrame:
    details = F.struct(
        F.col("kind").alias("event_type"),
        F.col("at").alias("visit_at"),
        F.col("previous").alias("previous_activity"),
        F.round((F.unix_timestamp("at") - F.unix_timestamp("previous")) / 86400.0, 1).alias(
            "days_away"
        ),
    )
    return _fired(visits, RETURNING, details)


def identifiers_of(identity_map: DataFrame, people: DataFrame) -> DataFrame:
    """The identity map's rows (``id_type``, ``id_key``, ``one_id``, ``last_seen``) of
    ``people`` (one_id)."""
    return identity_map.select(ID_TYPE, ID_KEY, ONE_ID, "last_seen").join(
        F.broadcast(people.distinct()), ONE_ID, how="left_semi"
    )
