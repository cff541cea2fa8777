"""What the budget job prints and logs: the plan as text, metrics, and a plot of the
fitted revenue curves with the current and suggested spend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from precis.budget.proposal import Fitted
from precis.metric_names import metric_name


def text(plan: pd.DataFrame) -> str:
    """One line per channel: spend now and suggested, expected revenue, marginal ROI."""
    head = (
        f"  {'channel':<14} {'spend now':>11} {'suggested':>11} {'revenue now':>12} "
        f"{'expected':>12} {'marginal ROI':>12}"
    )
    rows = (
        f"  {r.channel:<14} {r.current_spend:>11,.2f} {r.suggested_spend:>11,.2f} "
        f"{r.current_revenue:>12,.2f} {r.expected_revenue:>12,.2f} {r.marginal_roi:>12.3f}"
        for r in plan.itertuples()
    )
    return "\n".join([head, *rows])


def metrics(plan: pd.DataFrame, compared: pd.DataFrame | None) -> dict[str, float]:
    """Daily totals of the plan and the current split; each model's calibration distance."""
    now, then = float(plan["current_revenue"].sum()), float(plan["expected_revenue"].sum())
    found = {
        "current_spend": float(plan["current_spend"].sum()),
        "suggested_spend": float(plan["suggested_spend"].sum()),
        "current_revenue": now,
        "expected_revenue": then,
        "expected_revenue_gain": then / now - 1.0 if now > 0 else float("nan"),
    }
    for r in plan.itertuples():
        found[f"suggested_spend_{metric_name(str(r.channel))}"] = float(r.suggested_spend)
    if compared is not None:
        for model, distance in compared.groupby("model")["distance"].first().items():
            found[f"calibration_distance_{metric_name(str(model))}"] = float(distance)
    return found


def calibration_text(compared: pd.DataFrame) -> str:
    """Each model's distance and rank, nearest first."""
    ranks = compared.groupby("model")[["distance", "rank"]].first().sort_values("rank")
    return "\n".join(
        f"  {int(rank)}. {model:<16} summed |credited - incremental| {distance:,.1f}"
        for model, distance, rank in zip(ranks.index, ranks["distance"], ranks["rank"], strict=True)
    )


def curves_figure(
    plan: pd.DataFrame, points: pd.DataFrame, curves: dict[str, Fitted | None], title: str
) -> Any:
    """One panel per channel: daily (spend, revenue) points, the fitted curve, and the
    current and suggested spend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    channels = list(plan["channel"])
    fig, axes = plt.subplots(1, len(channels), figsize=(3.2 * len(channels), 3.0), squeeze=False)
    for ax, channel in zip(axes[0], channels, strict=True):
        days = points[points["channel"] == channel]
        row = plan[plan["channel"] == channel].iloc[0]
        ax.scatter(days["spend"], days["revenue"], s=8, alpha=0.5, color="grey")
        f = curves.get(channel)
        if f is not None:
            xs = np.linspace(0.0, max(float(days["spend"].max()), row.suggested_spend) * 1.1, 100)
            ax.plot(xs, f.revenue(xs), color="black")
        ax.axvline(row.current_spend, color="tab:blue", linestyle="--", label="current")
        ax.axvline(row.suggested_spend, color="tab:orange", label="suggested")
        ax.set_title(channel)
        ax.set_xlabel("daily spend")
    axes[0][0].set_ylabel("attributed revenue a day")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
