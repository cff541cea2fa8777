"""Campaign response: paid channels cause orders by planted curves of their daily spend.

With ``generate.response``, each paid channel's orders caused on a day number
Poisson(Hill(that day's spend)), where the Hill curve (``CURVES``) is planted per channel:
``top * s^shape / (s^shape + half^shape)`` caused orders per day, ``top`` and ``half``
in proportion to the world's people and the channel's daily budget. A caused order goes
to a person drawn uniformly from everybody (an ad reaches lapsed and future customers
too), at a uniform time of the day, with a touch of the channel shortly before it.

With ``generate.holdout_share``, each paid channel also has a holdout experiment
(``holdout_<channel>``): half of its participants (arm ``control``) get nothing from the
channel in their 14-day window: no caused order and no touch. Their withheld orders are
priced and kept for the truth, like an experiment arm's orders in another arm
(``precis.generate.experiments``), so ``truth/experiment_lifts`` holds each channel's
true incremental conversions per person, and ``truth/response_curves`` the curves.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.generate.activity import TOUCH_PERSON_COLUMNS, World, explode_count
from precis.generate.catalog import CHANNELS
from precis.generate.draws import SECONDS_PER_DAY, exponential, exprs, hex_id, num, poisson
from precis.generate.experiments import CONTROL, WINDOW_DAYS, Arm, Planted
from precis.generate.period import Period
from precis.generate.purchases import PURCHASE_COLUMNS
from precis.generate.settings import HOLDOUT_START_DAYS, GenerateConfig


@dataclass(frozen=True)
class Curve:
    channel: str
    top_per_1k: float  # caused orders per day per 1,000 people at unlimited spend
    half_share: float  # the spend that causes half of that, in daily budgets
    shape: float  # 1: every extra unit returns less; above 1: an S


#: The planted curves of the paid channels (catalog.CHANNELS with a cost).
CURVES: tuple[Curve, ...] = (
    Curve("search", 6.0, 0.8, 1.0),
    Curve("social", 4.0, 1.2, 1.5),
    Curve("display", 2.0, 0.7, 0.8),
    Curve("email", 2.0, 0.5, 1.0),
    Curve("affiliate", 3.0, 1.5, 2.0),
)
#: Daily spend from 1 - SPREAD to 1 + SPREAD times the budget when the response is
#: planted, and SCALE times the budget of a world without (whose spend pays for nothing:
#: with it, each channel returns a few times what it costs).
SPREAD, SCALE = 0.8, 25.0
#: The arm the channel reaches as usual (the other, ``control``, is withheld from it).
EXPOSED = "exposed"
# Purchase numbers of caused orders: above every other purchase number of a person.
CAUSED_NO = 3_000_000
CURVE_SCHEMA = "channel string, top double, half double, shape double, budget double"
TRUTH_SCHEMA = f"{CURVE_SCHEMA}, order_value double"


def budget(channel: str, people: int) -> float:
    """A paid channel's mean daily spend (catalog.campaign_spend_frame)."""
    found = next(c for c in CHANNELS if c.name == channel)
    return SCALE * found.daily_budget_per_1k_people * max(people, 1000) / 1000.0


def curves_frame(spark: SparkSession, people: int) -> DataFrame:
    """One row per paid channel: its planted curve in this world (per day) and budget."""
    rows = [
        (
            c.channel,
            c.top_per_1k * people / 1000.0,
            c.half_share * budget(c.channel, people),
            c.shape,
            budget(c.channel, people),
        )
        for c in CURVES
    ]
    return spark.createDataFrame(rows, CURVE_SCHEMA)


def truth(spark: SparkSession, g: GenerateConfig, orders_df: DataFrame) -> DataFrame:
    """``truth/response_curves``: the curves, and ``order_value``: the mean revenue of a
    caused order (refunded ones count 0), over every one of them, landed or not."""
    caused_orders = orders_df.filter("planted.channel IS NOT NULL")
    value = caused_orders.agg(
        F.avg(F.expr("IF(status = 'refunded', 0.0D, amount)")).alias("order_value")
    )
    return curves_frame(spark, g.people).crossJoin(value)


def holdouts(g: GenerateConfig, period: Period) -> tuple[Planted, ...]:
    """One holdout experiment per paid channel, all starting ``HOLDOUT_START_DAYS``
    before the end date."""
    if not (g.response and g.holdout_share):
        return ()
    start = period.end_s - HOLDOUT_START_DAYS * SECONDS_PER_DAY
    arms = (Arm(CONTROL, 0.5, 0.0), Arm(EXPOSED, 0.5, 0.0))
    return tuple(
        Planted(
            100 + k,
            f"holdout_{c.channel}",
            start,
            arms,
            0.0,
            False,
            0.0,
            g.holdout_share,
            c.channel,
        )
        for k, c in enumerate(CURVES)
    )


