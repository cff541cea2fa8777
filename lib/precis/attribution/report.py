"""Credits of every model side by side, with spend, cost per conversion and ROI."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.attribution.journeys import AnalysisWindow, touch_label
from precis.columns import RUN_DATE, RUN_ID
from precis.metric_names import metric_name

#: Columns of gold/attribution, in order.
COLUMNS = (
    RUN_DATE,
    "model",
    "channel",
    "conversions",
    "revenue",
    "share",
    "revenue_share",
    "conversions_low",
    "conversions_high",
    "spend",
    "cost_per_conversion",
    "roi",
    "window_start",
    "window_end",
    "lookback_days",
    "granularity",
    RUN_ID,
)
SCHEMA = (
    "run_date date, model string, channel string, conversions double, revenue double, "
    "share double, revenue_share double, conversions_low double, conversions_high double, "
    "spend double, cost_per_conversion double, roi double, window_start date, "
    "window_end date, lookback_days int, granularity string, run_id string"
)


def spend_by_channel(campaign_spend: DataFrame, start, end, granularity: str) -> DataFrame:
    """``channel`` (label at the granularity), ``spend`` over the window's days."""
    return (
        campaign_spend.filter(
            (F.col("spend_date") >= F.lit(start)) & (F.col("spend_date") <= F.lit(end))
        )
        .select(
            touch_label(granularity).alias("channel"), F.col("spend").cast("double").alias("spend")
        )
        .groupBy("channel")
        .agg(F.sum("spend").alias("spend"))
    )


def complete(credits: pd.DataFrame, models: tuple[str, ...], channels: list[str]) -> pd.DataFrame:
    """Every model x channel (channels a model did not credit get 0), with shares."""
    grid = pd.MultiIndex.from_product(
        [list(models), sorted(channels)], names=["model", "channel"]
    ).to_frame(index=False)
    out = grid.merge(credits, on=["model", "channel"], how="left")
    out[["conversions", "revenue"]] = out[["conversions", "revenue"]].fillna(0.0)
    for column, total in (("share", "conversions"), ("revenue_share", "revenue")):
        sums = out.groupby("model")[total].transform("sum")
        out[column] = (out[total] / sums.where(sums != 0)).fillna(0.0)
    for column in ("conversions_low", "conversions_high"):
        if column not in out:
            out[column] = float("nan")
    return out


def rows(
    table: pd.DataFrame,
    spend: Mapping[str, float | None] | None,
    *,
    run_date: dt.date,
    window: AnalysisWindow,
    granularity: str,
    run_id: str,
) -> list[tuple[Any, ...]]:
    """The rows of gold/attribution (``COLUMNS``; None for null) from ``complete``'s table.

    ``spend``: per channel label (``spend_by_channel`` collected; None: no spend known).
    Adds ``spend``, ``cost_per_conversion`` = spend / conversions and ``roi`` =
    (revenue - spend) / spend where the channel was paid for; Spark's rules for NaN
    hold (NaN is above every number), as if the table were computed there.
    """
    out = []
    for r in table.itertuples(index=False):
        paid = None if spend is None else spend.get(r.channel)
        conversions, revenue = float(r.conversions), float(r.revenue)
        cost = roi = None
        if _above_zero(paid):
            roi = (revenue - paid) / paid
            cost = paid / conversions if _above_zero(conversions) else None
        out.append(
            (
                run_date,
                r.model,
                r.channel,
                conversions,
                revenue,
                float(r.share),
                float(r.revenue_share),
                _interval(r.conversions_low),
                _interval(r.conversions_high),
                paid,
                cost,
                roi,
                window.start,
                window.end,
                window.lookback_days,
                granularity,
                run_id,
            )
        )
    return out


def frame(records: list[tuple[Any, ...]]) -> pd.DataFrame:
    """``rows`` in pandas, as Spark's ``toPandas`` gives them (null numbers: NaN)."""
    doubles = {c: "float64" for c, t in (f.split() for f in SCHEMA.split(", ")) if t == "double"}
    return pd.DataFrame.from_records(records, columns=list(COLUMNS)).astype(doubles)


def _above_zero(value: float | None) -> TypeGuard[float]:
    return value is not None and (math.isnan(value) or value > 0)


def _interval(value: float) -> float | None:
    # NaN in pandas: this model gave no interval.
    return None if math.isnan(value) else float(value)


def share_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``<model>_<channel>_share`` of every row (characters MLflow rejects become ``_``)."""
    return {f"{r.model}_{metric_name(r.channel)}_share": float(r.share) for r in table.itertuples()}


def conversions_text(table: pd.DataFrame, models: Sequence[str]) -> str:
    """Credited conversions, a channel per line and a model per column."""
    pivot = table.pivot(index="channel", columns="model", values="conversions")[list(models)]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        return pivot.round(1).to_string()


def comparison_figure(table: pd.DataFrame, title: str):
    """Grouped bars: each model's conversion share per channel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(table["model"]))  # the configured order, not alphabetical
    pivot = table.pivot(index="channel", columns="model", values="share").fillna(0.0)[models]
    fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(pivot)), 4.5))
    pivot.plot.bar(ax=ax, width=0.85)
    ax.set_ylabel("share of conversions")
    ax.set_xlabel("")
    ax.set_title(title)
    ax.legend(ncol=4, fontsize=8)
    fig.tight_layout()
    return fig
