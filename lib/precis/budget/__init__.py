"""Budget plans and attribution calibration: ``build``.

``curves.fit`` fits a saturating (Hill) curve of a channel's daily attributed outcome
against its daily spend; ``plan.allocate`` splits a total budget across channels, within
per-channel bounds, to maximize the curves' summed outcome; ``proposal.propose`` does
both for every paid channel. ``calibration`` compares every attribution model's credit
with the channel holdout experiments. ``build`` reads and writes nothing: on Spark it
cuts journeys once (``precis.attribution.journeys``) and reduces them to a few rows per
day and channel, and per holdout arm and model; the fits run on the driver over those.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis import experiments
from precis.attribution import journeys, models
from precis.attribution.journeys import AnalysisWindow
from precis.attribution.settings import AttributionConfig
from precis.budget import calibration, daily, proposal
from precis.budget.settings import BudgetConfig
from precis.columns import ONE_ID, RUN_DATE, RUN_ID
from precis.errors import MissingDatasetError
from precis.experiments import outcomes as O
from precis.experiments.settings import ExperimentsConfig
from precis.frames import kept
from precis.identity.resolve import isolated_identifiers, resolve
from precis.progress import Step, silent_step

__all__ = ["BudgetInputs", "BudgetOutputs", "build"]

Steps = Callable[[str], AbstractContextManager[Step]]


@dataclass(frozen=True)
class BudgetInputs:
    touchpoints: DataFrame
    orders: DataFrame
    campaign_spend: DataFrame
    identity_map: DataFrame
    guards: DataFrame | None = None
    assignments: DataFrame | None = None  # silver experiment_assignments
    arms: DataFrame | None = None  # silver experiments: the channel of a holdout
    results: DataFrame | None = None  # gold experiment_results up to the run date


@dataclass(frozen=True)
class BudgetOutputs:
    plan: DataFrame  # gold/budget_plan rows of the run date
    plan_rows: pd.DataFrame
    curves: dict[str, proposal.Fitted | None]
    points: pd.DataFrame  # daily.POINT_COLUMNS
    calibration: DataFrame | None  # gold/attribution_calibration rows, when holdouts exist
    calibration_rows: pd.DataFrame | None
    window: AnalysisWindow


@dataclass(frozen=True)
class Settings:
    """What ``build`` reads of the config: its own section and the two it shares."""

    budget: BudgetConfig
    attribution: AttributionConfig
    experiments: ExperimentsConfig


def build(
    inputs: BudgetInputs,
    settings: Settings,
    *,
    run_date: dt.date,
    run_id: str,
    steps: Steps | None = None,
) -> BudgetOutputs:
    """The plan for the days after ``run_date`` and, with holdouts, the calibration.

    steps: ``Progress.step`` to report each step (three of them).
    """
    step = steps or silent_step
    s = settings.budget
    window = AnalysisWindow.ending(run_date, s.window_days, settings.attribution.lookback_days)
    isolated = isolated_identifiers(inputs.guards) if inputs.guards is not None else None
    touches = journeys.touches(resolve(inputs.touchpoints, inputs.identity_map, isolated))
    conversions = journeys.checked_conversions(
        resolve(inputs.orders, inputs.identity_map, isolated),
        settings.attribution.revenue,
        settings.attribution.conversion_filter,
    )
    found = _holdouts(inputs, settings)
    assigned = _exposed(inputs, isolated, found)
    start = window.start
    if assigned is not None:
        # One row: the earliest exposed assignment, so the journeys reach back to it.
        earliest = assigned.agg(F.min(O.ASSIGNED_AT)).collect()[0][0]
        if earliest is not None:
            start = min(start, earliest.date())
    reach = AnalysisWindow(start, run_date, window.lookback_days)
    with kept(journeys.journey_touches(touches, conversions, reach)) as (rows,):
        with step("daily spend and credit") as info:
            spend = daily.spend_by_day(inputs.campaign_spend, window.start, run_date)
            credit = daily.credit_by_day(
                rows, conversions, s.model, models.rule_settings(settings.attribution)
            )
            points = daily.points(spend, credit)
            if points.empty:
                raise MissingDatasetError(
                    f"no campaign spend between {window.start} and {run_date}: nothing to plan"
                )
            info.rows = len(points)
            info.detail = (
                f"{points['channel'].nunique()} paid channels over {points['day'].nunique()} "
                f"days ({window.start} to {run_date}), credited by {s.model}"
            )
        with step("calibrate") as info:
            compared = None
            if assigned is not None and found:
                compared = _calibrate(rows, conversions, assigned, found, settings)
                best = compared.loc[compared["closest"], "model"].iloc[0]
                info.detail = f"{len(found)} holdout arm(s); nearest model: {best}"
            else:
                info.detail = "no channel holdout judged: skipped"
    with step("plan") as info:
        planned, curves = proposal.propose(points, s)
        info.detail = (
            f"{planned['suggested_spend'].sum():,.2f} a day over {len(planned)} channels; "
            f"expected revenue {planned['expected_revenue'].sum():,.2f} "
            f"(current split {planned['current_revenue'].sum():,.2f})"
        )
    spark = inputs.touchpoints.sparkSession
    stamp = (F.lit(run_date).alias(RUN_DATE), F.lit(run_id).alias(RUN_ID))
    window_cols = (F.lit(window.start).alias("window_start"), F.lit(run_date).alias("window_end"))
    # The crossings from the driver back to Spark: a few rows per channel and model.
    plan = _nulls(spark.createDataFrame(planned, proposal.SCHEMA)).select("*", *window_cols, *stamp)
    calibrated = (
        _nulls(spark.createDataFrame(compared, calibration.SCHEMA)).select("*", *stamp)
        if compared is not None
        else None
    )
    return BudgetOutputs(plan, planned, curves, points, calibrated, compared, window)


def _nulls(frame: DataFrame) -> DataFrame:
    """pandas' NaN (no value: a channel not fitted, a ratio over no lift) as null."""
    return frame.select(
        *(
            F.when(F.isnan(f.name), F.lit(None)).otherwise(F.col(f.name)).alias(f.name)
            if f.dataType.typeName() == "double"
            else F.col(f.name)
            for f in frame.schema.fields
        )
    )


