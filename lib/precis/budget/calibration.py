"""Attribution against incrementality: what each model credits a channel with, on the
people its holdout experiment exposed, against what the holdout measured it causes.

A *channel holdout* is an experiment whose arms name a channel in ``silver/experiments``:
its control arm was withheld from the channel, every other arm reached as usual. Its
result on ``conversion_rate`` (``gold/experiment_results``) gives the channel's
*incremental conversions* in an exposed arm: ``lift_abs x n``, with the interval
``ci_low x n`` to ``ci_high x n``. The same arm's people converted; each model credits
the channel with part of their conversions: the journey of each person's first paid
order in their window (the order that made them convert), credited by the model fitted
on those people's journeys. ``credited / incremental`` is the model's over-crediting of
the channel; over every holdout, the model with the least summed ``|credited -
incremental|`` is the nearest to measured incrementality.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ONE_ID, ORDER_ID, RUN_DATE
from precis.experiments import outcomes as O

#: Columns of the calibration rows (``compare``), before the run date and run id.
COLUMNS = (
    "experiment_id",
    "arm",
    "channel",
    "model",
    "people",
    "credited",
    "incremental",
    "incremental_low",
    "incremental_high",
    "ratio",
    "within_interval",
    "distance",
    "rank",
    "closest",
)
SCHEMA = (
    "experiment_id string, arm string, channel string, model string, people long, "
    "credited double, incremental double, incremental_low double, incremental_high double, "
    "ratio double, within_interval boolean, distance double, rank int, closest boolean"
)


@dataclass(frozen=True)
class Holdout:
    """One exposed arm of a channel holdout, as judged on conversion."""

    experiment_id: str
    arm: str
    channel: str
    people: int  # in the exposed arm
    lift: float  # conversion_rate lift_abs over control
    low: float
    high: float

    @property
    def incremental(self) -> float:
        return self.lift * self.people


def holdouts(results: DataFrame, arms: DataFrame, control_arm: str) -> list[Holdout]:
    """Every exposed arm of the channel holdouts judged in ``results``
    (``gold/experiment_results`` up to the run date: the latest judgement of each).

    ``arms``: ``silver/experiments``; an experiment whose arms name two channels is not
    a holdout of one channel and is left out.
    """
    channel_of = (
        arms.filter(F.col("channel").isNotNull())
        .groupBy(O.EXPERIMENT)
        .agg(F.min("channel").alias("channel"), F.countDistinct("channel").alias("_channels"))
        .filter("_channels = 1")
    )
    latest = Window.partitionBy(O.EXPERIMENT)
    judged = (
        results.filter((F.col("metric") == "conversion_rate") & (F.col(O.ARM) != control_arm))
        .withColumn("_last", F.max(RUN_DATE).over(latest))
        .filter(F.col(RUN_DATE) == F.col("_last"))
        .join(F.broadcast(channel_of), O.EXPERIMENT, how="inner")
    )
    # One row per holdout arm: a handful.
    return [
        Holdout(
            r[O.EXPERIMENT],
            r[O.ARM],
            r["channel"],
            int(r["n"]),
            r["lift_abs"],
            r["ci_low"],
            r["ci_high"],
        )
        for r in judged.orderBy(O.EXPERIMENT, O.ARM).collect()
    ]


def first_conversions(
    assigned: DataFrame, conversion_rows: DataFrame, window_days: int
) -> DataFrame:
    """``experiment_id``, ``arm``, ``one_id``, ``journey_id``: each assigned person's
    first conversion in (assigned_at, assigned_at + window_days].

    ``assigned``: ``outcomes.first_assignments`` rows; ``conversion_rows``:
    ``journeys.conversions`` (a converting journey's id is its order's).
    """
    inside = (F.col(ONE_ID) == F.col("_person")) & O.in_window(F.col("at"), window_days)
    found = assigned.join(
        conversion_rows.select(F.col(ONE_ID).alias("_person"), ORDER_ID, "at"), inside, how="inner"
    )
    first = Window.partitionBy(O.EXPERIMENT, O.ARM, ONE_ID).orderBy("at", ORDER_ID)
    return (
        found.withColumn("_n", F.row_number().over(first))
        .filter("_n = 1")
        .select(O.EXPERIMENT, O.ARM, ONE_ID, F.col(ORDER_ID).alias("journey_id"))
    )


def arm_journeys(summaries: DataFrame, firsts: DataFrame, people: DataFrame) -> DataFrame:
    """The journeys a holdout arm's models are fitted on: its people's first converting
    journeys in their windows (``firsts``), and their journeys that led nowhere
    (``people``: ``one_id``)."""
    converting = summaries.filter(F.col("converted")).join(
        firsts.select("journey_id"), "journey_id", "left_semi"
    )
    idle = summaries.filter(~F.col("converted")).join(people.select(ONE_ID), ONE_ID, "left_semi")
    return converting.unionByName(idle)


def compare(
    found: list[Holdout], credits: Mapping[tuple[str, str], pd.DataFrame], models: tuple[str, ...]
) -> pd.DataFrame:
    """``COLUMNS``: each holdout arm and model, ranked by the model's summed distance.

    ``credits``: by (experiment, arm), ``models.credits``' frame (model, channel,
    conversions) over that arm's journeys.
    """
    rows = []
    for h in found:
        got = credits[(h.experiment_id, h.arm)]
        for model in models:
            mine = got[(got["model"] == model) & (got["channel"] == h.channel)]
            credited = float(mine["conversions"].sum())
            incremental = h.incremental
            rows.append(
                {
                    "experiment_id": h.experiment_id,
                    "arm": h.arm,
                    "channel": h.channel,
                    "model": model,
                    "people": h.people,
                    "credited": credited,
                    "incremental": incremental,
                    "incremental_low": h.low * h.people,
                    "incremental_high": h.high * h.people,
                    "ratio": credited / incremental if incremental > 0 else float("nan"),
                    "within_interval": h.low * h.people <= credited <= h.high * h.people,
                }
            )
    return ranked(pd.DataFrame(rows, columns=list(COLUMNS[:11])), models)


def ranked(rows: pd.DataFrame, models: tuple[str, ...]) -> pd.DataFrame:
    """``rows`` with each model's ``distance`` (its summed ``|credited - incremental|``
    over the holdouts), ``rank`` (1: nearest; ties in ``models`` order) and ``closest``."""
    out = rows.copy()
    out["_gap"] = (out["credited"] - out["incremental"]).abs()
    distance = out.groupby("model")["_gap"].sum()
    order = sorted(distance.index, key=lambda m: (round(float(distance[m]), 9), models.index(m)))
    out["distance"] = out["model"].map(distance).astype(float)
    out["rank"] = out["model"].map({m: i + 1 for i, m in enumerate(order)}).astype("int32")
    out["closest"] = out["rank"] == 1
    return out.drop(columns="_gap")[list(COLUMNS)]
