"""Credits of every model side by side, with spend, cost per conversion and ROI."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.attribution.journeys import touch_label

#: Columns of gold/attribution, in order.
COLUMNS = (
    "run_date",
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
    "run_id",
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


def with_spend(credits: DataFrame, spend: DataFrame | None) -> DataFrame:
    """Adds ``spend``, ``cost_per_conversion`` and ``roi`` = (revenue - spend) / spend."""
    if spend is None:
        return credits.select(
            "*",
            *(F.lit(None).cast("double").alias(c) for c in ("spend", "cost_per_conversion", "roi")),
        )
    joined = credits.join(F.broadcast(spend), "channel", "left")
    paid = F.col("spend") > 0
    return joined.select(
        *credits.columns,
        "spend",
        F.when(paid & (F.col("conversions") > 0), F.col("spend") / F.col("conversions")).alias(
            "cost_per_conversion"
        ),
        F.when(paid, (F.col("revenue") - F.col("spend")) / F.col("spend")).alias("roi"),
    )


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