def caused(spend: DataFrame, people: DataFrame, held: DataFrame | None, w: World) -> DataFrame:
    """The orders the channels' daily spend causes, in ``PURCHASE_COLUMNS``.

    ``spend``: landing ``campaign_spend``. ``held``: the holdouts' participants
    (``experiments.enrolled``, with ``channel``) or None. Every caused order carries its
    channel in ``planted``; one in a participant's window carries the holdout and arm
    ``exposed``, and lands only for a participant in that arm.
    """
    spark = spend.sparkSession
    start = w.period.start_date.isoformat()
    day = f"datediff(spend_date, DATE'{start}')"
    curves = curves_frame(spark, w.g.people).select(
        "*",
        F.expr(
            f"array_position(array({', '.join(repr(c.channel) for c in CURVES)}), channel)"
        ).alias("_ci"),
    )
    ratio = "pow(_spent / half, shape)"
    daily = (
        spend.groupBy("spend_date", "channel")
        .agg(F.sum("spend").alias("_spent"))
        .join(F.broadcast(curves), "channel", how="inner")
        .select(
            "channel",
            "_ci",
            F.expr(day).alias("_day"),
            F.expr(f"top * {ratio} / (1.0D + {ratio})").alias("_mean"),
        )
    )
    n = poisson("_mean", w.u("caused_n", "_ci", "_day"), w.u("caused_n_2", "_ci", "_day"))
    slots = daily.select("*", explode_count(n).alias("_k")).select(
        "channel",
        *exprs(
            {
                "person_id": f"CAST(floor({w.u('caused_person', '_ci', '_day', '_k')} * {w.g.people}) AS BIGINT)",
                "purchase_no": f"{CAUSED_NO}L + (CAST(_day AS BIGINT) * 8L + _ci) * 1048576L + _k",
                "order_time_s": (
                    f"{w.period.start_s}L + CAST(_day AS BIGINT) * {SECONDS_PER_DAY}L "
                    f"+ CAST(floor({w.u('caused_at', '_ci', '_day', '_k')} * {SECONDS_PER_DAY}) AS BIGINT)"
                ),
            }
        ),
    )
    bought = slots.join(people.select(*PURCHASE_COLUMNS[:-3]), "person_id", how="inner")
    no_holdout = "named_struct('experiment_id', CAST(NULL AS STRING), 'arm', CAST(NULL AS STRING), 'landed', true, 'channel', channel)"
    if held is None:
        return bought.select(*PURCHASE_COLUMNS[:-1], F.expr(no_holdout).alias("planted"))
    window = WINDOW_DAYS * SECONDS_PER_DAY
    participants = held.filter("landed").select(
        F.col("person_id").alias("_person"),
        F.col("channel").alias("_channel"),
        "experiment_id",
        F.col("arm").alias("_arm"),
        "assigned_s",
    )
    inside = (
        (F.col("person_id") == F.col("_person"))
        & (F.col("channel") == F.col("_channel"))
        & F.expr(f"order_time_s > assigned_s AND order_time_s <= assigned_s + {window}L")
    )
    planted = (
        f"IF(_person IS NULL, {no_holdout}, named_struct('experiment_id', experiment_id, "
        f"'arm', '{EXPOSED}', 'landed', _arm = '{EXPOSED}', 'channel', channel))"
    )
    return bought.join(participants, inside, "left").select(
        *PURCHASE_COLUMNS[:-1], F.expr(planted).alias("planted")
    )


def caused_touches(orders_df: DataFrame, w: World) -> DataFrame:
    """A touch of its channel shortly before each landed caused order (5 minutes plus an
    exponential wait of mean 2 hours), in the columns ``touchpoints.touches`` details."""
    lead = f"CAST(floor(300.0D + {exponential(w.u('caused_lead', 'order_id'), num(7200.0))}) AS BIGINT)"
    return orders_df.filter("planted.channel IS NOT NULL").select(
        *TOUCH_PERSON_COLUMNS,
        *exprs(
            {
                "touch_id": f"concat('T', {hex_id(w.seed, 'caused_touch', 'order_id', length=19)})",
                "touch_time_s": f"greatest(order_time_s - {lead}, {w.period.start_s}L)",
                "channel": "planted.channel",
            }
        ),
    )


def withheld(touches: DataFrame, held: DataFrame) -> DataFrame:
    """``touches`` less those of a holdout's channel to its ``control`` participants in
    their window."""
    window = WINDOW_DAYS * SECONDS_PER_DAY
    control = held.filter(f"landed AND arm = '{CONTROL}'").select(
        F.col("person_id").alias("_person"), F.col("channel").alias("_channel"), "assigned_s"
    )
    inside = (
        (F.col("person_id") == F.col("_person"))
        & (F.col("channel") == F.col("_channel"))
        & F.expr(f"touch_time_s > assigned_s AND touch_time_s <= assigned_s + {window}L")
    )
    return touches.join(control, inside, "left_anti")
