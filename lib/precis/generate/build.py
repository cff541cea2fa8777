"""Assemble every landing dataset and truth table from the person frame.

``build`` only describes DataFrames; the ``generate`` job writes them. The six shared
intermediates (people, orders, sessions, events, touches, identity records) go through
the caller's ``persist(df, name)``, so the caller decides how they are kept. Cutting
their lineage there (``localCheckpoint``) matters: the generator's plans are large, and
every later query would otherwise re-analyze and re-plan the whole generation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.columns import ID_TYPE, ID_VALUE, ITEM_ID
from precis.generate import (
    activity,
    experiments,
    landing,
    purchases,
    response,
    signins,
    touchpoints,
    truth,
)
from precis.generate.activity import World
from precis.generate.catalog import (
    ItemDraw,
    campaign_spend_frame,
    channel_effects_frame,
    items_frame,
)
from precis.generate.corrupt import CORRUPTED_DATASETS, CORRUPTION_SCHEMA, corrupt
from precis.generate.people import people_frame
from precis.generate.period import Period
from precis.generate.settings import GenerateConfig
from precis.schemas import SPECS
from precis.tables import TRUTH_NAMES

Persist = Callable[[DataFrame, str], DataFrame]

#: Names passed to ``persist``, in the order build calls it.
STAGES = ("people", "orders", "sessions", "events", "touches", "records")

# A person fans out into ~50 landing rows: 25k people make a task of about a million rows.
PEOPLE_PER_PARTITION = 25_000

#: Truth tables, in the order the job writes them (declared in precis.tables).
TRUTH_TABLES = TRUTH_NAMES


@dataclass(frozen=True)
class Generated:
    landing: dict[str, DataFrame]  # SPECS schema; all-string for corrupted datasets
    truth: dict[str, DataFrame]
    corrupted: tuple[str, ...]  # datasets written as all-string columns
    # Empty because nothing of theirs was planted (experiments): landed only to empty a
    # folder an earlier world filled, so that a world without them costs nothing.
    unplanted: tuple[str, ...] = ()


def _keep(df: DataFrame, name: str) -> DataFrame:
    return df


def default_partitions(g: GenerateConfig) -> int:
    """Partitions of the person frame: a function of the config only, never of the machine,
    so that merging them into ``g.partitions`` files gives the same files everywhere."""
    return max(g.partitions, -(-g.people // PEOPLE_PER_PARTITION))


def build(
    spark: SparkSession,
    g: GenerateConfig,
    end_date: dt.date,
    num_partitions: int | None = None,
    persist: Persist = _keep,
) -> Generated:
    """Every landing dataset and truth table for ``g`` over the days ending ``end_date``.

    ``num_partitions`` only changes parallelism: rows are the same for any value.
    """
    period = Period(end_date, g.days)
    draw = ItemDraw(g.seed, g.items, g.item_zipf)
    w = World(g, period, draw)
    parts = num_partitions or default_partitions(g)

    people = persist(people_frame(spark, g, period, draw, parts), "people")
    planted = experiments.plan(g, period)
    holdouts = response.holdouts(g, period)
    spend = campaign_spend_frame(
        spark,
        g.seed,
        g.people,
        period.start_date,
        period.days,
        *((response.SPREAD, response.SCALE) if g.response else ()),
    )
    bought = purchases.purchase_times(people)
    if planted:
        enrolled = experiments.enrolled(people, experiments.specs(spark, planted), w)
        bought = bought.unionByName(experiments.purchases(enrolled, w))
    held = experiments.enrolled(people, experiments.specs(spark, holdouts), w) if holdouts else None
    if g.response:
        bought = bought.unionByName(response.caused(spend, people, held, w))
    if held is not None:
        enrolled = enrolled.unionByName(held) if planted else held
    # Every order, and those of experiment arms a person was not in (for the truth only).
    every_order = persist(purchases.orders(bought, w), "orders")
    orders = every_order.filter("planted IS NULL OR planted.landed")
    browse = persist(
        activity.browse_sessions(people, w).select(
            "person_id", *activity.SESSION_COLUMNS, "pref_cum"
        ),
        "sessions",
    )
    lines = purchases.order_lines(orders)
    checkout = orders.filter(F.col("session_id").isNotNull())

    # Each of these feeds a landing dataset and truth/record_person.
    events = persist(
        activity.browse_events(browse, w).unionByName(activity.checkout_events(lines, w)), "events"
    )
    found_touches = touchpoints.touches(
        people, orders, w, response.caused_touches(orders, w) if g.response else None
    )
    touches = persist(
        found_touches if held is None else response.withheld(found_touches, held), "touches"
    )
    records = persist(
        landing.session_records(browse)
        .unionByName(landing.session_records(checkout))
        .unionByName(landing.crm_records(people, w))
        .unionByName(landing.wechat_records(people, w))
        .unionByName(signins.signin_records(people, w))
        .unionByName(landing.pos_records(orders)),
        "records",
    )
    customers = landing.customers(people)
    forgets = landing.forget_requests(people, w)

    def ts(seconds: str) -> str:
        return f"timestamp_seconds({seconds})"

    frames = {
        "id_observations": landing.conform(
            landing.id_rows(records), "id_observations", {"observed_at": ts("observed_s")}
        ),
        "events": landing.conform(
            events,
            "events",
            {
                "event_time": ts("event_time_s"),
                ID_TYPE: "id_main.id_type",
                ID_VALUE: "id_main.id_value",
            },
        ),
        "orders": landing.conform(
            orders,
            "orders",
            {
                "order_time": ts("order_time_s"),
                ID_TYPE: "order_key.id_type",
                ID_VALUE: "order_key.id_value",
                "currency": "'CNY'",
                "channel": "sales_channel",
            },
        ),
        "order_items": landing.conform(
            lines,
            "order_items",
            {
                ITEM_ID: "line.item_id",
                "quantity": "line.quantity",
                "unit_price": "line.unit_price",
            },
        ),
        "touchpoints": landing.conform(
            touches,
            "touchpoints",
            {
                "touch_time": ts("touch_time_s"),
                ID_TYPE: "id_main.id_type",
                ID_VALUE: "id_main.id_value",
            },
        ),
        "items": items_frame(spark, draw),
        "customers": landing.conform(
            customers,
            "customers",
            {
                "signup_time": ts("signup_time_s"),
                "consent_updated_at": ts("consent_updated_s"),
            },
        ),
        "campaign_spend": spend,
        "forget_requests": landing.conform(
            forgets, "forget_requests", {"requested_at": ts("requested_s")}
        ),
        "experiment_assignments": (
            landing.conform(
                enrolled.filter("landed"),
                "experiment_assignments",
                {ID_TYPE: "'member_id'", ID_VALUE: "member_id", "assigned_at": ts("assigned_s")},
            )
            if planted or holdouts
            else spark.createDataFrame([], SPECS["experiment_assignments"].schema)
        ),
        "experiments": experiments.arms_frame(spark, planted + holdouts),
    }

    corrupted: tuple[str, ...] = CORRUPTED_DATASETS if g.corrupt_fraction > 0 else ()
    corruptions = spark.createDataFrame([], CORRUPTION_SCHEMA)
    for name in corrupted:
        text = landing.as_text(frames[name], name, every_column=True)
        frames[name], found = corrupt(text, name, g.seed, g.corrupt_fraction)
        corruptions = corruptions.unionByName(found)

    truth_frames = {
        "record_person": truth.record_person(records, events, orders, touches, customers, forgets),
        "person_preferences": truth.person_preferences(people, w),
        "person_purchase_params": truth.person_purchase_params(people, g, every_order),
        "channel_effects": channel_effects_frame(spark),
        "people": truth.people_truth(people),
        "traps": truth.traps(spark, people, g),
        "corruptions": corruptions,
        "experiment_lifts": (
            experiments.lifts(every_order, enrolled)
            if planted or holdouts
            else spark.createDataFrame([], experiments.TRUTH_SCHEMA)
        ),
        "response_curves": (
            response.truth(spark, g, every_order)
            if g.response
            else spark.createDataFrame([], response.TRUTH_SCHEMA)
        ),
    }
    unplanted = () if planted or holdouts else ("experiment_assignments", "experiments")
    return Generated(frames, truth_frames, corrupted, unplanted)


# ------------------------------------------------------------------ write shape
def for_format(df: DataFrame, dataset: str, fmt: str, already_text: bool) -> DataFrame:
    """csv and json carry timestamps as ISO-8601 strings (the contract); others stay typed."""
    if already_text or fmt not in ("csv", "json"):
        return df
    return landing.as_text(df, dataset, every_column=False)


def arrange(df: DataFrame, order: tuple[str, ...], partitions: int) -> DataFrame:
    """At most ``partitions`` files, each sorted by ``order``.

    Generation emits rows in a deterministic order in a deterministic number of
    partitions, so merging neighbouring partitions (no shuffle) and sorting each gives
    the same files on every run, at a fraction of the cost of a repartition.
    """
    return df.coalesce(partitions).sortWithinPartitions(*order)


def landing_order(dataset: str) -> tuple[str, ...]:
    """Time first where the dataset has a time column, then the dedup key."""
    spec = SPECS[dataset]
    return ((spec.order_by,) if spec.order_by else ()) + tuple(
        k for k in spec.keys if k != spec.order_by
    )
