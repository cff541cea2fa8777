"""``gold/experiment_results`` rows from the per-arm sums of ``outcomes.arm_sums``.

One row per (experiment, non-control arm, metric). Within an experiment the Holm
adjustment runs over all of its rows (every arm and both metrics: the family of
comparisons one reads together); the sample-ratio test is one per experiment, on the
arms' sizes. Pure Python over a few rows per experiment.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from precis.errors import PrecisError
from precis.experiments.stats import (
    Moments,
    always_valid,
    compare,
    cuped_theta,
    holm,
    sample_ratio_p,
)

#: p-value under which the sample-ratio test fails (assignment or logging is broken).
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class ResultRow:
    experiment_id: str
    arm: str
    metric: str
    n: int
    n_control: int
    value: float
    control_value: float
    lift_abs: float
    ci_low: float
    ci_high: float
    p_value: float
    p_value_holm: float
    srm_p_value: float
    srm_failed: bool
    adjusted: bool
    ci_low_sequential: float | None
    ci_high_sequential: float | None


def results(
    sums: Iterable[Mapping[str, Any]],
    weights: Mapping[str, Mapping[str, float]],
    control_arm: str,
    sequential_scale: float | None = None,
) -> list[ResultRow]:
    """The rows of every experiment in ``sums`` (rows of ``outcomes.arm_sums``).

    ``weights``: experiment -> arm -> intended share (absent: equal shares).
    ``sequential_scale``: when set, also an always-valid interval whose mixing standard
    deviation is this fraction of the control arm's standard deviation of the metric.
    An experiment with nobody in ``control_arm`` is left out (``lacking_control`` names
    it for the caller to report); when no experiment has one, the setting is wrong: an
    error naming every experiment's arms.
    """
    sums = list(sums)
    by_experiment: dict[str, dict[str, dict[str, Moments]]] = defaultdict(dict)
    for r in sums:
        arms = by_experiment[r["experiment_id"]].setdefault(r["metric"], {})
        arms[r["arm"]] = Moments(
            int(r["n"]),
            float(r["y"]),
            float(r["yy"]),
            float(r["x"]),
            float(r["xx"]),
            float(r["xy"]),
        )
    lacking = lacking_control(sums, control_arm)
    if lacking and len(lacking) == len(by_experiment):
        # Not one experiment has it: the setting names no arm of these experiments.
        raise PrecisError(
            f"no experiment has a '{control_arm}' arm (experiments.control_arm); "
            + "; ".join(f"'{e}' has {', '.join(arms)}" for e, arms in sorted(lacking.items()))
        )
    rows: list[ResultRow] = []
    for experiment in sorted(set(by_experiment) - set(lacking)):
        rows.extend(
            _experiment(
                experiment,
                by_experiment[experiment],
                weights.get(experiment, {}),
                control_arm,
                sequential_scale,
            )
        )
    return rows


def lacking_control(sums: Iterable[Mapping[str, Any]], control_arm: str) -> dict[str, list[str]]:
    """experiment -> its arms, for the experiments of ``sums`` with nobody in ``control_arm``."""
    arms: dict[str, set[str]] = defaultdict(set)
    for r in sums:
        arms[r["experiment_id"]].add(r["arm"])
    return {e: sorted(a) for e, a in arms.items() if control_arm not in a}


def _experiment(
    experiment: str,
    metrics: Mapping[str, Mapping[str, Moments]],
    weights: Mapping[str, float],
    control_arm: str,
    sequential_scale: float | None,
) -> list[ResultRow]:
    any_metric = next(iter(metrics.values()))
    srm = sample_ratio_p({arm: m.n for arm, m in any_metric.items()}, weights)
    found: list[tuple[str, str, Any, float | None, float | None]] = []
    for metric in sorted(metrics):
        arms = metrics[metric]
        control = arms[control_arm]
        everyone = list(arms.values())
        theta = cuped_theta(everyone)
        pooled = sum(everyone[1:], everyone[0])
        for arm in sorted(a for a in arms if a != control_arm):
            lift = compare(arms[arm], control, theta, pooled.mean_x)
            low = high = None
            if sequential_scale is not None:
                tau = sequential_scale * math.sqrt(control.var_y) if control.n > 1 else 0.0
                low, high = always_valid(lift.lift_abs, lift.se, tau)
            found.append((arm, metric, lift, low, high))
    adjusted = holm([lift.p_value for _, _, lift, _, _ in found])
    return [
        ResultRow(
            experiment,
            arm,
            metric,
            lift.n,
            lift.n_control,
            lift.value,
            lift.control_value,
            lift.lift_abs,
            lift.ci_low,
            lift.ci_high,
            lift.p_value,
            p_holm,
            srm,
            bool(srm < SRM_ALPHA),
            lift.adjusted,
            low,
            high,
        )
        for (arm, metric, lift, low, high), p_holm in zip(found, adjusted, strict=True)
    ]


def as_dicts(rows: Iterable[ResultRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
