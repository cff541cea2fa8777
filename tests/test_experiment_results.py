"""gold/experiment_results rows from per-arm sums: coverage of planted lifts, SRM, Holm."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from precis.errors import PrecisError
from precis.experiments.results import lacking_control, results


def sums(experiment: str, arm: str, converted, revenue, pre) -> list[dict]:
    out = []
    for metric, y in (("conversion_rate", converted), ("revenue_per_person", revenue)):
        y, x = np.asarray(y, float), np.asarray(pre, float)
        out.append(
            {
                "experiment_id": experiment,
                "arm": arm,
                "metric": metric,
                "n": len(y),
                "y": y.sum(),
                "yy": (y * y).sum(),
                "x": x.sum(),
                "xx": (x * x).sum(),
                "xy": (x * y).sum(),
            }
        )
    return out


def world(rng, experiment, arms: dict[str, tuple[int, float, float]]) -> list[dict]:
    """Arms: name -> (people, conversion lift, revenue lift per converter). Revenue
    follows pre-period spend, as in real customers."""
    rows = []
    for arm, (n, conv_lift, rev_lift) in arms.items():
        pre = rng.gamma(1.5, 40.0, n)
        p = np.clip(0.02 + 0.003 * pre + conv_lift, 0, 1)
        converted = (rng.random(n) < p).astype(float)
        revenue = converted * (1.5 * pre + rng.gamma(2.0, 10.0, n) + rev_lift)
        rows += sums(experiment, arm, converted, revenue, pre)
    return rows


def test_intervals_cover_the_planted_lifts_and_cuped_narrows_them():
    rng = np.random.default_rng(5)
    covered = total = 0
    for k in range(60):
        lift = 0.02 * (k % 3)
        rows = world(rng, f"e{k}", {"control": (3000, 0.0, 0.0), "b": (3000, lift, 0.0)})
        (conv,) = [r for r in results(rows, {}, "control") if r.metric == "conversion_rate"]
        # The planted lift on the conversion rate: the same pre-period distribution in
        # both arms, so the expected difference is the lift itself.
        covered += conv.ci_low <= lift <= conv.ci_high
        total += 1
    assert covered / total >= 0.9
    # CUPED: the same rows without the covariate give wider intervals; most for revenue,
    # which follows pre-period spend more closely than a 0/1 conversion can.
    narrower: dict[str, list[float]] = {"conversion_rate": [], "revenue_per_person": []}
    for k in range(20):
        rows = world(rng, f"c{k}", {"control": (3000, 0.0, 0.0), "b": (3000, 0.0, 5.0)})
        with_x = {r.metric: r for r in results(rows, {}, "control")}
        no_x = [dict(r, x=0.0, xx=0.0, xy=0.0) for r in rows]
        without = {r.metric: r for r in results(no_x, {}, "control")}
        for metric, kept in narrower.items():
            assert with_x[metric].adjusted and not without[metric].adjusted
            kept.append(
                (with_x[metric].ci_high - with_x[metric].ci_low)
                / (without[metric].ci_high - without[metric].ci_low)
            )
    assert np.mean(narrower["conversion_rate"]) < 0.97
    assert np.mean(narrower["revenue_per_person"]) < 0.85


def test_a_sample_ratio_mismatch_is_flagged_on_every_row_of_its_experiment():
    rng = np.random.default_rng(2)
    rows = world(rng, "srm", {"control": (5000, 0, 0), "b": (5400, 0, 0)})
    rows += world(rng, "fine", {"control": (5000, 0, 0), "b": (5020, 0, 0)})
    rows += world(rng, "weighted", {"control": (2000, 0, 0), "b": (6000, 0, 0)})
    weights = {"weighted": {"control": 1.0, "b": 3.0}}
    got = {(r.experiment_id, r.metric): r for r in results(rows, weights, "control")}
    assert got[("srm", "conversion_rate")].srm_failed
    assert got[("srm", "revenue_per_person")].srm_failed
    assert not got[("fine", "conversion_rate")].srm_failed
    assert not got[("weighted", "conversion_rate")].srm_failed
    assert got[("srm", "conversion_rate")].srm_p_value == pytest.approx(
        st.chisquare([5400, 5000]).pvalue
    )


def test_holm_runs_over_every_arm_and_metric_of_one_experiment():
    rng = np.random.default_rng(9)
    rows = world(rng, "e", {"control": (2000, 0, 0), "b": (2000, 0.05, 0), "c": (2000, 0.0, 0)})
    got = results(rows, {}, "control")
    assert [(r.arm, r.metric) for r in got] == [
        ("b", "conversion_rate"),
        ("c", "conversion_rate"),
        ("b", "revenue_per_person"),
        ("c", "revenue_per_person"),
    ]
    raw = sorted(r.p_value for r in got)
    smallest = min(got, key=lambda r: r.p_value)
    assert smallest.p_value_holm == pytest.approx(min(1.0, 4 * raw[0]))
    assert all(r.p_value_holm >= r.p_value for r in got)


def test_sequential_intervals_are_wider_and_a_missing_control_is_named():
    rng = np.random.default_rng(4)
    rows = world(rng, "e", {"control": (2000, 0, 0), "b": (2000, 0.02, 0)})
    (fixed, *_) = results(rows, {}, "control", sequential_scale=0.1)
    assert fixed.ci_low_sequential < fixed.ci_low < fixed.ci_high < fixed.ci_high_sequential
    # An experiment with nobody in control is left out, the others judged.
    rows = world(rng, "nocontrol", {"a": (10, 0, 0), "b": (10, 0, 0)})
    rows += world(rng, "fine", {"control": (10, 0, 0), "b": (10, 0, 0)})
    assert {r.experiment_id for r in results(rows, {}, "control")} == {"fine"}
    assert lacking_control(rows, "control") == {"nocontrol": ["a", "b"]}
    # None has one: the setting is wrong.
    with pytest.raises(PrecisError, match="no experiment has a 'ctrl' arm.*'fine' has b, control"):
        results(rows, {}, "ctrl")


def test_metric_names_take_only_what_mlflow_accepts():
    import re

    from precis.experiments import report
    from precis.experiments.results import ResultRow

    row = ResultRow(
        "spring sale #1", "arm (b)/2", "conversion_rate", 10, 10, 0.2, 0.1, 0.1, -0.1, 0.3,
        0.4, 0.4, 1.0, False, True, None, None,
    )  # fmt: skip
    names = report.metrics([row])
    assert set(names) == {
        "lift.spring_sale__1.arm__b__2.conversion_rate",
        "p_holm.spring_sale__1.arm__b__2.conversion_rate",
    }
    assert all(re.fullmatch(r"[/\w.\- :]*", n) for n in names)  # MLflow's rule
    assert "spring sale #1" in report.text([row])  # the printed line keeps the real name
