"""Noise of the Laplace and Gaussian mechanisms, drawn by Spark from a seeded source.

Every draw is a built-in expression over ``F.rand(seed)`` (no Python UDF): the Laplace
noise by its inverse CDF, the Gaussian by Box-Muller over two independent uniform
streams (``add_noise``). ``F.rand(seed)`` seeds each partition with ``seed + partition index``, so the
streams of one release get seeds far apart (:func:`derive_seed`), never neighbours whose
partitions would replay each other's numbers.

Calibration (docs/share.md):

- Laplace: scale b = L1 sensitivity / epsilon; variance 2 b^2; delta 0.
- Gaussian: sigma = L2 sensitivity * sqrt(2 ln(1.25 / delta)) / epsilon, the classic
  bound (valid for epsilon <= 1); variance sigma^2.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

Mechanism = Literal["laplace", "gaussian"]

# F.rand draws multiples of 2^-53 in [0, 1); 0 itself would send a logarithm to -inf.
# Lifting it to the next value moves a probability of 2^-53, far below any epsilon.
_SMALLEST = 2.0**-53
_SEED_BITS = 62  # room for F.rand's per-partition offset without overflowing a long


def laplace_scale(sensitivity: float, epsilon: float) -> float:
    """b of the Laplace mechanism for an L1 ``sensitivity``."""
    _check(sensitivity, epsilon)
    return sensitivity / epsilon


def gaussian_sigma(sensitivity: float, epsilon: float, delta: float) -> float:
    """sigma of the classic Gaussian mechanism for an L2 ``sensitivity``."""
    _check(sensitivity, epsilon)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"the Gaussian mechanism needs delta in (0, 1), got {delta}")
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def _check(sensitivity: float, epsilon: float) -> None:
    if sensitivity < 0 or epsilon <= 0:
        raise ValueError(f"need sensitivity >= 0 and epsilon > 0 (got {sensitivity}, {epsilon})")


def laplace(u: Column, scale: float) -> Column:
    """Laplace(0, ``scale``) noise from a uniform draw ``u`` in [0, 1), by the inverse CDF.

    ``u`` must be a column already computed (``add_noise``), not ``F.rand`` itself: the
    expression reads it in a condition and in one of two branches, and a ``F.rand`` in a
    branch advances only on the rows that take it, drifting away from the condition's.
    """
    u = F.greatest(u, F.lit(_SMALLEST))
    b = F.lit(float(scale))
    return F.when(u < 0.5, b * F.log(2.0 * u)).otherwise(-b * F.log(2.0 * (1.0 - u)))


def gaussian(u1: Column, u2: Column, sigma: float) -> Column:
    """Normal(0, ``sigma``^2) noise from two independent uniform draws in [0, 1), by
    Box-Muller."""
    radius = F.sqrt(-2.0 * F.log(1.0 - u1))  # 1 - u1 is in (0, 1]: its logarithm is finite
    return F.lit(float(sigma)) * radius * F.cos(2.0 * math.pi * u2)


def add_noise(frame: DataFrame, name: str, calibration: Calibration, seed: int) -> DataFrame:
    """``frame`` with column ``name``: one independent draw of the calibration's noise per
    row, from ``F.rand`` streams seeded by ``seed``.

    The uniform draws are columns of their own first, so each is drawn once per row
    whatever the expression built on it.
    """
    uniforms = [f"_{name}_u{i}" for i in (1, 2)]
    if calibration.mechanism == "laplace":
        drawn = frame.withColumn(uniforms[0], F.rand(seed))
        noise = laplace(F.col(uniforms[0]), calibration.scale)
    else:
        drawn = frame.withColumns(
            {u: F.rand(derive_seed(seed, u)) for u in uniforms},
        )
        noise = gaussian(F.col(uniforms[0]), F.col(uniforms[1]), calibration.scale)
    return drawn.withColumn(name, noise).drop(*uniforms)


@dataclass(frozen=True)
class Calibration:
    """One query's mechanism: its sensitivity (L1 for Laplace, L2 for Gaussian) and
    privacy parameters."""

    mechanism: Mechanism
    sensitivity: float
    epsilon: float
    delta: float = 0.0

    @classmethod
    def of(
        cls, mechanism: Mechanism, l1: float, l2: float, epsilon: float, delta: float | None
    ) -> Calibration:
        """The calibration for a query whose per-person contribution has L1 norm ``l1``
        and L2 norm ``l2`` at most (Laplace ignores ``delta``)."""
        if mechanism == "laplace":
            return cls(mechanism, l1, epsilon, 0.0)
        return cls(mechanism, l2, epsilon, float(delta or 0.0))

    @property
    def scale(self) -> float:
        """Laplace b or Gaussian sigma."""
        if self.mechanism == "laplace":
            return laplace_scale(self.sensitivity, self.epsilon)
        return gaussian_sigma(self.sensitivity, self.epsilon, self.delta)

    @property
    def sd(self) -> float:
        """Standard deviation of the noise (public: consumers size their intervals by it)."""
        return self.scale * (math.sqrt(2.0) if self.mechanism == "laplace" else 1.0)


def derive_seed(seed: int, *labels: str) -> int:
    """A seed for one stream of a release (a table, a query, a uniform of Box-Muller):
    far from every other stream's, as a hash of the release seed and the labels."""
    digest = hashlib.sha256(":".join([str(seed), *labels]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _SEED_BITS)


def fresh_seed() -> int:
    """A random release seed from the operating system, for ``share.seed: null``."""
    return int.from_bytes(os.urandom(8), "big") >> (64 - _SEED_BITS)
