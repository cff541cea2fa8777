"""BG/NBD and Gamma-Gamma: the CDNOW reproduction, and predictions against direct
numerical integration of the models' definitions."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F
from scipy import integrate, optimize, stats

from precis.lifecycle import btyd, summary, value


def _cdnow_sample() -> Path:
    # The lifetimes package ships the CDNOW 1/10 sample. Only its data file is read:
    # find_spec locates the package without importing it.
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations, (
        "lifetimes (test extra) is not installed"
    )
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_sample.txt"
    assert path.is_file(), f"CDNOW sample missing at {path}"
    return path


@pytest.fixture(scope="module")
def cdnow(spark):
    """Raw CDNOW transactions as resolved orders: one_id, order_id, order_date, amount, refunded."""
    rows = []
    for n, line in enumerate(_cdnow_sample().read_text().splitlines()):
        _, customer, day, _, amount = line.split()
        rows.append(
            (customer, f"o{n}", dt.datetime.strptime(day, "%Y%m%d").date(), float(amount), False)
        )
    return spark.createDataFrame(
        rows, "one_id string, order_id string, order_date date, amount double, refunded boolean"
    )


def test_cdnow_reproduces_published_estimates(cdnow):
    end = dt.date(1997, 9, 30)  # the 39-week calibration period
    person = summary.person_summary(summary.transactions(cdnow, end), end, "week")
    assert person.count() == 2357
    models, triples = value.fit(person, "week")
    bg, gg = models.bg_nbd.params, models.gamma_gamma.params
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
    assert {k: round(v, 3) for k, v in bg.items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }
    assert round(models.bg_nbd.log_likelihood, 1) == -9582.4
    assert triples.people.sum() == 2357
    # Fader, Hardie & Lee (2005, RFM and CLV): p = 6.25, q = 3.74, gamma = 15.44 over 946 repeat buyers.
    assert {k: round(v, 2) for k, v in gg.items()} == {"p": 6.25, "q": 3.74, "gamma": 15.44}
    assert models.gamma_gamma.people == 946


def test_cdnow_summary_of_one_customer(cdnow):
    # Customer 0001 (sample id): purchases on 1997-01-01, 01-18 and 08-02 before the end of
    # September; the summary the published fit starts from says x=2, t_x=30.43, T=38.86.
    end = dt.date(1997, 9, 30)
    row = (
        summary.person_summary(summary.transactions(cdnow, end), end, "week")
        .filter(F.col("one_id") == "0001")
        .first()
    )
    assert (row["x"], round(row["t_x"], 2), round(row["T"], 2)) == (2, 30.43, 38.86)
    assert row["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)


# ------------------------------------------------------- predictions vs integration
PARAMS = {
    "r": 2.0,
    "alpha": 10.0,
    "a": 2.0,
    "b": 5.0,
}  # smooth densities: quadrature is exact enough


def _posterior_integrals(params, x, t_x, T, t):
    """Direct integration over lambda ~ Gamma(r, alpha) and p ~ Beta(a, b) of BG/NBD's
    individual likelihood: (P(alive | data), E[purchases in (T, T + t] | data])."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    prior_lam = stats.gamma(r, scale=1 / alpha).pdf
    prior_p = stats.beta(a, b).pdf

    def alive(lam, p):
        return (1 - p) ** x * lam**x * np.exp(-lam * T) * prior_lam(lam) * prior_p(p)

    def dropped(lam, p):
        return (
            p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x) * prior_lam(lam) * prior_p(p)
            if x > 0
            else 0.0
        )

    def future(lam, p):
        # Alive at T, BG/NBD expects (1 - exp(-lam p t)) / p more purchases by T + t.
        return alive(lam, p) * (1 - np.exp(-lam * p * t)) / p

    opts = {"epsabs": 1e-13, "epsrel": 1e-10}
    area = lambda f: integrate.dblquad(lambda lam, p: f(lam, p), 0, 1, 0, 30, **opts)[0]
    evidence = area(alive) + area(dropped)
    return area(alive) / evidence, area(future) / evidence


@pytest.mark.parametrize(
    "x, t_x, T", [(0, 0.0, 20.0), (1, 3.0, 15.0), (4, 10.0, 12.0), (2, 1.0, 30.0)]
)
def test_bg_nbd_predictions_match_integration(x, t_x, T):
    t = 8.0
    alive, expected = _posterior_integrals(PARAMS, x, t_x, T, t)
    arrays = tuple(np.array([v], dtype=float) for v in (x, t_x, T))
    assert btyd.probability_alive(PARAMS, *arrays)[0] == pytest.approx(alive, rel=1e-6)
    assert btyd.expected_purchases(PARAMS, t, *arrays)[0] == pytest.approx(expected, rel=1e-6)


def test_bg_nbd_likelihood_integrates_the_individual_model():
    # exp(log-likelihood) is the evidence integral itself.
    x, t_x, T = 3, 7.0, 20.0
    r, alpha, a, b = PARAMS.values()
    prior = lambda lam, p: stats.gamma(r, scale=1 / alpha).pdf(lam) * stats.beta(a, b).pdf(p)
    indiv = lambda lam, p: (
        (
            (1 - p) ** x * lam**x * np.exp(-lam * T)
            + p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x)
        )
        * prior(lam, p)
    )
    evidence = integrate.dblquad(
        lambda lam, p: indiv(lam, p), 0, 1, 0, 30, epsabs=1e-14, epsrel=1e-10
    )[0]
    assert np.exp(
        btyd.bg_nbd_log_likelihood(r, alpha, a, b, np.array([x]), np.array([t_x]), np.array([T]))[0]
    ) == (pytest.approx(evidence, rel=1e-6))


