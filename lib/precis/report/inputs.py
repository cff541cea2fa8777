"""What the report reads, and the small helpers every section uses.

A section's figures are aggregates computed by Spark and collected: a row per dataset,
stage, tag, segment, channel or run date, never per person. Values become JSON scalars
here, once (dates as ISO strings, decimals as floats), so the page embeds exactly what
the figures hold.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import RUN_DATE

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Inputs:
    """The tables of one lakehouse the report reads; None where a table does not exist.

    Snapshot tables (customer value, segments, recommendations) are read whole: the
    sections pick the run date's snapshot and the ones before it for trends.
    """

    run_date: dt.date
    ingest_runs: DataFrame | None = None
    quarantine: DataFrame | None = None
    identity_runs: DataFrame | None = None
    identity_map: DataFrame | None = None
    identity_changes: DataFrame | None = None
    identity_guards: DataFrame | None = None
    customer_value: DataFrame | None = None
    tag_stats: DataFrame | None = None
    segments: DataFrame | None = None
    recommendations: DataFrame | None = None
    items: DataFrame | None = None
    attribution: DataFrame | None = None
    budget_plan: DataFrame | None = None
    experiment_results: DataFrame | None = None
    model_metrics: DataFrame | None = None
    evaluations: DataFrame | None = None
    pipeline_runs: DataFrame | None = None


def rows(df: DataFrame) -> Rows:
    """``df``'s rows as JSON-able dicts, in the frame's order (sort it first)."""
    return [{k: scalar(v) for k, v in r.asDict().items()} for r in df.collect()]


def scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def on(run_date: dt.date) -> Column:
    """The rows of ``run_date``."""
    return F.col(RUN_DATE) == F.lit(run_date)


def recent(df: DataFrame, run_date: dt.date, runs: int) -> DataFrame:
    """The rows of the last ``runs`` run dates up to ``run_date`` that ``df`` has.

    Which dates those are is one small aggregate (distinct run dates), so a trend follows
    the dates the jobs ran, not the calendar: a weekly job's trend shows its last weeks.
    """
    dates = (
        df.filter(F.col(RUN_DATE) <= F.lit(run_date))
        .select(RUN_DATE)
        .distinct()
        .orderBy(F.col(RUN_DATE).desc())
        .limit(runs)
    )
    return df.join(F.broadcast(dates), on=RUN_DATE, how="left_semi")


def sums(df: DataFrame, by: Sequence[str], columns: Sequence[str]) -> DataFrame:
    """Per group of ``by``: each column's sum, nulls (a column added later) as 0."""
    return df.groupBy(*by).agg(
        *[F.coalesce(F.sum(c), F.lit(0)).cast("long").alias(c) for c in columns]
    )
