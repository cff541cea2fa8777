"""How well the experiments job recovers a generated world's planted lifts.

Pure Python over ``gold/experiment_results`` rows of one run date and
``truth/experiment_lifts`` (a few rows per experiment): the evaluate job reads both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

METRICS = ("conversion_rate", "revenue_per_person")


def scores(
    results: Iterable[Mapping[str, Any]], truth: Iterable[Mapping[str, Any]]
) -> dict[str, float]:
    """Per metric: ``<metric>_coverage`` (share of 95% intervals that hold the true lift)
    and ``<metric>_comparisons``; ``srm_correct`` 1.0 when exactly the experiments whose
    assignments were planted lost are flagged."""
    lifts = {(t["experiment_id"], t["arm"], t["metric"]): t for t in truth}
    rows = [r for r in results if (r["experiment_id"], r["arm"], r["metric"]) in lifts]
    found: dict[str, float] = {}
    for metric in METRICS:
        mine = [r for r in rows if r["metric"] == metric]
        held = [
            r["ci_low"]
            <= lifts[(r["experiment_id"], r["arm"], metric)]["true_lift"]
            <= r["ci_high"]
            for r in mine
        ]
        found[f"{metric}_comparisons"] = float(len(mine))
        if mine:
            found[f"{metric}_coverage"] = sum(held) / len(mine)
    judged = {r["experiment_id"] for r in rows}
    planted = {k[0] for k, t in lifts.items() if t["lost"] > 0 and k[0] in judged}
    flagged = {r["experiment_id"] for r in rows if r["srm_failed"]}
    found["srm_correct"] = float(flagged == planted)
    return found