def test_new_customer_expectation_is_the_zero_history_limit():
    # A person who bought just now (x = 0, T = 0) expects what a new customer expects.
    t = np.array([1.0, 5.0, 52.0])
    new = btyd.expected_purchases_new(PARAMS, t)
    zeros = np.zeros(3)
    assert btyd.expected_purchases(PARAMS, t, zeros, zeros, zeros) == pytest.approx(new, rel=1e-12)


def test_gamma_gamma_expected_spend_is_the_posterior_mean():
    params = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    x, m = 3.0, 42.0
    # nu | data ~ Gamma(p x + q, rate gamma + x m); the mean spend per purchase is p / nu.
    shape, rate = params["p"] * x + params["q"], params["gamma"] + x * m
    posterior = stats.gamma(shape, scale=1 / rate)
    mean = integrate.quad(lambda nu: params["p"] / nu * posterior.pdf(nu), 0, np.inf)[0]
    assert btyd.expected_spend(params, np.array([x]), np.array([m]))[0] == pytest.approx(
        mean, rel=1e-8
    )
    # With no repeat purchase: the population mean p gamma / (q - 1).
    population = params["p"] * params["gamma"] / (params["q"] - 1)
    assert btyd.expected_spend(params, np.array([0.0]), np.array([np.nan]))[0] == pytest.approx(
        population
    )


def test_gamma_gamma_density_integrates_to_one():
    p, q, gamma, x = 6.25, 3.74, 15.44, 2.0
    total = integrate.quad(
        lambda m: np.exp(
            btyd.gamma_gamma_log_likelihood(p, q, gamma, np.array([x]), np.array([m]))[0]
        ),
        0,
        np.inf,
    )[0]
    assert total == pytest.approx(1.0, rel=1e-8)


def test_discounted_value():
    x, t_x, T = (np.array([v]) for v in (2.0, 10.0, 20.0))
    spend = np.array([50.0])
    horizon = 52.0
    undiscounted = btyd.discounted_value(PARAMS, spend, x, t_x, T, horizon, 4.0, 0.0)
    assert undiscounted == pytest.approx(50.0 * btyd.expected_purchases(PARAMS, horizon, x, t_x, T))
    # One step: everything is discounted from the horizon's end.
    one_step = btyd.discounted_value(PARAMS, spend, x, t_x, T, horizon, horizon, 0.01)
    assert one_step == pytest.approx(undiscounted / 1.01**horizon)
    stepped = btyd.discounted_value(PARAMS, spend, x, t_x, T, horizon, 4.0, 0.01)
    assert one_step[0] < stepped[0] < undiscounted[0]


def _simulate_bg_nbd(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) of n people from BG/NBD (r 0.5, alpha 5, a 1, b 3), ages of 20-39 whole units."""
    rng = np.random.default_rng(seed)
    x, t_x, T = np.zeros(n), np.zeros(n), rng.integers(20, 40, n).astype(float)
    for i in range(n):
        lam, p, t = rng.gamma(0.5, 1 / 5.0), rng.beta(1.0, 3.0), 0.0
        while True:
            t += rng.exponential(1 / lam)
            if t > T[i]:
                break
            x[i], t_x[i] = x[i] + 1, np.floor(t)  # whole units, so people share triples
            if rng.uniform() < p:
                break
    return x, t_x, T


def test_weighted_fit_equals_fit_on_people():
    x, t_x, T = _simulate_bg_nbd(1500, 3)
    per_person = btyd.fit_bg_nbd(x, t_x, T)
    triples, counts = np.unique(np.stack([x, t_x, T], axis=1), axis=0, return_counts=True)
    assert len(triples) < len(x)
    weighted = btyd.fit_bg_nbd(triples[:, 0], triples[:, 1], triples[:, 2], counts)
    assert per_person.converged and weighted.converged
    for k in per_person.params:
        assert weighted.params[k] == pytest.approx(per_person.params[k], rel=1e-6)
    assert weighted.log_likelihood == pytest.approx(per_person.log_likelihood, rel=1e-12)


def test_fit_without_repeat_buyers_fails_clearly():
    with pytest.raises(btyd.FitError, match="nobody made a repeat purchase"):
        btyd.fit_bg_nbd(np.zeros(5), np.zeros(5), np.full(5, 10.0))


@pytest.mark.parametrize("x, t_x, T", [(0, 0.0, 20.0), (3, 7.0, 20.0), (1, 0.0, 5.0)])
def test_bg_nbd_gradient_matches_finite_differences(x, t_x, T):
    theta = np.array(list(PARAMS.values()))
    args = tuple(np.array([v], dtype=float) for v in (x, t_x, T))
    f = lambda th: btyd.bg_nbd_log_likelihood(*th, *args)[0]
    g = btyd.bg_nbd_gradient(*theta, *args)[:, 0]
    numeric = optimize.approx_fprime(theta, f, 1e-7)
    assert g == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_gamma_gamma_gradient_matches_finite_differences():
    theta = np.array([6.25, 3.74, 15.44])
    args = (np.array([3.0]), np.array([42.0]))
    f = lambda th: btyd.gamma_gamma_log_likelihood(*th, *args)[0]
    numeric = optimize.approx_fprime(theta, f, 1e-7)
    assert btyd.gamma_gamma_gradient(*theta, *args)[:, 0] == pytest.approx(
        numeric, rel=1e-4, abs=1e-6
    )
