"""BG/NBD and Gamma-Gamma: likelihoods, weighted maximum-likelihood fits, predictions.

Pure numpy/scipy on small arrays. The likelihood of both models depends on a person only
through a few summary numbers, so the Spark side aggregates people to distinct
summaries with counts (``precis.lifecycle.summary``) and the fit here weighs each
summary by its count: fitting a hundred million people costs what fitting the distinct
summaries costs.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an
alternative to the Pareto/NBD model", Marketing Science 24(2) (BG/NBD, equations 6,
10 and the appendix); Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves
for customer base analysis", JMR 42(4), and Fader & Hardie's note "The Gamma-Gamma
model of monetary value" (2013).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from precis.errors import PrecisError

BG_NBD = "bg_nbd"
GAMMA_GAMMA = "gamma_gamma"
PARAMS = {BG_NBD: ("r", "alpha", "a", "b"), GAMMA_GAMMA: ("p", "q", "gamma")}


class FitError(PrecisError):
    """A model could not be fitted to the data given."""


@dataclass(frozen=True)
class Fit:
    model: str
    params: dict[str, float]
    log_likelihood: float  # weighted sum over people
    people: float  # total weight
    iterations: int
    converged: bool

    def rows(self) -> list[tuple[str, str, float]]:
        return [(self.model, name, float(value)) for name, value in self.params.items()]


# --------------------------------------------------------------------------- BG/NBD
def bg_nbd_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-person log-likelihood of (x, t_x, T) (FHL 2005, equation 6)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    common = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + x)
        - special.betaln(a, b)
    )
    alive = -(r + x) * np.log(alpha + T)
    # The second term exists only for people with repeat purchases; betaln(a+1, b+x-1)
    # - betaln(a, b+x) = log(a / (b+x-1)).
    repeat = x > 0
    dropped = np.full_like(x, -np.inf)
    dropped[repeat] = (
        np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    return common + np.logaddexp(alive, dropped)


def probability_alive(
    params: Mapping[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(still active | x, t_x, T) (FHL 2005, equation 13)."""
    r, alpha, a, b = (params[k] for k in PARAMS[BG_NBD])
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    return 1.0 / (1.0 + _odds_dropped(r, alpha, a, b, x, t_x, T))


