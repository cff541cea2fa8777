"""Multi-touch attribution: journeys, rule-based, Markov and Shapley models: ``build``.

``build`` reads and writes nothing and logs nothing to MLflow: the ``attribution`` job
reads the inputs, writes the table and reports. Journeys are computed once on Spark
and kept as one summary row each; each model reduces them to a few rows per channel,
which meet on the driver, get spend and ROI there and cross back to Spark once, as this
run date's table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame

from precis import tables as T
from precis.attribution import journeys, models, report
from precis.attribution.journeys import AnalysisWindow
from precis.attribution.settings import AttributionConfig
from precis.errors import MissingDatasetError
from precis.frames import kept_observed
from precis.identity.resolve import isolated_identifiers, resolve
from precis.progress import Step, silent_step

__all__ = ["AttributionInputs", "AttributionOutputs", "build"]

Steps = Callable[[str], AbstractContextManager[Step]]


@dataclass(frozen=True)
class AttributionInputs:
    touchpoints: DataFrame
    orders: DataFrame
    identity_map: DataFrame
    guards: DataFrame | None = None  # identity guards: isolated identifiers are nobody's
    campaign_spend: DataFrame | None = None


@dataclass(frozen=True)
class AttributionOutputs:
    table: DataFrame  # report.COLUMNS: this run date's rows of gold/attribution
    credits: pd.DataFrame  # the same rows on the driver (NaN for null), for reports
    counts: dict[str, float]  # journeys, conversions and revenue attributed and left out
    models: dict[str, Any]  # what Markov and Shapley found
    window: AnalysisWindow
    channels: int  # channels of the window's journeys


def build(
    inputs: AttributionInputs,
    settings: AttributionConfig,
    *,
    run_date: dt.date,
    run_id: str,
    steps: Steps | None = None,
) -> AttributionOutputs:
    """Credits per channel of the conversions in the window ending on ``run_date``.

    run_id: recorded with every row. steps: ``Progress.step`` to report each step
    (three of them).
    """
    step = steps or silent_step
    window = AnalysisWindow.ending(run_date, settings.window_days, settings.lookback_days)
    touches, conversions = _resolved(inputs, settings)
    with contextlib.ExitStack() as scope:
        with step("journeys") as info:
            conversions, in_window = scope.enter_context(
                kept_observed(conversions, journeys.window_metrics(window))
            )
            summaries, found = scope.enter_context(
                kept_observed(
                    journeys.summaries(journeys.journey_touches(touches, conversions, window)),
                    journeys.journey_metrics(),
                )
            )
            counts = journeys.counts(found, in_window)
            if counts["converting_journeys"] == 0:
                raise MissingDatasetError(
                    f"no conversion between {window.start} and {window.end} has a touch within "
                    f"{settings.lookback_days} days before it: nothing to attribute "
                    f"({counts['journeys']:,} non-converting journeys, "
                    f"{counts['untouched_conversions']:,} untouched conversions)"
                )
            info.rows = int(counts["journeys"])
            info.detail = (
                f"{counts['converting_journeys']:,} converting, "
                f"{counts['journeys'] - counts['converting_journeys']:,} not; "
                f"{counts['untouched_conversions']:,} conversions without touches left out "
                f"({window.start} to {window.end}, lookback {settings.lookback_days} days)"
            )
        with step("models") as info:
            credited, found_by_model, channels = models.credits(summaries, settings)
            info.detail = f"{', '.join(settings.models)} over {len(channels)} channels"
    with step("spend and ROI") as info:
        spend = None
        if inputs.campaign_spend is not None:
            by_channel = report.spend_by_channel(
                inputs.campaign_spend, window.start, window.end, settings.granularity
            )
            spend = {r["channel"]: r["spend"] for r in by_channel.collect()}
        records = report.rows(
            report.complete(credited, settings.models, channels),
            spend,
            run_date=run_date,
            window=window,
            granularity=settings.granularity,
            run_id=run_id,
        )
        final = report.frame(records)
        info.detail = "spend known for " + (
            f"{int(final.loc[final.model == settings.models[0], 'spend'].notna().sum())} "
            f"of {len(channels)} channels"
            if spend is not None
            else f"no channel ({T.CAMPAIGN_SPEND.ref} absent)"
        )
    return AttributionOutputs(
        # The one crossing from the driver back to Spark: a few rows per channel.
        table=inputs.touchpoints.sparkSession.createDataFrame(records, report.SCHEMA),
        credits=final,
        counts=counts,
        models=found_by_model,
        window=window,
        channels=len(channels),
    )


def _resolved(
    inputs: AttributionInputs, settings: AttributionConfig
) -> tuple[DataFrame, DataFrame]:
    """(touch rows, conversion rows) of known people; a bad revenue or filter fails here."""
    isolated = isolated_identifiers(inputs.guards) if inputs.guards is not None else None
    touches = journeys.touches(
        resolve(inputs.touchpoints, inputs.identity_map, isolated), settings.granularity
    )
    orders = resolve(inputs.orders, inputs.identity_map, isolated)
    conversions = journeys.checked_conversions(orders, settings.revenue, settings.conversion_filter)
    return touches, conversions
