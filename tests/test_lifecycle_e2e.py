"""lifecycle on the generated retailer, after ingest and identity: coverage, privacy,
rerun, and the evaluation against the generator's truth."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from conftest import assert_no_plain
from precis import tables as T
from precis.frames import digest
from precis.jobs import evaluate, identity, lifecycle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def valued(spark, world):
    cfg, lake, _ = world
    if not lake.exists(T.IDENTITY_MAP):  # the identity end-to-end tests may have run it
        identity.run(spark, cfg)
    first = lifecycle.run(spark, cfg)
    table = lake.read(T.CUSTOMER_VALUE).localCheckpoint()
    second = lifecycle.run(spark, cfg)
    return cfg, lake, first, second, table


def test_one_row_per_one_id(valued):
    _, lake, _, _, table = valued
    one_ids = lake.read(T.IDENTITY_MAP).select("one_id").distinct()
    assert table.count() == one_ids.count()
    assert table.select("one_id").subtract(one_ids).count() == 0


def test_buyers_match_the_resolved_paid_orders(valued):
    _, lake, first, _, table = valued
    buyers = table.filter(F.col("orders") > 0)
    orders = lake.read(T.ORDERS).filter(F.coalesce(F.col("status"), F.lit("paid")) != "refunded")
    paid = orders.join(lake.read(T.IDENTITY_MAP), ["id_type", "id_key"]).select("one_id").distinct()
    # Every buyer has a paid order; isolated identifiers (a hotline) account for the rest.
    assert buyers.select("one_id").subtract(paid).count() == 0
    assert 0 < buyers.count() <= paid.count()
    assert first["stages"]["prospect"] == table.filter(F.col("orders") == 0).count()
    # 120 days of history are too short for the churn model's two 90-day periods.
    assert first["churn"] == {} and table.filter(F.col("churn_risk").isNotNull()).count() == 0


def test_no_plain_identifiers(valued, plain_identifiers):
    _, lake, _, _, _ = valued
    for table in ("customer_value", "clv_model_params"):
        assert_no_plain(lake, "gold", table, plain_identifiers)


def test_rerun_changes_nothing(valued):
    cfg, lake, first, second, table = valued
    # The rerun replaced its date's snapshot with the same rows.
    assert second["written"] == first["written"] == table.count()
    assert lake.snapshot_dates(T.CUSTOMER_VALUE) == [cfg.run_date]
    assert digest(lake.read(T.CUSTOMER_VALUE)) == digest(table)


def test_evaluation_against_truth(valued):
    cfg, lake, _, _, _ = valued
    scores = evaluate.evaluate_lifecycle(lake, cfg)
    assert scores["true_alpha_days"] == pytest.approx(
        cfg.generate.btyd_alpha / (1 - cfg.generate.refund_rate)
    )
    assert {"fitted_r", "oracle_r", "fitted_alpha_days", "oracle_b"} <= set(scores)
    # A few hundred people: the fits are noisy, but P(alive) must still rank the living first.
    assert scores["p_alive_auc"] > 0.6