def _odds_dropped(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    odds = np.zeros_like(x)
    repeat = x > 0
    xr = x[repeat]
    # a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x), in logs: the power overflows for heavy buyers.
    odds[repeat] = np.exp(
        np.log(a)
        - np.log(b + xr - 1)
        + (r + xr) * (np.log(alpha + T[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return odds


def expected_purchases(
    params: Mapping[str, float],
    t: float | np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, equation 10)."""
    r, alpha, a, b = (params[k] for k in PARAMS[BG_NBD])
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    t = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    value = (a + b + x - 1) / (a - 1) * (1.0 - ratio * hyp)
    return value / (1.0 + _odds_dropped(r, alpha, a, b, x, t_x, T))


def expected_purchases_new(params: Mapping[str, float], t: float | np.ndarray) -> np.ndarray:
    """E[X(t)]: repeat purchases in (0, t] of a person who just made a first purchase (eq. 9)."""
    r, alpha, a, b = (params[k] for k in PARAMS[BG_NBD])
    t = np.asarray(t, dtype=float)
    hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + t)) ** r * hyp)


# ---------------------------------------------------------------------- Gamma-Gamma
def gamma_gamma_log_likelihood(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Per-person log density of the mean repeat spend m over x > 0 purchases."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * m)
    )


def expected_spend(params: Mapping[str, float], x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[spend per purchase | x, m]: the population mean for x = 0, shrunk toward m after."""
    p, q, gamma = (params[k] for k in PARAMS[GAMMA_GAMMA])
    x, m = np.asarray(x, dtype=float), np.nan_to_num(np.asarray(m, dtype=float))
    return p * (gamma + x * m) / (p * x + q - 1)


# -------------------------------------------------------------------------- fitting
def bg_nbd_gradient(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """d(per-person log-likelihood)/d(r, alpha, a, b), shape (4, n)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    repeat = x > 0
    alive = -(r + x) * np.log(alpha + T)
    dropped = np.full_like(x, -np.inf)
    dropped[repeat] = (
        np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    # Posterior weights of "still alive" and "dropped after the last purchase".
    top = np.maximum(alive, dropped)
    w_alive, w_dropped = np.exp(alive - top), np.exp(dropped - top)
    total = w_alive + w_dropped
    p_alive, p_dropped = w_alive / total, w_dropped / total
    psi = special.digamma
    t_x_safe = np.where(repeat, t_x, 0.0)
    b_x = np.where(repeat, b + x - 1, 1.0)
    d_r = (
        psi(r + x)
        - psi(r)
        + np.log(alpha)
        - p_alive * np.log(alpha + T)
        - p_dropped * np.log(alpha + t_x_safe)
    )
    d_alpha = r / alpha - p_alive * (r + x) / (alpha + T) - p_dropped * (r + x) / (alpha + t_x_safe)
    d_a = psi(a + b) - psi(a + b + x) + p_dropped / a
    d_b = psi(b + x) - psi(a + b + x) - psi(b) + psi(a + b) - p_dropped / b_x
    return np.stack([d_r, d_alpha, d_a, d_b])


def gamma_gamma_gradient(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """d(per-person log density)/d(p, q, gamma), shape (3, n)."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    psi = special.digamma
    px = p * x
    spent = np.log(gamma + x * m)
    d_p = x * (psi(px + q) - psi(px) + np.log(m) + np.log(x) - spent)
    d_q = psi(px + q) - psi(q) + np.log(gamma) - spent
    d_gamma = q / gamma - (px + q) / (gamma + x * m)
    return np.stack([d_p, d_q, d_gamma])


def _fit(
    model: str,
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: np.ndarray,
    people: float,
) -> Fit:
    """Minimize the mean negative log-likelihood over the log parameters (all positive).

    L-BFGS with the analytic gradient: a few dozen evaluations over the distinct
    summaries. Should it stop short, Nelder-Mead (no gradient) restarts from where it
    stopped and BFGS polishes, so a hard likelihood surface costs time, not accuracy.
    """
    with np.errstate(all="ignore"):
        best = optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 5_000, "ftol": 1e-15, "gtol": 1e-10},
        )
        iterations = int(best.nit)
        if not (best.success and np.isfinite(best.fun)):

            def value_only(z: np.ndarray) -> float:
                return objective(z)[0]

            coarse = optimize.minimize(
                value_only,
                best.x if np.all(np.isfinite(best.x)) else start,
                method="Nelder-Mead",
                options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 40_000},
            )
            fine = optimize.minimize(
                objective, coarse.x, jac=True, method="BFGS", options={"gtol": 1e-9}
            )
            iterations += int(coarse.nit + fine.nit)
            candidates = [c for c in (best, coarse, fine) if np.isfinite(c.fun)]
            best = min(candidates, key=lambda c: c.fun) if candidates else best
    if not np.isfinite(best.fun):
        raise FitError(f"{model}: the likelihood is not finite at any tried parameters")
    params = dict(zip(PARAMS[model], (float(v) for v in np.exp(best.x))))
    if not all(np.isfinite(v) and 0 < v < 1e12 for v in params.values()):
        raise FitError(
            f"{model}: the fit diverged ({params}); the data may hold too few repeat buyers"
        )
    gradient = objective(best.x)[1]
    return Fit(
        model=model,
        params=params,
        log_likelihood=float(-best.fun * people),
        people=float(people),
        iterations=iterations,
        converged=bool(np.max(np.abs(gradient)) < 1e-5),
    )


def fit_bg_nbd(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weight: np.ndarray | None = None,
    penalizer: float = 0.0,
) -> Fit:
    """Weighted maximum-likelihood BG/NBD fit; ``weight`` counts people per summary row."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    w = np.ones_like(x) if weight is None else np.asarray(weight, dtype=float)
    people = w.sum()
    if people <= 0:
        raise FitError(f"{BG_NBD}: no purchasers to fit")
    if not (x > 0).any():
        raise FitError(
            f"{BG_NBD}: nobody made a repeat purchase, so the purchase rate cannot be fitted"
        )

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_params)
        r, alpha, a, b = theta
        ll = np.dot(w, bg_nbd_log_likelihood(r, alpha, a, b, x, t_x, T)) / people
        grad = bg_nbd_gradient(r, alpha, a, b, x, t_x, T) @ w / people
        # Chain rule to the logs; the L2 penalty is on the parameters themselves.
        return float(-ll + penalizer * np.sum(theta**2)), -grad * theta + 2 * penalizer * theta**2

    # alpha is in time units: start it at the mean age so days and weeks both start well.
    start = np.log([1.0, max(float(np.dot(w, T) / people), 1e-3), 1.0, 1.0])
    return _fit(BG_NBD, objective, start, people)


def fit_gamma_gamma(
    x: np.ndarray, m: np.ndarray, weight: np.ndarray | None = None, penalizer: float = 0.0
) -> Fit:
    """Weighted maximum-likelihood Gamma-Gamma fit on people with x > 0 and mean spend m > 0."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    w = np.ones_like(x) if weight is None else np.asarray(weight, dtype=float)
    keep = (x > 0) & (m > 0)
    x, m, w = x[keep], m[keep], w[keep]
    people = w.sum()
    if people <= 0:
        raise FitError(f"{GAMMA_GAMMA}: nobody made a repeat purchase with a positive amount")

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_params)
        p, q, v = theta
        ll = np.dot(w, gamma_gamma_log_likelihood(p, q, v, x, m)) / people
        grad = gamma_gamma_gradient(p, q, v, x, m) @ w / people
        return float(-ll + penalizer * np.sum(theta**2)), -grad * theta + 2 * penalizer * theta**2

    start = np.log([1.0, 2.0, max(float(np.dot(w, m) / people), 1e-3)])
    return _fit(GAMMA_GAMMA, objective, start, people)


def discounted_value(
    bg_params: Mapping[str, float],
    spend: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    horizon: float,
    step: float,
    discount_per_unit: float,
) -> np.ndarray:
    """CLV over ``horizon`` time units: expected purchases per step, discounted, times spend.

    ``discount_per_unit`` is the discount rate per time unit, so a purchase expected in
    the step ending at time s is worth spend / (1 + d)^s.
    """
    x = np.asarray(x, dtype=float)
    value = np.zeros_like(x)
    previous = np.zeros_like(x)
    ends = np.arange(step, horizon + step / 2, step)
    if len(ends) == 0 or ends[-1] < horizon:
        ends = np.append(ends, horizon)
    for end in np.minimum(ends, horizon):
        cumulative = expected_purchases(bg_params, end, x, t_x, T)
        value += (cumulative - previous) / (1.0 + discount_per_unit) ** end
        previous = cumulative
    return value * np.asarray(spend, dtype=float)
