"""Hill response curves: outcome(spend) = base + top * s^shape / (s^shape + half^shape).

``top`` is what unlimited spend would add, ``half`` the spend that adds half of it,
``shape`` how sharply it bends (1: every extra unit returns less than the one before;
above 1 an S: little until spend passes a threshold). The curve of a day's spend gives
the day's expected outcome (conversions or revenue attributed to the channel). ``base``
is what the channel is credited with whatever it spends: attribution credits a channel
for conversions that would have happened anyway, which no spend changes (so no split of
the budget either).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize

#: Bounds of ``shape`` in a fit: below 0.5 or above 3 the data of a few months cannot
#: tell curves apart, and extreme shapes make the allocation jump.
SHAPE_BOUNDS = (0.5, 3.0)


@dataclass(frozen=True)
class Hill:
    top: float
    half: float
    shape: float
    base: float = 0.0

    def __call__(self, spend: float | np.ndarray) -> float | np.ndarray:
        s = np.maximum(np.asarray(spend, dtype=float), 0.0)
        ratio = np.power(s / self.half, self.shape)
        out = self.base + self.top * ratio / (1.0 + ratio)
        return float(out) if np.ndim(out) == 0 else out

    def marginal(self, spend: float) -> float:
        """d outcome / d spend at ``spend`` (the return of the next unit)."""
        if spend <= 0:
            return (
                math.inf if self.shape < 1 else (self.top / self.half if self.shape == 1 else 0.0)
            )
        r = (spend / self.half) ** self.shape
        return self.top * self.shape * r / (spend * (1.0 + r) ** 2)


def fit(spend: np.ndarray, outcome: np.ndarray) -> Hill:
    """The least-squares Hill curve through daily (spend, outcome) points.

    Needs days with different spends: with one spend level any curve through that point
    fits, and the result says so (a ValueError naming the problem).
    """
    s, y = np.asarray(spend, dtype=float), np.asarray(outcome, dtype=float)
    keep = np.isfinite(s) & np.isfinite(y) & (s >= 0)
    s, y = s[keep], y[keep]
    if len(s) < 4 or np.ptp(s) <= 1e-9 * max(float(np.max(s, initial=0.0)), 1.0):
        raise ValueError(
            f"a response curve needs at least 4 days of differing spend (got {len(s)} day(s), "
            f"spend {float(np.min(s)) if len(s) else 0.0:.4g} to "
            f"{float(np.max(s)) if len(s) else 0.0:.4g})"
        )
    scale_s, scale_y = float(np.max(s)), max(float(np.max(y)), 1e-12)

    def model(x: np.ndarray, top: float, half: float, shape: float, base: float) -> np.ndarray:
        ratio = np.power(np.maximum(x, 0.0) / half, shape)
        return base + top * ratio / (1.0 + ratio)

    # In units of the largest spend and outcome, so one set of bounds fits every channel.
    best, best_err = None, math.inf
    for half0 in (0.25, 0.5, 1.0, 2.0):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = optimize.curve_fit(
                    model,
                    s / scale_s,
                    y / scale_y,
                    p0=(2.0, half0, 1.0, 0.0),
                    bounds=((1e-6, 1e-3, SHAPE_BOUNDS[0], 0.0), (1e3, 1e3, SHAPE_BOUNDS[1], 1.0)),
                    maxfev=20_000,
                )
        except RuntimeError:
            continue
        err = float(np.sum((model(s / scale_s, *params) - y / scale_y) ** 2))
        if err < best_err:
            best, best_err = params, err
    if best is None:
        raise ValueError("the response curve did not converge from any start")
    top, half, shape, base = best
    return Hill(float(top * scale_y), float(half * scale_s), float(shape), float(base * scale_y))
