"""Next period's daily budget per channel, from the curves fitted on the window's days.

Per paid channel, a conversions curve and a revenue curve of daily attributed outcome
against daily spend (``curves.fit``); the total is split to maximize the revenue curves'
sum (``plan.allocate``), each channel within its bounds. A channel whose days cannot be
fitted (too few, or one spend level) keeps its current spend, with a warning.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pandas as pd

from precis.budget.curves import Hill, fit
from precis.budget.plan import Bounds, allocate
from precis.budget.settings import BudgetConfig
from precis.errors import ConfigError

log = logging.getLogger(__name__)

#: Columns of the plan rows (``propose``), before the run date and run id.
SCHEMA = (
    "channel string, model string, current_spend double, suggested_spend double, "
    "min_spend double, max_spend double, expected_conversions double, expected_revenue double, "
    "current_conversions double, current_revenue double, marginal_roi double, fitted boolean, "
    "revenue_top double, revenue_half double, revenue_shape double, revenue_base double, days int"
)


@dataclass(frozen=True)
class Fitted:
    conversions: Hill
    revenue: Hill


def bounds(points: pd.DataFrame, settings: BudgetConfig) -> dict[str, Bounds]:
    """Each channel's bounds: configured, else the lowest to the highest daily spend of
    the window (a curve is not trusted beyond the spend it was fitted on, either way)."""
    channels = sorted(points["channel"].unique())
    unknown = sorted(set(settings.channels) - set(channels))
    if unknown:
        raise ConfigError(
            f"budget.channels names {', '.join(unknown)}, which spent nothing in the window; "
            f"channels with spend: {', '.join(channels) or '(none)'}"
        )
    found = {}
    for c in channels:
        given = settings.channels.get(c)
        spent = points.loc[points["channel"] == c, "spend"]
        low = given.min if given and given.min is not None else float(spent.min())
        high = given.max if given and given.max is not None else float(spent.max())
        found[c] = Bounds(low, max(high, low))
    return found


def fitted(points: pd.DataFrame) -> dict[str, Fitted | None]:
    """Both curves of each channel, or None where its days cannot be fitted."""
    found: dict[str, Fitted | None] = {}
    for c, days in points.groupby("channel"):
        try:
            found[str(c)] = Fitted(
                fit(days["spend"].to_numpy(), days["conversions"].to_numpy()),
                fit(days["spend"].to_numpy(), days["revenue"].to_numpy()),
            )
        except ValueError as exc:
            log.warning("channel '%s' keeps its current spend: %s", c, exc)
            found[str(c)] = None
    return found


def propose(
    points: pd.DataFrame, settings: BudgetConfig
) -> tuple[pd.DataFrame, dict[str, Fitted | None]]:
    """The plan rows (``SCHEMA``) and the fitted curves, from ``daily.points``."""
    limits = bounds(points, settings)
    curves = fitted(points)
    current = points.groupby("channel")["spend"].mean().to_dict()
    days = points.groupby("channel")["spend"].size().to_dict()
    total = settings.total if settings.total is not None else float(sum(current.values()))
    # A channel without curves is held at its current spend (clipped to its bounds).
    held = {
        c: min(max(current[c], limits[c].low), limits[c].high)
        for c, f in curves.items()
        if f is None
    }
    free = {c: f.revenue for c, f in curves.items() if f is not None}
    suggested = dict(held)
    if free:
        try:
            split = allocate(
                free, total - sum(held.values()), {c: limits[c] for c in free}, start=current
            )
        except ValueError as exc:
            raise ConfigError(f"budget.total or budget.channels: {exc}") from None
        suggested.update(split)
    rows = []
    for c in sorted(curves):
        f, s, now = curves[c], suggested[c], current[c]
        rows.append(
            {
                "channel": c,
                "model": settings.model,
                "current_spend": now,
                "suggested_spend": s,
                "min_spend": limits[c].low,
                "max_spend": limits[c].high,
                "expected_conversions": float(f.conversions(s)) if f else math.nan,
                "expected_revenue": float(f.revenue(s)) if f else math.nan,
                "current_conversions": float(f.conversions(now)) if f else math.nan,
                "current_revenue": float(f.revenue(now)) if f else math.nan,
                "marginal_roi": f.revenue.marginal(s) if f else math.nan,
                "fitted": f is not None,
                "revenue_top": f.revenue.top if f else math.nan,
                "revenue_half": f.revenue.half if f else math.nan,
                "revenue_shape": f.revenue.shape if f else math.nan,
                "revenue_base": f.revenue.base if f else math.nan,
                "days": int(days[c]),
            }
        )
    return pd.DataFrame(rows), curves
