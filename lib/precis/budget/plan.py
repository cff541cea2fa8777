"""Split a total budget across channels by their response curves.

The best split maximizes the summed expected outcome subject to the total and each
channel's bounds. With concave curves (shape <= 1) giving each small slice of budget to
the channel whose next unit returns most is optimal up to the slice; S-shaped curves
are not concave, so the greedy split is then polished by a constrained optimizer from
it, from the current split and from spread-out splits, and the best is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from precis.budget.curves import Hill

#: Slices of the budget in the greedy pass.
STEPS = 2_000
#: Further starting splits of the optimizer, drawn with a fixed seed: plans are
#: reproducible.
STARTS, SEED = 24, 7


@dataclass(frozen=True)
class Bounds:
    low: float = 0.0
    high: float = float("inf")


def total(curves: Mapping[str, Hill], spend: Mapping[str, float]) -> float:
    """The summed expected outcome of ``spend`` per channel."""
    return float(sum(curves[c](spend.get(c, 0.0)) for c in curves))


def allocate(
    curves: Mapping[str, Hill],
    budget: float,
    bounds: Mapping[str, Bounds] | None = None,
    start: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Spend per channel: summing to ``budget``, within ``bounds``, the outcome maximal.

    ``start`` (the current split) is one of the optimizer's starting points. A budget the
    bounds cannot hold is a ValueError naming both.
    """
    channels = sorted(curves)
    limits = {c: (bounds or {}).get(c, Bounds()) for c in channels}
    low = np.array([limits[c].low for c in channels])
    high = np.array([limits[c].high for c in channels])
    if low.sum() > budget + 1e-9 or high.sum() < budget - 1e-9:
        raise ValueError(
            f"a budget of {budget:,.2f} does not fit the channels' bounds "
            f"(at least {low.sum():,.2f}, at most {high.sum():,.2f} in all)"
        )
    candidates = [_greedy(curves, channels, budget, low, high)]
    seeds = [candidates[0], *_spread(budget, low, high)]
    if start is not None:
        seeds.append(np.clip(np.array([start.get(c, 0.0) for c in channels]), low, high))
    for seed in seeds:
        polished = _polish(curves, channels, budget, low, high, seed)
        if polished is not None:
            candidates.append(polished)
    best = max(candidates, key=lambda x: total(curves, dict(zip(channels, x, strict=True))))
    return {c: float(v) for c, v in zip(channels, best, strict=True)}


def _greedy(
    curves: Mapping[str, Hill],
    channels: list[str],
    budget: float,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    spend = low.astype(float).copy()
    step = (budget - spend.sum()) / STEPS
    if step <= 0:
        return spend
    for _ in range(STEPS):
        gains = np.array(
            [
                curves[c](min(spend[i] + step, high[i])) - curves[c](spend[i])
                if spend[i] < high[i]
                else -np.inf
                for i, c in enumerate(channels)
            ]
        )
        spend[int(np.argmax(gains))] += step
    return np.minimum(spend, high)


def _spread(budget: float, low: np.ndarray, high: np.ndarray) -> list[np.ndarray]:
    """Starting splits across the feasible ones: even, and fixed pseudo-random ones (an
    S-shaped curve is worth funding only past its threshold, which no small step shows)."""
    rng = np.random.default_rng(SEED)
    room = np.minimum(high, budget) - low
    shares = [np.full(len(low), 1.0 / len(low)), *rng.dirichlet(np.ones(len(low)), STARTS)]
    spare = budget - low.sum()
    return [np.minimum(low + spare * w, low + room) for w in shares]


def _polish(
    curves: Mapping[str, Hill],
    channels: list[str],
    budget: float,
    low: np.ndarray,
    high: np.ndarray,
    seed: np.ndarray,
) -> np.ndarray | None:
    def loss(x: np.ndarray) -> float:
        return -total(curves, dict(zip(channels, x, strict=True)))

    finite_high = [h if np.isfinite(h) else budget for h in high]
    found = optimize.minimize(
        loss,
        seed,
        method="SLSQP",
        bounds=list(zip(low, finite_high, strict=True)),
        constraints=[{"type": "eq", "fun": lambda x: float(np.sum(x) - budget)}],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    if not found.success:
        return None
    x = np.clip(found.x, low, high)
    return x * (budget / x.sum()) if x.sum() > 0 else x
