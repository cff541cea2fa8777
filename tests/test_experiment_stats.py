"""Experiment statistics against scipy's own tests on the raw values, and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from precis.experiments.stats import (
    Moments,
    always_valid,
    compare,
    cuped_theta,
    holm,
    sample_ratio_p,
    welch,
)


def moments(y, x=None) -> Moments:
    y = np.asarray(y, float)
    x = np.zeros_like(y) if x is None else np.asarray(x, float)
    return Moments(len(y), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())


def test_welch_is_scipys_unequal_variance_t_test():
    rng = np.random.default_rng(1)
    t, c = rng.normal(1.3, 2.0, 400), rng.normal(1.0, 1.0, 250)
    a, b = moments(t), moments(c)
    diff, se, low, high, p = welch(a.mean_y, a.var_y, a.n, b.mean_y, b.var_y, b.n)
    oracle = st.ttest_ind(t, c, equal_var=False)
    ci = oracle.confidence_interval(0.95)
    assert diff == pytest.approx(t.mean() - c.mean())
    assert p == pytest.approx(oracle.pvalue, rel=1e-9)
    assert (low, high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert se == pytest.approx(math.sqrt(t.var(ddof=1) / 400 + c.var(ddof=1) / 250))


def test_a_conversion_rate_is_the_mean_of_a_zero_one_outcome():
    t, c = [1] * 30 + [0] * 70, [1] * 20 + [0] * 80
    lift = compare(moments(t), moments(c), theta=0.0, center=0.0)
    assert (lift.value, lift.control_value, lift.lift_abs) == pytest.approx((0.3, 0.2, 0.1))
    assert lift.p_value == pytest.approx(st.ttest_ind(t, c, equal_var=False).pvalue)
    assert not lift.adjusted


def test_no_variation_gives_an_exact_difference_and_too_few_people_none():
    assert welch(1.0, 0.0, 5, 1.0, 0.0, 5) == (0.0, 0.0, 0.0, 0.0, 1.0)
    assert welch(2.0, 0.0, 5, 1.0, 0.0, 5)[4] == 0.0
    assert all(math.isnan(v) for v in welch(2.0, 1.0, 1, 1.0, 1.0, 5)[1:])


def test_cuped_equals_welch_on_the_adjusted_outcome_and_is_narrower():
    rng = np.random.default_rng(7)
    n = 2000
    x_t, x_c = rng.gamma(2.0, 50.0, n), rng.gamma(2.0, 50.0, n)
    # The outcome follows the pre-period spend, plus a lift of 5 in the treated arm.
    y_t, y_c = 0.8 * x_t + rng.normal(5, 20, n), 0.8 * x_c + rng.normal(0, 20, n)
    a, b = moments(y_t, x_t), moments(y_c, x_c)
    theta = cuped_theta([a, b])
    x_all = np.concatenate([x_t, x_c])
    y_all = np.concatenate([y_t, y_c])
    assert theta == pytest.approx(np.cov(x_all, y_all)[0, 1] / x_all.var(ddof=1))
    center = x_all.mean()
    lift = compare(a, b, theta, center)
    adj_t, adj_c = y_t - theta * (x_t - center), y_c - theta * (x_c - center)
    oracle = st.ttest_ind(adj_t, adj_c, equal_var=False)
    assert lift.adjusted
    assert lift.lift_abs == pytest.approx(adj_t.mean() - adj_c.mean())
    assert lift.p_value == pytest.approx(oracle.pvalue, rel=1e-6, abs=1e-300)
    plain = compare(a, b, 0.0, center)
    assert (lift.ci_high - lift.ci_low) < 0.5 * (plain.ci_high - plain.ci_low)
    # The reported values stay the arms' plain means.
    assert (lift.value, lift.control_value) == pytest.approx((y_t.mean(), y_c.mean()))


def test_cuped_is_not_used_when_the_covariate_does_not_help():
    rng = np.random.default_rng(3)
    y_t, y_c = rng.normal(1, 1, 50), rng.normal(1, 1, 50)
    x_t, x_c = rng.normal(0, 1, 50), rng.normal(0, 1, 50)
    a, b = moments(y_t, x_t), moments(y_c, x_c)
    # Any theta that widens the interval is refused: here one far from the optimum.
    lift = compare(a, b, theta=25.0, center=0.0)
    assert not lift.adjusted
    assert lift.p_value == pytest.approx(st.ttest_ind(y_t, y_c, equal_var=False).pvalue)
    assert cuped_theta([moments([1.0, 2.0]), moments([3.0, 4.0])]) == 0.0  # x constant


def test_holm_steps_down_and_keeps_the_order_given():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    adjusted = holm([0.02, math.nan, 0.001])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.002)


def test_sample_ratio_is_pearsons_chi_square_against_the_weights():
    counts = {"control": 5100, "a": 4900, "b": 9700}
    weights = {"control": 1, "a": 1, "b": 2}
    expected = [19700 * w / 4 for w in (2, 1, 1)]  # arms sorted: a, b, control
    oracle = st.chisquare([4900, 9700, 5100], [expected[1], expected[0], expected[2]])
    assert sample_ratio_p(counts, weights) == pytest.approx(oracle.pvalue)
    # Without weights the arms are meant to be equal.
    assert sample_ratio_p({"control": 500, "a": 500}, {}) == pytest.approx(1.0)
    assert sample_ratio_p({"control": 5000, "a": 5400}, {}) < 0.001
    assert math.isnan(sample_ratio_p({"control": 10}, {}))


def test_always_valid_intervals_cover_at_every_look_where_fixed_ones_do_not():
    """Peeking: 300 null experiments looked at 40 times each. The fixed interval excludes
    the true lift (0) at some look far more often than 5% of the time; the always-valid
    one at most 5% (up to simulation error)."""
    rng = np.random.default_rng(11)
    looks, per_look, runs = 40, 25, 300
    fixed_missed = valid_missed = 0
    for _ in range(runs):
        t = rng.normal(0, 1, looks * per_look).cumsum()
        c = rng.normal(0, 1, looks * per_look).cumsum()
        miss_fixed = miss_valid = False
        for k in range(1, looks + 1):
            n = k * per_look
            diff = (t[n - 1] - c[n - 1]) / n
            se = math.sqrt(2 / n)
            miss_fixed |= abs(diff) > 1.96 * se
            low, high = always_valid(diff, se, tau=0.2)
            miss_valid |= not low <= 0 <= high
        fixed_missed += miss_fixed
        valid_missed += miss_valid
    assert fixed_missed / runs > 0.15
    assert valid_missed / runs <= 0.06
    assert all(math.isnan(v) for v in always_valid(1.0, 0.0, 0.2))  # nothing varies yet
