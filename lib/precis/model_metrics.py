"""``meta/model_metrics``: the quality figures a job measured in its own run, as rows.

MLflow holds them too, but a report and a notebook read tables: the run report
(``precis.report``) takes its model figures from here, so the page and the job agree by
construction. One row per (run date, job, metric, x): ``x`` is null for a single
figure and set for the points of a curve (a holdout plot's day or frequency).
A job's rows of a run date are replaced whole by its rerun.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession

from precis.columns import RUN_DATE

SCHEMA = "run_date date, run_id string, job string, metric string, x double, value double"

Curve = Sequence[tuple[float, float]]


def frame(
    spark: SparkSession,
    run_date: dt.date,
    run_id: str,
    job: str,
    metrics: Mapping[str, float],
    curves: Mapping[str, Curve] | None = None,
) -> DataFrame:
    """The rows of one job run: each metric, then each curve's (x, value) points.
    NaN (a metric with nothing to measure) is written as null."""
    rows: list[tuple[dt.date, str, str, str, float | None, float | None]] = [
        (run_date, run_id, job, name, None, _number(v)) for name, v in metrics.items()
    ]
    for name, points in (curves or {}).items():
        rows.extend((run_date, run_id, job, name, float(x), _number(y)) for x, y in points)
    return spark.createDataFrame(rows, SCHEMA)


def scope(run_date: dt.date, job: str) -> str:
    """The rows a job's run of ``run_date`` replaces."""
    return f"{RUN_DATE} = '{run_date.isoformat()}' AND job = '{job}'"


def _number(value: float) -> float | None:
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number
