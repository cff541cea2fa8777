"""experiments on a generated world with planted lifts: intervals that cover the truth,
CUPED that narrows them, the planted sample-ratio mismatch flagged, the running
experiment not judged, a rerun that writes nothing."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from conftest import PROJECT
from precis import experiments
from precis import tables as T
from precis.columns import RUN_DATE
from precis.config import load_config
from precis.jobs import evaluate, generate, identity, ingest
from precis.jobs import experiments as job
from precis.storage import Lakehouse

pytestmark = pytest.mark.slow

EXPERIMENTS = 25  # 24 judged: 32 (experiment, arm) comparisons per metric


@pytest.fixture(scope="module")
def judged(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments") / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "generate.people=6000",
            "generate.items=200",
            "generate.days=150",
            f"generate.experiments={EXPERIMENTS}",
            "generate.experiment_share=0.25",
            "generate.experiment_rate=0.08",
            # Little browsing and no marketing: this world is about orders.
            "generate.session_rate=0.002",
            "generate.touch_rate=0.0",
            "ingest.datasets=[id_observations,orders,experiment_assignments,experiments]",
            "mlflow.enabled=false",
        ],
        run_date="2026-03-31",
    )
    generate.run(spark, cfg)
    ingest.run(spark, cfg)
    identity.run(spark, cfg)
    first = job.run(spark, cfg)
    lake = Lakehouse.from_config(spark, cfg)
    table = lake.read(T.EXPERIMENT_RESULTS).localCheckpoint()
    second = job.run(spark, cfg)
    # The same comparisons without CUPED, for the widths.
    plain = experiments.build(
        job.read(lake, cfg.run_date),
        cfg.experiments.model_copy(update={"cuped": False}),
        cfg.run_date,
        "plain",
    ).rows
    truth = {
        (r["experiment_id"], r["arm"], r["metric"]): r
        for r in lake.read(T.TRUTH["experiment_lifts"]).collect()
    }
    return cfg, first, second, table, plain, truth


def test_the_95_percent_intervals_cover_the_planted_lifts(judged):
    _, first, _, _, _, truth = judged
    for metric in ("conversion_rate", "revenue_per_person"):
        rows = [r for r in first["rows"] if r["metric"] == metric]
        assert len(rows) >= 30, metric
        covered = [
            r["ci_low"]
            <= truth[(r["experiment_id"], r["arm"], metric)]["true_lift"]
            <= r["ci_high"]
            for r in rows
        ]
        assert sum(covered) / len(rows) >= 0.9, (metric, sum(covered), len(rows))
    # Not a world of nulls only: some planted lifts are real and found.
    found = [r for r in first["rows"] if r["p_value_holm"] < 0.05]
    assert found and all(
        truth[(r["experiment_id"], r["arm"], r["metric"])]["true_lift"] > 0 for r in found
    )


def test_cuped_narrows_the_intervals_by_a_fifth_on_average(judged):
    _, first, _, _, plain, _ = judged
    welch = {(r.experiment_id, r.arm, r.metric): r.ci_high - r.ci_low for r in plain}
    assert all(not r.adjusted for r in plain)
    ratios = {}
    for r in first["rows"]:
        assert r["adjusted"], r  # pre-period buying predicts the outcome: always used
        ratios[(r["experiment_id"], r["arm"], r["metric"])] = (r["ci_high"] - r["ci_low"]) / welch[
            (r["experiment_id"], r["arm"], r["metric"])
        ]
    mean = sum(ratios.values()) / len(ratios)
    assert 1 - mean >= 0.2, mean
    for metric in ("conversion_rate", "revenue_per_person"):
        mine = [v for k, v in ratios.items() if k[2] == metric]
        assert sum(mine) / len(mine) < 1.0, metric


def test_only_the_planted_sample_ratio_mismatch_is_flagged(judged):
    _, first, _, _, _, truth = judged
    planted = {k[0] for k, r in truth.items() if r["lost"] > 0}
    flagged = {r["experiment_id"] for r in first["rows"] if r["srm_failed"]}
    assert planted and flagged == planted
    assert first["counts"]["srm_failed"] == 1


def test_the_running_experiment_is_not_judged_and_the_table_holds_the_rows(judged, spark):
    cfg, first, _, table, _, truth = judged
    judged_ids = {r["experiment_id"] for r in first["rows"]}
    assert {k[0] for k in truth} - judged_ids == {f"exp_{EXPERIMENTS:02d}"}
    assert first["counts"]["judged_experiments"] == EXPERIMENTS - 1
    expected = spark.createDataFrame(
        [tuple(r.values()) for r in first["rows"]], experiments.RESULT_SCHEMA
    ).withColumn(RUN_DATE, F.lit(cfg.run_date))
    assert_df_equality(
        table.drop("run_id"),
        expected,
        ignore_row_order=True,
        ignore_column_order=True,
        ignore_nullable=True,
    )


def test_a_rerun_writes_nothing(judged):
    _, first, second, _, _, _ = judged
    assert second["written"] == {"inserted": 0, "updated": 0, "deleted": 0}
    assert second["rows"] == first["rows"]


def test_the_evaluation_scores_the_same_coverage(judged, spark):
    cfg, first, _, _, _, truth = judged
    scores = evaluate.evaluate_experiments(Lakehouse.from_config(spark, cfg), cfg)
    for metric in ("conversion_rate", "revenue_per_person"):
        rows = [r for r in first["rows"] if r["metric"] == metric]
        held = sum(
            r["ci_low"]
            <= truth[(r["experiment_id"], r["arm"], metric)]["true_lift"]
            <= r["ci_high"]
            for r in rows
        )
        assert scores[f"{metric}_coverage"] == held / len(rows)
        assert scores[f"{metric}_comparisons"] == len(rows)
    assert scores["srm_correct"] == 1.0
