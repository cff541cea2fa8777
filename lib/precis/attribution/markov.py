"""Markov-chain attribution, solved exactly.

The chain has a start state, one transient state per observed history of the last
``order`` channels (a path starts at its first ``order`` channels), and two absorbing
states, conversion and null. Transition counts come from the paths, aggregated on Spark;
the conversion probability from the start is the solution of the linear system
``(I - Q) p = r`` (Q: transient-to-transient probabilities, r: one-step conversion
probabilities), not a simulation. Loops and self-transitions (a channel repeated) are
part of Q and handled by the solve like any other transition.

The removal effect of a channel is ``1 - p_without / p``, where ``p_without`` is the
conversion probability when every state whose history holds the channel leads to null.
Credited conversions are the removal effects normalized to sum to the total conversions;
revenue the same with the expected conversion value (``(I - Q) v = r_value``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

CONVERSION, NULL, STATE = "conversion", "null", "state"


def _histories(path: Column, order: int) -> Column:
    """The states a path visits: its first ``order`` channels, then each later step's last ``order``.

    Paths shorter than ``order`` visit one state, the whole path. This is
    ChannelAttribution's chain: a higher-order path starts at its first full history.
    """
    return F.transform(
        F.sequence(F.least(F.size(path), F.lit(order)), F.size(path)),
        lambda i: F.slice(path, F.greatest(F.lit(1), i - (order - 1)), F.least(i, F.lit(order))),
    )


def transitions(paths: DataFrame, order: int = 1) -> DataFrame:
    """Aggregated transitions ``source``, ``target``, ``kind``, ``n``, ``revenue``.

    ``source`` and ``target`` are channel histories (arrays; the start is the empty
    array); ``kind`` is ``state`` for a move between transient states, ``conversion`` or
    ``null`` for the absorbing step at the end of a path (``target`` null).
    """
    if not 1 <= order <= 3:
        raise ValueError(f"markov order must be 1, 2 or 3, got {order}")
    with_states = paths.filter(F.size("path") > 0).select(
        _histories(F.col("path"), order).alias("states"),
        "journeys",
        "conversions",
        "nulls",
        "revenue",
    )
    empty = F.array().cast("array<string>")
    steps = with_states.select(
        F.explode(
            F.transform(
                "states",
                lambda s, i: F.struct(
                    F.when(i == 0, empty).otherwise(F.get(F.col("states"), i - 1)).alias("source"),
                    s.alias("target"),
                ),
            )
        ).alias("step"),
        "journeys",
    ).select(
        "step.source",
        "step.target",
        F.lit(STATE).alias("kind"),
        F.col("journeys").alias("n"),
        F.lit(0.0).alias("revenue"),
    )
    last = F.element_at("states", -1)
    ends = with_states.select(
        last.alias("source"),
        F.lit(None).cast("array<string>").alias("target"),
        F.explode(
            F.array(
                F.struct(
                    F.lit(CONVERSION).alias("kind"),
                    F.col("conversions").alias("n"),
                    F.col("revenue").alias("revenue"),
                ),
                F.struct(
                    F.lit(NULL).alias("kind"),
                    F.col("nulls").alias("n"),
                    F.lit(0.0).alias("revenue"),
                ),
            )
        ).alias("end"),
    ).select("source", "target", "end.kind", "end.n", "end.revenue")
    return (
        steps.unionByName(ends)
        .filter(F.col("n") > 0)
        .groupBy("source", "target", "kind")
        .agg(F.sum("n").alias("n"), F.sum("revenue").alias("revenue"))
    )


@dataclass(frozen=True)
class MarkovResult:
    channels: list[str]
    conversion_probability: float
    removal_effects: dict[str, float]
    value_removal_effects: dict[str, float]
    conversions: dict[str, float]
    revenue: dict[str, float]
    states: int


class _Chain:
    """Transient states indexed 0..n-1 (0 is the start) with their one-step vectors."""

    def __init__(self, rows: pd.DataFrame):
        keys: dict[tuple[str, ...], int] = {(): 0}
        for column in ("source", "target"):
            for value in rows[column]:
                if value is not None:
                    keys.setdefault(tuple(value), len(keys))
        self.states = list(keys)
        n = len(keys)
        src = np.array([keys[tuple(s)] for s in rows["source"]], dtype=np.int64)
        counts = rows["n"].to_numpy(dtype=float)
        totals = np.bincount(src, weights=counts, minlength=n)
        totals[totals == 0] = 1.0  # states with no way out do not occur; keeps the division safe
        moves = (rows["kind"] == STATE).to_numpy()
        dst = np.array([keys[tuple(t)] for t in rows.loc[moves, "target"]], dtype=np.int64)
        self.q = sp.csr_matrix(
            (counts[moves] / totals[src[moves]], (src[moves], dst)), shape=(n, n)
        )
        conv = (rows["kind"] == CONVERSION).to_numpy()
        self.r = np.bincount(src[conv], weights=counts[conv], minlength=n) / totals
        self.r_value = (
            np.bincount(
                src[conv], weights=rows.loc[conv, "revenue"].to_numpy(dtype=float), minlength=n
            )
            / totals
        )

    def solve(self, keep: np.ndarray) -> tuple[float, float]:
        """Conversion probability and expected value from the start over the kept states."""
        idx = np.flatnonzero(keep)
        q = self.q[idx][:, idx]
        system = sp.identity(len(idx), format="csc") - q.tocsc()
        solved = spla.spsolve(system, np.column_stack([self.r[idx], self.r_value[idx]]))
        solved = np.atleast_2d(solved)
        if solved.shape[0] != len(idx):
            solved = solved.T
        return float(solved[0, 0]), float(solved[0, 1])


def solve(rows: pd.DataFrame) -> MarkovResult:
    """Exact conversion probability, removal effects and credits from ``transitions`` rows."""
    chain = _Chain(rows)
    channels = sorted({c for state in chain.states for c in state})
    total_conversions = float(rows.loc[rows["kind"] == CONVERSION, "n"].sum())
    total_revenue = float(rows.loc[rows["kind"] == CONVERSION, "revenue"].sum())
    everything = np.ones(len(chain.states), dtype=bool)
    p, v = chain.solve(everything)
    effects: dict[str, float] = {}
    value_effects: dict[str, float] = {}
    for channel in channels:
        keep = np.array([channel not in state for state in chain.states], dtype=bool)
        p_without, v_without = chain.solve(keep)
        effects[channel] = max(0.0, 1.0 - p_without / p) if p > 0 else 0.0
        value_effects[channel] = max(0.0, 1.0 - v_without / v) if v > 0 else 0.0
    return MarkovResult(
        channels=channels,
        conversion_probability=p,
        removal_effects=effects,
        value_removal_effects=value_effects,
        conversions=_spread(effects, total_conversions),
        revenue=_spread(value_effects, total_revenue),
        states=len(chain.states),
    )


def _spread(weights: dict[str, float], total: float) -> dict[str, float]:
    norm = sum(weights.values())
    if norm <= 0:
        return dict.fromkeys(weights, 0.0)
    return {k: total * w / norm for k, w in weights.items()}


def credits(result: MarkovResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "channel": result.channels,
            "conversions": [result.conversions[c] for c in result.channels],
            "revenue": [result.revenue[c] for c in result.channels],
        }
    )
