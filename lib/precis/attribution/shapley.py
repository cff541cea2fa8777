"""Shapley-value attribution over channel coalitions.

Journeys are grouped by the *set* of channels they touched (order and repeats do not
matter). The worth of a coalition S of channels is computed from the journeys whose
channel set lies inside S, i.e. what would have happened had only the channels in S
existed:

- ``worth = "conversions"`` (default): v(S) = conversions of those journeys. This is the
  simplified Shapley value of Zhao et al. (2018); every law holds exactly: the credits
  sum to the total conversions, symmetric channels share equally and a channel in no
  converting journey gets nothing. It equals sum over sets T of c(T)/|T| for the
  channels of T, which the tests use as an oracle.
- ``worth = "rate"``: v(S) = conversion rate of those journeys (conversions / journeys),
  closer to data-driven attribution's use of conversion probabilities. Channels that
  mostly appear in journeys that do not convert can get negative raw values; credits
  are the Shapley values normalized to the total conversions.

Up to ``max_exact`` channels every coalition is enumerated (subset sums over 2^n masks);
beyond, channel orderings are sampled and each credit is reported with a 95% confidence
interval from the spread of its marginal contributions. Revenue credit uses the same
game with revenue in place of conversions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.attribution import journeys

WORTHS = ("conversions", "rate")


def channel_sets(journey_rows: DataFrame) -> DataFrame:
    """``channels`` (sorted distinct array), ``journeys``, ``conversions``, ``revenue``."""
    return sets_of_paths(journeys.paths(journey_rows))


def sets_of_paths(paths: DataFrame) -> DataFrame:
    """``channel_sets`` from ``journeys.paths`` rows: a journey's set is its path's
    channels (collapsing repeats in a path leaves them the same), so the few distinct
    paths are regrouped rather than the journeys themselves."""
    return paths.groupBy(F.array_sort(F.array_distinct("path")).alias("channels")).agg(
        F.sum("journeys").alias("journeys"),
        F.sum("conversions").alias("conversions"),
        F.sum("revenue").alias("revenue"),
    )


@dataclass(frozen=True)
class ShapleyResult:
    channels: list[str]
    conversions: dict[str, float]
    revenue: dict[str, float]
    exact: bool
    samples: int
    # 95% confidence intervals of the credited conversions (sampled games only).
    low: dict[str, float] | None = None
    high: dict[str, float] | None = None


def _worth(won: np.ndarray, seen: np.ndarray, worth: str) -> np.ndarray:
    if worth == "conversions":
        return won
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, won / np.where(seen > 0, seen, 1.0), 0.0)


def _exact(masks: np.ndarray, won: np.ndarray, seen: np.ndarray, n: int, worth: str) -> np.ndarray:
    size = 1 << n
    total_won = np.bincount(masks, weights=won, minlength=size)
    total_seen = np.bincount(masks, weights=seen, minlength=size)
    # Subset sums: after the pass over bit b, entry S holds the sum over subsets of S
    # that differ from S only in bits <= b.
    for b in range(n):
        bit = 1 << b
        upper = (np.arange(size) & bit) != 0
        total_won[upper] += total_won[np.flatnonzero(upper) ^ bit]
        total_seen[upper] += total_seen[np.flatnonzero(upper) ^ bit]
    v = _worth(total_won, total_seen, worth)
    popcount = np.array([bin(s).count("1") for s in range(size)])
    weight = np.array(
        [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    )
    values = np.zeros(n)
    everyone = np.arange(size)
    for c in range(n):
        bit = 1 << c
        without = everyone[(everyone & bit) == 0]
        values[c] = float(np.sum(weight[popcount[without]] * (v[without | bit] - v[without])))
    return values


def _sampled(
    masks: np.ndarray,
    won: np.ndarray,
    seen: np.ndarray,
    n: int,
    worth: str,
    samples: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of each channel's marginal contribution over random orders."""
    rng = np.random.default_rng(seed)
    members = np.array([[(int(m) >> c) & 1 for c in range(n)] for m in masks], dtype=bool)
    total = np.zeros(n)
    squares = np.zeros(n)
    for _ in range(samples):
        order = rng.permutation(n)
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        # A journey's set joins the coalition when its last channel in this order does.
        complete = np.where(members, position[None, :], -1).max(axis=1)
        v = _worth(
            np.cumsum(np.bincount(complete, weights=won, minlength=n)),
            np.cumsum(np.bincount(complete, weights=seen, minlength=n)),
            worth,
        )
        marginal = np.diff(np.concatenate([[0.0], v]))
        contribution = np.empty(n)
        contribution[order] = marginal
        total += contribution
        squares += contribution**2
    mean = total / samples
    spread = np.sqrt(np.maximum(squares / samples - mean**2, 0.0) / max(samples - 1, 1))
    return mean, spread


def solve(
    sets: pd.DataFrame,
    worth: str = "conversions",
    max_exact: int = 15,
    samples: int = 2000,
    seed: int = 0,
) -> ShapleyResult:
    """Shapley credits from ``channel_sets`` rows (collected)."""
    if worth not in WORTHS:
        raise ValueError(f"unknown Shapley worth '{worth}'; expected one of {', '.join(WORTHS)}")
    sets = sets[sets["channels"].map(len) > 0]
    channels = sorted({c for cs in sets["channels"] for c in cs})
    n = len(channels)
    if n == 0:
        return ShapleyResult([], {}, {}, True, 0)
    index = {c: i for i, c in enumerate(channels)}
    masks = np.array([sum(1 << index[c] for c in cs) for cs in sets["channels"]], dtype=object)
    seen = sets["journeys"].to_numpy(dtype=float)
    total_conversions = float(sets["conversions"].sum())
    total_revenue = float(sets["revenue"].sum())
    results = {}
    spreads = None
    for target, won in (
        ("conversions", sets["conversions"].to_numpy(dtype=float)),
        ("revenue", sets["revenue"].to_numpy(dtype=float)),
    ):
        if n <= max_exact:
            raw = _exact(masks.astype(np.int64), won, seen, n, worth)
        else:
            raw, se = _sampled(masks, won, seen, n, worth, samples, seed)
            if target == "conversions":
                spreads = se
        total = total_conversions if target == "conversions" else total_revenue
        norm = raw.sum()
        scale = total / norm if norm != 0 else 0.0
        results[target] = (raw * scale, scale)
    conversions, scale = results["conversions"]
    low = high = None
    if spreads is not None:
        half = 1.96 * spreads * abs(scale)
        low = {c: float(conversions[i] - half[i]) for i, c in enumerate(channels)}
        high = {c: float(conversions[i] + half[i]) for i, c in enumerate(channels)}
    return ShapleyResult(
        channels=channels,
        conversions={c: float(conversions[i]) for i, c in enumerate(channels)},
        revenue={c: float(results["revenue"][0][i]) for i, c in enumerate(channels)},
        exact=n <= max_exact,
        samples=0 if n <= max_exact else samples,
        low=low,
        high=high,
    )
