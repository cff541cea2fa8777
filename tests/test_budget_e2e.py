"""budget on a generated world whose paid channels cause orders by planted response
curves, with a holdout experiment per channel: the calibration finds the attribution
model nearest to the planted incrementality, the plan comes within 5% of the planted
optimum and beats the current split, a rerun writes nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import PROJECT
from precis import tables as T
from precis.budget.calibration import ranked
from precis.budget.curves import Hill
from precis.budget.plan import Bounds, allocate, total
from precis.config import load_config
from precis.jobs import budget as job
from precis.jobs import experiments, generate, identity, ingest
from precis.storage import Lakehouse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planned(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("budget") / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "generate.people=12000",
            "generate.items=200",
            "generate.days=150",
            "generate.response=true",
            # Every member in every holdout, and marketing three times as busy as by
            # default: holdouts large enough to tell the models apart, and credit for
            # conversions that happen anyway large enough to matter.
            "generate.holdout_share=1.0",
            "generate.member_share=1.0",
            "generate.touch_rate=0.1",
            # Little browsing: this world is about touches, orders and spend.
            "generate.session_rate=0.002",
            (
                "ingest.datasets=[id_observations,orders,touchpoints,campaign_spend,"
                "experiment_assignments,experiments]"
            ),
            "mlflow.enabled=false",
        ],
        run_date="2026-03-31",
    )
    generate.run(spark, cfg)
    ingest.run(spark, cfg)
    identity.run(spark, cfg)
    experiments.run(spark, cfg)
    first = job.run(spark, cfg)
    second = job.run(spark, cfg)
    # Without the calibration: the same plan, and the calibration's rows left alone.
    alone = job.run(
        spark, cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"calibrate": False})})
    )
    lake = Lakehouse.from_config(spark, cfg)
    lifts = lake.read(T.EXPERIMENT_LIFTS).filter("metric = 'conversion_rate'").toPandas()
    curves = lake.read(T.RESPONSE_CURVES).toPandas()
    return cfg, first, second, alone, lifts, curves


def test_the_calibration_names_the_model_nearest_to_the_planted_incrementality(planned):
    cfg, first, _, _, lifts, _ = planned
    found = first["calibration"]
    models = cfg.attribution.models
    assert sorted(found["experiment_id"].unique()) == [
        f"holdout_{c}" for c in ("affiliate", "display", "email", "search", "social")
    ]
    assert len(found) == 5 * len(models)
    # Ranked by summed distance to the measured incremental conversions.
    by_model = found.groupby("model")[["distance", "rank"]].first().sort_values("rank")
    assert list(by_model["rank"]) == list(range(1, len(models) + 1))
    assert by_model["distance"].is_monotonic_increasing
    gaps = (found["credited"] - found["incremental"]).abs().groupby(found["model"]).sum()
    assert gaps.to_dict() == pytest.approx(by_model["distance"].to_dict())
    # The same ranking against the planted truth: the true lift times the arm's people.
    truth = found.drop(columns=["distance", "rank", "closest"]).merge(
        lifts[["experiment_id", "arm", "true_lift"]], on=["experiment_id", "arm"]
    )
    truth["incremental"] = truth["true_lift"] * truth["people"]
    nearest = ranked(truth.drop(columns="true_lift"), models)
    assert (
        found.loc[found["closest"], "model"].iloc[0]
        == nearest.loc[nearest["closest"], "model"].iloc[0]
    )


def test_the_plan_comes_within_5_percent_of_the_planted_optimum(planned):
    _, first, _, _, _, curves = planned
    plan: pd.DataFrame = first["plan"]
    planted = {r.channel: Hill(r.top * r.order_value, r.half, r.shape) for r in curves.itertuples()}
    assert sorted(plan["channel"]) == sorted(planted)
    budget = float(plan["current_spend"].sum())
    assert plan["suggested_spend"].sum() == pytest.approx(budget, rel=1e-6)
    limits = {r.channel: Bounds(r.min_spend, r.max_spend) for r in plan.itertuples()}
    best = total(planted, allocate(planted, budget, limits))
    suggested = total(planted, dict(zip(plan["channel"], plan["suggested_spend"], strict=True)))
    current = total(planted, dict(zip(plan["channel"], plan["current_spend"], strict=True)))
    assert suggested >= 0.95 * best, (suggested / best, current / best)
    assert suggested > current, (suggested / best, current / best)


def test_a_rerun_writes_nothing(planned):
    _, first, second, alone, _, _ = planned
    assert first["written"]["plan"]["inserted"] == 5
    for table in ("plan", "calibration"):
        assert second["written"][table] == {"inserted": 0, "updated": 0, "deleted": 0}
    assert alone["calibration"] is None and set(alone["written"]) == {"plan"}
    assert alone["written"]["plan"] == {"inserted": 0, "updated": 0, "deleted": 0}
