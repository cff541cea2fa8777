"""Campaign experiments planted among CRM members, with the lifts they truly cause.

Each experiment enrolls a share of the members seen by its start and still active, over
a week, into a control arm and one or two treatment arms (by intended shares). From 28
days before their first enrolment to 14 days after their last, every participant buys
regularly at a rate of their own (a Gamma mixture, so that pre-period spend predicts
the outcome, as with real customers). A treatment adds, with the arm's chance, one
order in the 14 days after enrolment; in every other experiment the chance differs
between app users and the rest (effects heterogeneous by segment), and some arms do
nothing (null effects). One experiment loses 30% of its first treatment arm's
assignments before they land (a sample-ratio mismatch), and the last one is still
running at the end date.

The truth (``truth/experiment_lifts``) is each treatment arm's effect on the people it
is compared over (that arm and control): the mean, over them, of what the arm's extra
order adds to their conversion and revenue in the window, every other order of theirs
counted. The treatment orders of people in other arms are priced too but never landed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from precis.generate.activity import IDENTITY_PERSON_COLUMNS, World, explode_count
from precis.generate.draws import SECONDS_PER_DAY, exprs, gamma, num, poisson
from precis.generate.period import Period
from precis.generate.purchases import PURCHASE_COLUMNS
from precis.generate.settings import GenerateConfig
from precis.schemas import SPECS

PRE_DAYS, ENROL_DAYS, WINDOW_DAYS = 28, 7, 14
#: A treatment arm's chance of one more order in the window, drawn per arm: some null.
EFFECTS = (0.0, 0.0, 0.05, 0.1, 0.15)
#: In every other experiment app users respond this much more, the rest this much less.
APP_SPREAD = 0.6
#: Share of the first treatment arm's assignments lost in the mismatched experiment.
LOST = 0.3
CONTROL = "control"
# Order numbers of planted purchases, above any person's BG/NBD purchase numbers.
REGULAR_NO, TREATMENT_NO = 1_000_000, 2_000_000

ARMS_TYPE = "array<struct<name:string,cum:double,effect:double>>"
TRUTH_SCHEMA = (
    "experiment_id string, arm string, metric string, true_lift double, people long, lost double"
)


@dataclass(frozen=True)
class Arm:
    name: str
    share: float  # intended share of the experiment's people
    effect: float  # chance of one more order in the window (0 for control)


@dataclass(frozen=True)
class Planted:
    number: int
    experiment_id: str
    start_s: int
    arms: tuple[Arm, ...]  # control first
    app_spread: float  # effect x (1 + spread) for app users, x (1 - spread) for the rest
    weighted: bool  # unequal shares, landed in ``experiments``
    lost: float  # share of the first treatment arm's assignments that never land
    share: float  # of the eligible members, enrolled
    channel: str | None = None  # a channel holdout's channel (precis.generate.response)


def plan(g: GenerateConfig, period: Period) -> tuple[Planted, ...]:
    """The experiments of ``g``: evenly spaced starts, and the last one still running."""
    if not g.experiments:
        return ()
    day = SECONDS_PER_DAY
    first = period.start_s + PRE_DAYS * day
    last = period.end_s - (ENROL_DAYS + WINDOW_DAYS) * day
    judged = max(g.experiments - 1, 1)
    starts = [
        first + (i * (last - first) // max(judged - 1, 1)) // day * day for i in range(judged)
    ]
    if g.experiments > 1:
        starts.append(period.end_s - 10 * day)
    planted = []
    for k, start in enumerate(starts):
        rng = random.Random(f"{g.seed}:experiment:{k}")
        treatments = 2 if k % 3 == 2 else 1
        weighted = k % 4 == 3
        control = 0.5 if weighted else 1 / (treatments + 1)
        arms = (
            Arm(CONTROL, control, 0.0),
            *(
                Arm(f"variant_{'ab'[j]}", (1 - control) / treatments, rng.choice(EFFECTS))
                for j in range(treatments)
            ),
        )
        lost = LOST if k == 1 and g.experiments >= 3 else 0.0
        spread = APP_SPREAD if k % 2 else 0.0
        planted.append(
            Planted(k, f"exp_{k + 1:02d}", start, arms, spread, weighted, lost, g.experiment_share)
        )
    return tuple(planted)


def specs(spark: SparkSession, planted: tuple[Planted, ...]) -> DataFrame:
    """One row per experiment: its number, id, start, arms (with cumulative shares)."""
    rows = []
    for p in planted:
        cum, arms = 0.0, []
        for a in p.arms:
            cum += a.share
            arms.append((a.name, cum, a.effect))
        arms[-1] = (arms[-1][0], 1.0, arms[-1][2])  # no gap left by rounding
        rows.append(
            (p.number, p.experiment_id, p.start_s, arms, p.app_spread, p.lost, p.share, p.channel)
        )
    return spark.createDataFrame(
        rows,
        f"number int, experiment_id string, start_s long, arms {ARMS_TYPE}, "
        "app_spread double, lost double, share double, channel string",
    )


def enrolled(people: DataFrame, spec: DataFrame, w: World) -> DataFrame:
    """One row per participant and experiment: their arm, ``assigned_s``, and ``landed``
    (false for an assignment the mismatched experiment lost)."""
    day = SECONDS_PER_DAY
    keys = ("person_id", "number")

    def u(salt: str) -> str:
        return w.u(salt, *keys)

    eligible = (
        people.filter(F.col("is_member"))
        .select(*IDENTITY_PERSON_COLUMNS, "spend_nu", "pref_cum")
        .crossJoin(F.broadcast(spec))
        .filter(f"first_seen_s <= start_s AND active_end_s >= start_s AND {u('exp_enrol')} < share")
    )
    return eligible.select(
        "*",
        *exprs(
            {
                "assigned_s": f"start_s + CAST(floor({u('exp_time')} * {ENROL_DAYS * day}.0D) AS BIGINT)",
                "arm": f"element_at(filter(arms, a -> a.cum > {u('exp_arm')}), 1).name",
            }
        ),
    ).select(
        "*",
        F.expr(f"NOT (arm = element_at(arms, 2).name AND {u('exp_lost')} < lost)").alias("landed"),
    )


def purchases(enrolled_df: DataFrame, w: World) -> DataFrame:
    """The participants' planted orders in ``PURCHASE_COLUMNS``: their regular buying
    from 28 days before their first enrolment to 14 days after their last, and every
    treatment arm's extra order (landed for the person's own arm only)."""
    g = w.g
    day = SECONDS_PER_DAY

    def u(salt: str, *more: str) -> str:
        return w.u(salt, "person_id", "number", *more)

    # One rate per person, whatever the number of experiments they are in: a person's
    # buying does not multiply with their enrolments.
    person = Window.partitionBy("person_id")
    spans = (
        enrolled_df.select(
            "*",
            F.min("assigned_s").over(person).alias("_from"),
            F.max("assigned_s").over(person).alias("_to"),
            F.row_number().over(person.orderBy("number")).alias("_first"),
        )
        .filter("_first = 1")
        .select(
            *PURCHASE_COLUMNS[:-3],
            F.expr(f"_from - {PRE_DAYS * day}L").alias("_start"),
            F.expr(f"_to + {WINDOW_DAYS * day}L - (_from - {PRE_DAYS * day}L)").alias("_span"),
        )
    )

    def v(salt: str, *more: str) -> str:
        return w.u(salt, "person_id", *more)

    shape = num(g.experiment_rate_shape)
    rate = (
        f"{gamma(shape, v('exp_rate_1'), v('exp_rate_2'), v('exp_rate_3'))} "
        f"* {num(g.experiment_rate / g.experiment_rate_shape)}"
    )
    regular = (
        spans.select("*", F.expr(f"{rate} * _span / {day}.0D").alias("_mean"))
        .select("*", F.expr(poisson("_mean", v("exp_n"), v("exp_n_2"))).alias("_n"))
        .select("*", explode_count("_n").alias("_j"))
        .select(
            *PURCHASE_COLUMNS[:-3],
            F.expr(f"{REGULAR_NO} + _j").alias("purchase_no"),
            F.expr(f"_start + CAST(floor({v('exp_when', '_j')} * _span) AS BIGINT)").alias(
                "order_time_s"
            ),
            F.expr(
                "named_struct('experiment_id', CAST(NULL AS STRING), "
                "'arm', CAST(NULL AS STRING), 'landed', true, 'channel', CAST(NULL AS STRING))"
            ).alias("planted"),
        )
    )
    chance = "least(_t.effect * IF(app_user, 1.0D + app_spread, 1.0D - app_spread), 1.0D)"
    treated = (
        enrolled_df.select(
            "*", F.posexplode(F.expr("slice(arms, 2, size(arms) - 1)")).alias("_k", "_t")
        )
        .filter(f"{u('exp_effect', '_k')} < {chance}")
        .select(
            *PURCHASE_COLUMNS[:-3],
            F.expr(f"{TREATMENT_NO} + number * 10 + _k").alias("purchase_no"),
            F.expr(
                f"assigned_s + 1L + CAST(floor({u('exp_effect_when', '_k')} * {WINDOW_DAYS * day - 1}.0D) AS BIGINT)"
            ).alias("order_time_s"),
            F.expr(
                "named_struct('experiment_id', experiment_id, 'arm', _t.name, 'landed', landed AND arm = _t.name, "
                "'channel', CAST(NULL AS STRING))"
            ).alias("planted"),
        )
    )
    inside = f"order_time_s >= {w.period.start_s}L AND order_time_s < {w.period.end_s}L"
    return regular.unionByName(treated).filter(inside)


def arms_frame(spark: SparkSession, planted: tuple[Planted, ...]) -> DataFrame:
    """Landing ``experiments``: every arm; a weight only where shares are unequal."""
    rows = [
        (p.experiment_id, a.name, a.share if p.weighted else None, p.channel)
        for p in planted
        for a in p.arms
    ]
    return spark.createDataFrame(rows, SPECS["experiments"].schema)


def lifts(orders_df: DataFrame, enrolled_df: DataFrame) -> DataFrame:
    """``truth/experiment_lifts``: per experiment, treatment arm and metric, the arm's
    true effect on its people and control's (``people``: how many), and the share of
    the arm's assignments that never landed (``lost``: the planted sample-ratio
    mismatch)."""
    day = SECONDS_PER_DAY
    judged = enrolled_df.filter("landed").select(
        "person_id", "experiment_id", "arm", "assigned_s", "arms", "lost"
    )
    paid = orders_df.filter("status IS NULL OR status != 'refunded'").select(
        F.col("person_id").alias("_person"), "order_time_s", "amount", "planted"
    )
    in_window = (F.col("person_id") == F.col("_person")) & F.expr(
        f"order_time_s > assigned_s AND order_time_s <= assigned_s + {WINDOW_DAYS * day}L"
    )
    ours = "planted.experiment_id = experiment_id AND planted.arm IS NOT NULL"
    landed = "(planted IS NULL OR planted.landed)"
    near = judged.join(paid, in_window, "left").select(
        "*", F.expr(f"IF({ours}, planted.arm, NULL)").alias("_extra_arm")
    )
    # A channel holdout's arm can cause several orders in one window: summed per arm.
    keys = ("person_id", "experiment_id", "arm", "arms", "lost")
    per_extra = near.groupBy(*keys, "_extra_arm").agg(
        # Every landed paid order in the window but this experiment's treatments.
        F.sum(
            F.expr(f"IF(_person IS NOT NULL AND {landed} AND NOT coalesce({ours}, false), 1, 0)")
        ).alias("_others"),
        F.sum("amount").alias("_amount"),
    )
    per_person = per_extra.groupBy(*keys).agg(
        F.sum("_others").alias("others"),
        F.map_from_entries(
            F.collect_list(F.expr("IF(_extra_arm IS NOT NULL, struct(_extra_arm, _amount), NULL)"))
        ).alias("extra"),
    )
    compared = per_person.select(
        "*", F.explode(F.expr("slice(arms, 2, size(arms) - 1)")).alias("_t")
    ).filter(F.expr(f"arm = _t.name OR arm = '{CONTROL}'"))
    amount = F.expr("coalesce(extra[_t.name], 0.0D)")
    converted = F.expr("IF(extra[_t.name] IS NOT NULL AND others = 0, 1.0D, 0.0D)")
    per_arm = compared.groupBy("experiment_id", F.col("_t.name").alias("arm")).agg(
        F.avg(converted).alias("conversion_rate"),
        F.avg(amount).alias("revenue_per_person"),
        F.count(F.lit(1)).alias("people"),
        F.max(F.expr("IF(_t.name = element_at(arms, 2).name, lost, 0.0D)")).alias("lost"),
    )
    return per_arm.select(
        "experiment_id",
        "arm",
        F.explode(
            F.array(
                *(
                    F.struct(F.lit(m).alias("metric"), F.col(m).alias("true_lift"))
                    for m in ("conversion_rate", "revenue_per_person")
                )
            )
        ).alias("_m"),
        "people",
        "lost",
    ).select("experiment_id", "arm", "_m.metric", "_m.true_lift", "people", "lost")
