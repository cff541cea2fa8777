"""Budget plans on planted response curves: fits that recover them, splits that reach
the best the curves allow."""

from __future__ import annotations

import numpy as np
import pytest

from precis.budget.curves import Hill, fit
from precis.budget.plan import Bounds, allocate, total

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
