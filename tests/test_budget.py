"""Budget plans on planted response curves: fits that recover them, splits that reach
the best the curves allow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from precis.budget.calibration import Holdout, compare
from precis.budget.curves import Hill, fit
from precis.budget.daily import POINT_COLUMNS
from precis.budget.plan import Bounds, allocate, total
from precis.budget.proposal import propose
from precis.budget.settings import BudgetConfig
from precis.errors import ConfigError

PLANTED = {
    "search": Hill(top=900.0, half=400.0, shape=1.0),
    "email": Hill(top=300.0, half=60.0, shape=0.8),
    "social": Hill(top=700.0, half=900.0, shape=1.6),  # an S: little below a threshold
    "display": Hill(top=200.0, half=800.0, shape=1.0),
    "affiliate": Hill(top=500.0, half=300.0, shape=1.2),
}
CURRENT = {"search": 300.0, "email": 200.0, "social": 400.0, "display": 500.0, "affiliate": 100.0}


def brute_force(curves: dict[str, Hill], budget: float, grid: int = 400) -> float:
    """The best two-channel split on a fine grid."""
    a, b = sorted(curves)
    return max(curves[a](x) + curves[b](budget - x) for x in np.linspace(0.0, budget, grid + 1))


def test_a_fit_recovers_the_planted_curve_from_noisy_days():
    rng = np.random.default_rng(5)
    for true in PLANTED.values():
        spend = true.half * rng.uniform(0.2, 2.5, size=120)
        outcome = true(spend) * (1 + 0.1 * rng.standard_normal(120))
        got = fit(spend, outcome)
        seen = np.linspace(spend.min(), spend.max(), 50)
        assert np.max(np.abs(got(seen) - true(seen)) / true(seen).max()) < 0.08, (true, got)


def test_one_spend_level_cannot_make_a_curve():
    with pytest.raises(ValueError, match="at least 4 days of differing spend"):
        fit(np.full(30, 100.0), np.full(30, 5.0))


@pytest.mark.parametrize(
    "curves",
    [
        {"a": Hill(500.0, 200.0, 1.0), "b": Hill(300.0, 50.0, 1.0)},  # concave
        {"a": Hill(500.0, 200.0, 2.5), "b": Hill(300.0, 50.0, 0.7)},  # an S and a bend
    ],
)
def test_the_split_reaches_the_best_one(curves):
    got = allocate(curves, 600.0)
    assert sum(got.values()) == pytest.approx(600.0)
    assert total(curves, got) >= brute_force(curves, 600.0) * (1 - 1e-3)


def test_a_plan_from_fitted_curves_is_near_the_planted_optimum_and_beats_the_current_split():
    rng = np.random.default_rng(11)
    budget = sum(CURRENT.values())
    bounds = {c: Bounds(0.25 * s, 3.0 * s) for c, s in CURRENT.items()}
    fitted = {}
    for channel, true in PLANTED.items():
        # 90 days around the current spend, as a channel manager varies it.
        spend = CURRENT[channel] * rng.uniform(0.5, 1.5, size=90)
        outcome = rng.poisson(true(spend) / 2.0) * 2.0  # counts, not smooth values
        fitted[channel] = fit(spend, outcome)
    plan = allocate(fitted, budget, bounds, start=CURRENT)
    best = allocate(PLANTED, budget, bounds, start=CURRENT)
    assert all(bounds[c].low - 1e-6 <= plan[c] <= bounds[c].high + 1e-6 for c in plan)
    assert total(PLANTED, plan) >= 0.95 * total(PLANTED, best)
    assert total(PLANTED, plan) > total(PLANTED, CURRENT)


def test_a_budget_the_bounds_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="does not fit the channels' bounds"):
        allocate(PLANTED, 10.0, {c: Bounds(low=5.0) for c in PLANTED})


def test_a_fit_separates_the_credit_no_spend_changes():
    # Attribution credits a channel with conversions that happen anyway: a level under
    # the curve, which the fit must not bend the curve to explain.
    rng = np.random.default_rng(3)
    true = Hill(top=400.0, half=300.0, shape=1.2, base=150.0)
    spend = 300.0 * rng.uniform(0.2, 1.8, size=90)
    got = fit(spend, true(spend) * (1 + 0.05 * rng.standard_normal(90)))
    # How much is level and how much curve is not identified well over this range of
    # spend; what the split depends on, the return of the next unit, is.
    assert got.base > 0
    for spend_level in (150.0, 300.0, 450.0):
        assert got.marginal(spend_level) == pytest.approx(true.marginal(spend_level), rel=0.15)


# ------------------------------------------------------------------ the proposal
def _points(curves: dict[str, Hill], days: int = 90, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for channel, curve in curves.items():
        for day in range(days):
            spend = CURRENT[channel] * rng.uniform(0.2, 1.8)
            conversions = float(rng.poisson(curve(spend) / 100.0))
            rows.append((day, channel, spend, conversions, 100.0 * conversions))
    return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def test_the_proposal_splits_the_current_total_by_the_fitted_revenue_curves():
    points = _points(PLANTED)
    plan, curves = propose(points, BudgetConfig())
    assert list(plan["channel"]) == sorted(PLANTED)
    current = points.groupby("channel")["spend"].mean()
    assert plan.set_index("channel")["current_spend"].to_dict() == pytest.approx(current.to_dict())
    assert plan["suggested_spend"].sum() == pytest.approx(current.sum())
    # Bounds by default: the lowest to the highest daily spend seen.
    low, top = points.groupby("channel")["spend"].min(), points.groupby("channel")["spend"].max()
    assert plan.set_index("channel")["min_spend"].to_dict() == pytest.approx(low.to_dict())
    assert plan.set_index("channel")["max_spend"].to_dict() == pytest.approx(top.to_dict())
    split = dict(zip(plan["channel"], plan["suggested_spend"], strict=True))
    best = allocate(PLANTED, current.sum(), {c: Bounds(low[c], top[c]) for c in PLANTED})
    assert total(PLANTED, split) >= 0.95 * total(PLANTED, best)
    assert total(PLANTED, split) > total(PLANTED, current.to_dict())
    # Where no bound binds, the next unit of spend returns the same everywhere.
    inside = (plan["suggested_spend"] > plan["min_spend"] + 1e-6) & (
        plan["suggested_spend"] < plan["max_spend"] - 1e-6
    )
    free = plan[inside]
    assert len(free) >= 2
    assert free["marginal_roi"].max() == pytest.approx(free["marginal_roi"].min(), rel=0.02)
    row = plan.set_index("channel").loc["search"]
    assert row["expected_revenue"] == pytest.approx(
        curves["search"].revenue(row["suggested_spend"])
    )


def test_a_channel_that_cannot_be_fitted_keeps_its_spend_and_bounds_are_kept():
    points = _points({"search": PLANTED["search"], "email": PLANTED["email"]})
    points.loc[points["channel"] == "email", "spend"] = 50.0  # one spend level
    settings = BudgetConfig.model_validate(
        {"total": 360.0, "channels": {"search": {"min": 100.0, "max": 320.0}}}
    )
    plan = propose(points, settings)[0].set_index("channel")
    assert plan.loc["email", "suggested_spend"] == 50.0
    assert not plan.loc["email", "fitted"]
    assert plan.loc["search", "suggested_spend"] == pytest.approx(310.0)  # the rest
    assert plan.loc["search", "min_spend"] == 100.0
    # A bound given alone leaves the other to the days seen.
    settings = BudgetConfig.model_validate({"channels": {"search": {"max": 320.0}}})
    plan = propose(points, settings)[0].set_index("channel")
    seen = points.loc[points["channel"] == "search", "spend"]
    assert (plan.loc["search", "min_spend"], plan.loc["search", "max_spend"]) == (seen.min(), 320.0)


def test_bounds_for_a_channel_without_spend_name_it():
    with pytest.raises(ConfigError, match="budget.channels names tv, which spent nothing"):
        propose(_points(PLANTED), BudgetConfig.model_validate({"channels": {"tv": {"max": 5}}}))
    with pytest.raises(ConfigError, match="budget.total or budget.channels"):
        propose(_points(PLANTED), BudgetConfig.model_validate({"total": 1e9}))


# ----------------------------------------------------------------- calibration
def test_models_are_ranked_by_their_summed_distance_to_the_measured_increments():
    found = [
        Holdout("holdout_search", "exposed", "search", 1000, 0.02, 0.01, 0.03),
        Holdout("holdout_email", "exposed", "email", 500, 0.01, -0.01, 0.03),
    ]
    credits = {
        ("holdout_search", "exposed"): pd.DataFrame(
            {
                "model": ["last_touch", "first_touch", "last_touch"],
                "channel": ["search", "search", "email"],
                "conversions": [35.0, 22.0, 7.0],
            }
        ),
        ("holdout_email", "exposed"): pd.DataFrame(
            {
                "model": ["last_touch", "first_touch"],
                "channel": ["email", "email"],
                "conversions": [5.0, 12.0],
            }
        ),
    }
    got = compare(found, credits, ("last_touch", "first_touch")).set_index(
        ["experiment_id", "model"]
    )
    # search: 20 incremental (0.02 x 1000), [10, 30]; email: 5, [-5, 15].
    assert got.loc[("holdout_search", "last_touch"), "credited"] == 35.0  # not email's 7
    assert got.loc[("holdout_search", "last_touch"), "ratio"] == pytest.approx(1.75)
    assert not got.loc[("holdout_search", "last_touch"), "within_interval"]
    assert got.loc[("holdout_email", "first_touch"), "within_interval"]
    # last_touch: |35 - 20| + |5 - 5| = 15; first_touch: |22 - 20| + |12 - 5| = 9.
    assert got.xs("first_touch", level="model")["distance"].tolist() == [9.0, 9.0]
    assert got.xs("last_touch", level="model")["distance"].tolist() == [15.0, 15.0]
    assert got.xs("first_touch", level="model")["closest"].all()
    assert (got.xs("last_touch", level="model")["rank"] == 2).all()


def test_a_model_that_credits_the_channel_nothing_counts_zero():
    found = [Holdout("h", "exposed", "display", 100, 0.1, 0.0, 0.2)]
    credits = {
        ("h", "exposed"): pd.DataFrame(
            {"model": ["linear"], "channel": ["search"], "conversions": [4.0]}
        )
    }
    got = compare(found, credits, ("linear",))
    assert got["credited"].tolist() == [0.0]
    assert got["distance"].tolist() == [10.0]


def test_no_value_crosses_to_spark_as_null_not_nan(spark):
    from chispa import assert_df_equality

    from precis.budget import _nulls

    rows = pd.DataFrame({"channel": ["email", "search"], "ratio": [float("nan"), 1.5], "n": [1, 2]})
    got = _nulls(spark.createDataFrame(rows, "channel string, ratio double, n long"))
    want = spark.createDataFrame(
        [("email", None, 1), ("search", 1.5, 2)], "channel string, ratio double, n long"
    )
    assert_df_equality(got, want)
