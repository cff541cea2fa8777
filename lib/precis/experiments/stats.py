"""Experiment statistics from per-arm sums: Welch intervals, CUPED, Holm, sample ratio.

Every function here takes a few numbers per arm (the count and sums one Spark
aggregation returns, :class:`Moments`), never the people themselves, so the driver's
work does not grow with the experiment.

- **Welch.** The lift of an arm over control is the difference of the two arms' mean
  outcome per person; its standard error is sqrt(v_t/n_t + v_c/n_c) with each arm's own
  variance, and its t-quantile has the Welch-Satterthwaite degrees of freedom. A
  conversion rate is the mean of a 0/1 outcome, so one formula serves both metrics.
- **CUPED** (Deng et al., 2013). With a pre-period covariate x (revenue before
  assignment, unaffected by the arm) the outcome is replaced by
  y - theta (x - mean_x), theta = cov(x, y) / var(x) over every arm together: the same
  expected lift, with variance var(y) (1 - rho^2) where rho is their correlation.
  :func:`compare` uses it only when it narrows the interval.
- **Holm.** Step-down adjustment of one experiment's p-values (one per non-control
  arm and metric) for testing several arms against one control.
- **Sample ratio.** Pearson's chi-square test of the arms' sizes against the intended
  weights; a tiny p-value means assignment or logging is broken and no lift of that
  experiment can be trusted.
- **Always valid.** A confidence sequence (the normal mixture of Robbins, as in
  Johari et al., 2017's mSPRT): its interval may be looked at after every day and still
  covers the lift with the stated probability at all times, at the cost of width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats as st

#: Two-sided level of every interval.
LEVEL = 0.95


@dataclass(frozen=True)
class Moments:
    """Sums over the people of one arm: outcome ``y`` and pre-period covariate ``x``."""

    n: int
    y: float
    yy: float
    x: float = 0.0
    xx: float = 0.0
    xy: float = 0.0

    @property
    def mean_y(self) -> float:
        return self.y / self.n if self.n else math.nan

    @property
    def mean_x(self) -> float:
        return self.x / self.n if self.n else math.nan

    def _co(self, a: float, b: float, ab: float) -> float:
        # Sample (co)variance from sums; clamped, as rounding can take a zero below 0.
        if self.n < 2:
            return math.nan
        return (ab - a * b / self.n) / (self.n - 1)

    @property
    def var_y(self) -> float:
        return max(self._co(self.y, self.y, self.yy), 0.0)

    @property
    def var_x(self) -> float:
        return max(self._co(self.x, self.x, self.xx), 0.0)

    @property
    def cov_xy(self) -> float:
        return self._co(self.x, self.y, self.xy)

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.n + other.n,
            self.y + other.y,
            self.yy + other.yy,
            self.x + other.x,
            self.xx + other.xx,
            self.xy + other.xy,
        )

    def adjusted(self, theta: float, center: float) -> tuple[float, float]:
        """(mean, variance) of the CUPED outcome y - theta (x - center)."""
        mean = self.mean_y - theta * (self.mean_x - center)
        var = self.var_y - 2 * theta * self.cov_xy + theta**2 * self.var_x
        return mean, max(var, 0.0)


@dataclass(frozen=True)
class Lift:
    """An arm against control for one metric."""

    n: int
    n_control: int
    value: float
    control_value: float
    lift_abs: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    adjusted: bool


def welch(
    mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int
) -> tuple[float, float, float, float, float]:
    """(difference, standard error, ci_low, ci_high, p_value) of mean_t - mean_c."""
    diff = mean_t - mean_c
    if n_t < 2 or n_c < 2:
        return diff, math.nan, math.nan, math.nan, math.nan
    a, b = var_t / n_t, var_c / n_c
    se = math.sqrt(a + b)
    if se == 0.0:  # no variation in either arm: the difference is exact
        return diff, 0.0, diff, diff, 1.0 if diff == 0 else 0.0
    df = (a + b) ** 2 / (a**2 / (n_t - 1) + b**2 / (n_c - 1))
    q = float(st.t.ppf(0.5 + LEVEL / 2, df))
    p = float(2 * st.t.sf(abs(diff) / se, df))
    return diff, se, diff - q * se, diff + q * se, p


def cuped_theta(arms: Sequence[Moments]) -> float:
    """theta = cov(x, y) / var(x) over every arm together (0 when x does not vary).

    Pooled over the arms, as the lift itself does not enter x: any fixed theta keeps
    the estimate unbiased, and this one minimizes the variance."""
    pooled = sum(arms[1:], arms[0])
    var_x = pooled.var_x
    if not var_x or math.isnan(var_x):
        return 0.0
    return pooled.cov_xy / var_x


def compare(treated: Moments, control: Moments, theta: float, center: float) -> Lift:
    """The lift of ``treated`` over ``control``: CUPED with ``theta`` (centred on
    ``center``, the mean of x over every arm) when its interval is narrower, else plain
    Welch. ``value`` and ``control_value`` are always the arms' plain means."""
    plain = welch(
        treated.mean_y, treated.var_y, treated.n, control.mean_y, control.var_y, control.n
    )
    use = plain
    adjusted = False
    if theta:
        mean_t, var_t = treated.adjusted(theta, center)
        mean_c, var_c = control.adjusted(theta, center)
        cuped = welch(mean_t, var_t, treated.n, mean_c, var_c, control.n)
        if cuped[1] < plain[1]:  # a NaN standard error never wins
            use, adjusted = cuped, True
    diff, se, low, high, p = use
    return Lift(
        treated.n,
        control.n,
        treated.mean_y,
        control.mean_y,
        diff,
        se,
        low,
        high,
        p,
        adjusted,
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (NaN stays NaN)."""
    order = sorted(
        (i for i, p in enumerate(p_values) if not math.isnan(p)), key=lambda i: p_values[i]
    )
    m = len(order)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def sample_ratio_p(counts: Mapping[str, int], weights: Mapping[str, float]) -> float:
    """p-value of Pearson's chi-square test of the arms' sizes against their intended
    weights (arms missing from ``weights`` expected at equal shares with the rest)."""
    arms = sorted(counts)
    if len(arms) < 2:
        return math.nan
    raw = [weights.get(a) for a in arms]
    given = [w for w in raw if w is not None]
    fill = (sum(given) / len(given)) if given else 1.0
    shares = [w if w is not None else fill for w in raw]
    total, norm = sum(counts[a] for a in arms), sum(shares)
    if total == 0 or norm <= 0:
        return math.nan
    expected = [total * s / norm for s in shares]
    stat = sum((counts[a] - e) ** 2 / e for a, e in zip(arms, expected, strict=True) if e > 0)
    return float(st.chi2.sf(stat, len(arms) - 1))


def always_valid(lift: float, se: float, tau: float) -> tuple[float, float]:
    """Always-valid interval around ``lift`` (standard error ``se``) with the normal
    mixture of variance ``tau``^2: half-width
    sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V) + 2 log(1 / alpha))), V = se^2.

    ``tau`` is fixed before the experiment starts (the size of lift one expects, in the
    metric's units): the guarantee holds for every day one looks, not only the last."""
    if not se or math.isnan(se) or tau <= 0:
        return math.nan, math.nan
    v, t2, alpha = se**2, tau**2, 1 - LEVEL
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) + 2 * math.log(1 / alpha)))
    return lift - half, lift + half