def _holdouts(inputs: BudgetInputs, settings: Settings) -> list[calibration.Holdout]:
    if not settings.budget.calibrate or inputs.results is None or inputs.arms is None:
        return []
    return calibration.holdouts(inputs.results, inputs.arms, settings.experiments.control_arm)


def _exposed(
    inputs: BudgetInputs, isolated: DataFrame | None, found: list[calibration.Holdout]
) -> DataFrame | None:
    """The first assignments of the holdouts' exposed arms, with their person."""
    if not found or inputs.assignments is None:
        return None
    arms = inputs.touchpoints.sparkSession.createDataFrame(
        [(h.experiment_id, h.arm) for h in found], f"{O.EXPERIMENT} string, {O.ARM} string"
    )
    people = experiments.people(
        experiments.ExperimentInputs(inputs.assignments, inputs.orders, inputs.identity_map),
        isolated,
    )
    return O.first_assignments(people).join(F.broadcast(arms), [O.EXPERIMENT, O.ARM], "left_semi")


def _calibrate(
    rows: DataFrame,
    conversions: DataFrame,
    assigned: DataFrame,
    found: list[calibration.Holdout],
    settings: Settings,
) -> pd.DataFrame:
    """Every model's credit on each holdout arm, compared (``calibration.compare``)."""
    summaries = journeys.summaries(rows)
    firsts = calibration.first_conversions(assigned, conversions, settings.experiments.window_days)
    credits = {}
    # A driver loop over the holdout arms (a few per channel), not over data.
    for h in found:
        mine = (F.col(O.EXPERIMENT) == h.experiment_id) & (F.col(O.ARM) == h.arm)
        arm_rows = calibration.arm_journeys(
            summaries, firsts.filter(mine), assigned.filter(mine).select(ONE_ID)
        )
        credits[(h.experiment_id, h.arm)] = models.credits(arm_rows, settings.attribution)[0]
    return calibration.compare(found, credits, settings.attribution.models)
