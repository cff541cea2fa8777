"""An independent exact Markov attribution, in plain Python with exact fractions.

Written separately from ``precis.attribution.markov`` (no numpy, no Spark): the chain is
built from the raw path list and absorbed by Gauss-Jordan elimination over Fractions.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

START, CONV, NULL = "<start>", "<conv>", "<null>"


def _states(path: list[str], order: int) -> list[tuple[str, ...]]:
    # A path starts at its first full history (or the whole path if shorter).
    return [
        tuple(path[max(0, i - order + 1) : i + 1])
        for i in range(min(len(path), order) - 1, len(path))
    ]


def chain(paths: list[tuple[list[str], int, int]], order: int) -> dict:
    """Transition counts {source: {target: count}} from (path, conversions, nulls) rows."""
    counts: dict = defaultdict(lambda: defaultdict(int))
    for path, conversions, nulls in paths:
        if not path:
            continue
        states = _states(path, order)
        weight = conversions + nulls
        previous = START
        for state in states:
            counts[previous][state] += weight
            previous = state
        if conversions:
            counts[previous][CONV] += conversions
        if nulls:
            counts[previous][NULL] += nulls
    return counts


def conversion_probability(counts: dict, removed: str | None = None) -> Fraction:
    """P(reach CONV from START); states holding ``removed`` lead to NULL."""
    transient = [s for s in counts if s == START or removed is None or removed not in s]
    index = {s: i for i, s in enumerate(transient)}
    n = len(transient)
    # Rows of (I - Q | r).
    matrix = [[Fraction(0)] * (n + 1) for _ in range(n)]
    for s, i in index.items():
        total = sum(counts[s].values())
        matrix[i][i] += 1
        for target, c in counts[s].items():
            if target == CONV:
                matrix[i][n] += Fraction(c, total)
            elif target in index:
                matrix[i][index[target]] -= Fraction(c, total)
    for col in range(n):
        pivot = next(r for r in range(col, n) if matrix[r][col] != 0)
        matrix[col], matrix[pivot] = matrix[pivot], matrix[col]
        lead = matrix[col][col]
        matrix[col] = [v / lead for v in matrix[col]]
        for r in range(n):
            if r != col and matrix[r][col] != 0:
                factor = matrix[r][col]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[col])]
    return matrix[index[START]][n]


def credits(paths: list[tuple[list[str], int, int]], order: int = 1) -> dict[str, float]:
    counts = chain(paths, order)
    channels = sorted({c for path, _, _ in paths for c in path})
    p = conversion_probability(counts)
    effects = {c: 1 - conversion_probability(counts, c) / p for c in channels}
    total = sum(conv for path, conv, _ in paths if path)
    norm = sum(effects.values())
    return {c: float(e / norm * total) for c, e in effects.items()}
