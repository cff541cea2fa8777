"""Random draws as pure expressions of (seed, salt, entity key), in Spark SQL text.

Every draw hashes the seed, a salt naming what is drawn and the keys of the entity it
is drawn for. Unlike ``rand()`` the value does not depend on how rows are partitioned
or ordered, so the same seed gives the same rows on a laptop and on a cluster.

Why SQL text rather than ``Column`` objects: every ``Column`` operation is a round
trip to the JVM, and the generator's few hundred expressions took tens of thousands of
them (20 s of plan building for the demo). A string becomes one ``F.expr`` call.
Arguments are SQL expressions (usually column names); numbers are formatted with
``num`` so that 0.5 is a double, not a decimal.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

_BITS = 1 << 53  # doubles hold 53 bits exactly, so every hash maps to a distinct double
SECONDS_PER_DAY = 86_400


# ------------------------------------------------------------------ SQL text
def num(x: float | int) -> str:
    """A SQL numeric literal: doubles get the D suffix, large integers the L suffix."""
    if isinstance(x, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(x, int):
        return f"{x}L" if abs(x) >= 2**31 else str(x)
    return f"{float(x)!r}D".upper().replace("E+", "E")


def text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def array_of(values: Iterable[str | float]) -> str:
    return "array(" + ", ".join(text(v) if isinstance(v, str) else num(v) for v in values) + ")"


def exprs(named: Mapping[str, str]) -> list[Column]:
    """``{name: sql}`` as aliased columns, in order."""
    return [F.expr(sql).alias(name) for name, sql in named.items()]


# --------------------------------------------------------------------- draws
def salt_key(seed: int, salt: str) -> str:
    """(seed, salt) folded into one 64-bit literal, the first argument of every hash.

    Hashing a long is cheaper than hashing the salt's text on every row, and the
    generated code is smaller: the generator draws a few hundred values per row.
    """
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return f"{int.from_bytes(digest[:8], 'big') >> 1}L"  # 63 bits: always a valid positive literal


def _hash(seed: int, salt: str, keys: Sequence[str]) -> str:
    return f"xxhash64({salt_key(seed, salt)}, {', '.join(keys)})"


def uniform(seed: int, salt: str, *keys: str) -> str:
    """Uniform on the open interval (0, 1): safe inside ``ln`` and ``1 / u``."""
    # The top 53 bits of the hash, as a double: every value exact and non-negative.
    return f"((CAST(shiftrightunsigned({_hash(seed, salt, keys)}, 11) AS DOUBLE) + 0.5D) * {num(1.0 / _BITS)})"


def bucket(seed: int, salt: str, n: int, *keys: str) -> str:
    """An integer in 0..n-1, uniformly (store, cafe, brand of an entity)."""
    return f"CAST(pmod({_hash(seed, salt, keys)}, {n}) AS INT)"


def normal(u1: str, u2: str) -> str:
    """Standard normal by Box-Muller from two independent uniforms."""
    return f"(sqrt(-2.0D * ln({u1})) * cos({num(2 * math.pi)} * {u2}))"


def exponential(u: str, mean: str) -> str:
    return f"(-ln({u}) * {mean})"


def gamma(shape: str, u1: str, u2: str, u3: str) -> str:
    """Gamma(shape, rate 1) from three uniforms.

    Wilson-Hilferty is accurate for shape >= 1 only, so draw Gamma(shape + 1) with it and
    scale by U^(1/shape), which is exactly Gamma(shape) for any shape > 0. The truth
    tables store the drawn values, so models are judged against what was planted.
    """
    boosted = f"({shape} + 1.0D)"
    c = f"(1.0D / (9.0D * {boosted}))"
    cube = f"greatest(1.0D - {c} + {normal(u1, u2)} * sqrt({c}), 1.0E-3D)"
    return f"({boosted} * pow({cube}, 3.0D) * pow({u3}, 1.0D / ({shape})))"


def poisson(mean: str, u: str, u2: str) -> str:
    """Poisson count by inversion of ``u``; above a mean of 60, where inversion gets long,
    a rounded normal from ``u`` and ``u2``. Pass column names: ``mean`` appears often."""
    cap = f"greatest(CAST(least(ceil({mean} + 6.0D * sqrt({mean}) + 6.0D), 120) AS INT), 1)"
    # mean and u ride in the accumulator: a column captured by the lambda would be
    # re-evaluated on every step.
    start = f"named_struct('k', 0, 'pmf', exp(-{mean}), 'cdf', exp(-{mean}), 'm', {mean}, 'u', {u})"
    pmf = "_acc.pmf * _acc.m / CAST(_i AS DOUBLE)"
    advanced = f"named_struct('k', _acc.k + 1, 'pmf', {pmf}, 'cdf', _acc.cdf + {pmf}, 'm', _acc.m, 'u', _acc.u)"
    inverted = (
        f"aggregate(sequence(1, {cap}), {start}, "
        f"(_acc, _i) -> IF(_acc.cdf < _acc.u, {advanced}, _acc), _acc -> _acc.k)"
    )
    approx = f"CAST(greatest(round({mean} + sqrt({mean}) * {normal(u, u2)}), 0.0D) AS INT)"
    return f"(CASE WHEN {mean} <= 0 THEN 0 WHEN {mean} > 60 THEN {approx} ELSE {inverted} END)"


def geometric(p: str, u: str, cap: int) -> str:
    """Trials up to and including the first success (1, 2, ...), capped."""
    trials = f"ceil(ln({u}) / ln(1.0D - least({p}, 0.999999999999D)))"
    return f"CAST(least(greatest({trials}, 1), {cap}) AS INT)"


def choice(values: Sequence[str], weights: Sequence[float], u: str) -> str:
    """One of ``values`` drawn with the given (unnormalized) weights."""
    n = len(values)
    if len(set(weights)) == 1:
        return f"element_at({array_of(values)}, CAST(least(floor({u} * {n}), {n - 1}) AS INT) + 1)"
    total = float(sum(weights))
    branches = []
    cumulative = 0.0
    for value, weight in zip(values[:-1], weights[:-1]):
        cumulative += weight / total
        branches.append(f"WHEN {u} < {num(cumulative)} THEN {text(value)}")
    return f"(CASE {' '.join(branches)} ELSE {text(values[-1])} END)"


def count_below(values: str, u: str, n: int) -> str:
    """How many of the ``n`` ascending array elements are below ``u`` (inverse CDF lookup)."""
    return (
        "("
        + " + ".join(f"CAST(element_at({values}, {i}) < {u} AS INT)" for i in range(1, n + 1))
        + ")"
    )


def zipf_rank(n: str, exponent: float, u: str) -> str:
    """Rank in 1..n with P(rank) roughly proportional to rank^-exponent (long tail).

    Inverse CDF of the continuous power law on [1, n + 1]: closed form, so an item can
    be drawn in any row without joining the catalogue.
    """
    top = f"(CAST({n} AS DOUBLE) + 1.0D)"
    if abs(exponent - 1.0) < 1e-9:
        x = f"pow({top}, {u})"
    else:
        e = 1.0 - exponent
        x = f"pow(1.0D + {u} * (pow({top}, {num(e)}) - 1.0D), {num(1.0 / e)})"
    return f"CAST(least(greatest(floor({x}), 1), {n}) AS BIGINT)"


# ------------------------------------------------------------------- ids
def _hex64(seed: int, salt: str, keys: Sequence[str]) -> str:
    return f"lpad(lower(hex({_hash(seed, salt, keys)})), 16, '0')"


def hex_id(seed: int, salt: str, *keys: str, length: int = 20) -> str:
    """Lower-case hex from two 64-bit hashes: 80 bits by default, so ids of millions of
    rows never collide."""
    if length <= 16:
        return f"substring({_hex64(seed, salt, keys)}, 1, {length})"
    wide = f"concat({_hex64(seed, salt, keys)}, {_hex64(seed, salt + '#2', keys)})"
    return f"substring({wide}, 1, {length})"


def uuid_like(seed: int, salt: str, *keys: str) -> str:
    """Lower-case 8-4-4-4-12 hex, like a device advertising id."""
    return (
        f"regexp_replace({hex_id(seed, salt, *keys, length=32)}, "
        f"'^(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})$', '$1-$2-$3-$4-$5')"
    )


def bijective_digits(value: str, multiplier: int, offset: int, modulus: int, width: int) -> str:
    """Zero-padded ``(value * multiplier + offset) mod modulus``.

    With ``multiplier`` coprime to ``modulus`` distinct values below ``modulus`` give
    distinct digits, so generated phones and member ids are unique by construction while
    not revealing the person's index.
    """
    mixed = f"pmod(CAST({value} AS BIGINT) * {multiplier}L + {offset % modulus}L, {modulus}L)"
    return f"lpad(CAST({mixed} AS STRING), {width}, '0')"
