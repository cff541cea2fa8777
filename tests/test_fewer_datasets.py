"""Worlds with fewer datasets: a shop that lands only orders, and one that lands only
events and items, run ingest, identity, lifecycle, tags and recommend to the end.

Each job does what its datasets allow and says what it skipped (README, "What each
job needs"). One generated world's landing files are copied into both lakehouses.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import load_config
from precis.jobs import (
    attribution,
    generate,
    identity,
    ingest,
    lifecycle,
    recommend,
    report,
    tags,
)
from precis.report.page import read_figures
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
RUN_DATE = "2026-03-31"
ORDER_TAGS = (
    "order_count_30d",
    "order_count_90d",
    "order_count_365d",
    "spend_90d",
    "spend_365d",
    "avg_order_value_365d",
    "days_since_last_order",
    "first_order_channel",
    "last_order_channel",
    "max_order_value_365d",
)
LINE_TAGS = ("top_category_90d", "unique_items_365d", "avg_unit_price_365d")
EVENT_TAGS = ("view_count_30d", "cart_count_30d")
CUSTOMER_TAGS = ("consent_marketing", "gender", "city")


def _cfg(root: Path):
    return load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "mlflow.enabled=false",
            "generate.people=200",
            "generate.items=40",
            "generate.days=120",
            "recommend.grid.rank=[4]",
            "recommend.grid.reg_param=[0.1]",
            "recommend.grid.alpha=[10.0]",
            "recommend.max_iter=3",
            # Small worlds: ALS need not beat popularity for the tests to see its lists.
            "recommend.require_lift=false",
            "recommend.measure_decay=false",
            "recommend.log_model=false",
        ],
        run_date=RUN_DATE,
    )


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("fewer") / "generated"
    generate.run(spark, _cfg(root))
    return root / "landing"


def _world(spark, generated: Path, root: Path, datasets: tuple[str, ...], *more):
    for name in datasets:
        shutil.copytree(generated / name, root / "landing" / name)
    cfg = _cfg(root)
    results = {
        job.JOB: job.run(spark, cfg)
        for job in (ingest, identity, lifecycle, tags, recommend, attribution, *more)
    }
    return Lakehouse.from_config(spark, cfg), results


@pytest.fixture(scope="module")
def orders_only(spark, generated, tmp_path_factory):
    root = tmp_path_factory.mktemp("orders_only")
    return _world(spark, generated, root, ("orders",), report)


@pytest.fixture(scope="module")
def events_and_items(spark, generated, tmp_path_factory):
    root = tmp_path_factory.mktemp("events_items")
    return _world(spark, generated, root, ("events", "items"))


def _skipped_stats(lake) -> dict[str, str | None]:
    rows = lake.read(T.TAG_STATS).select("tag", "skipped").collect()
    return {r["tag"]: r["skipped"] for r in rows}


def test_orders_only_identity_is_each_identifier(orders_only):
    """Without id_observations nothing links: one person per identifier of the orders."""
    lake, results = orders_only
    ids = lake.read(T.ORDERS).filter("id_status = 'ok'").select("id_type", "id_key").distinct()
    mapped = lake.read(T.IDENTITY_MAP)
    assert mapped.select("id_type", "id_key").distinct().count() == ids.count()
    assert mapped.select("one_id").distinct().count() == ids.count()
    assert results["identity"].one_ids == ids.count()


def test_orders_only_lifecycle_scores_everyone(orders_only):
    """Every person has a row; the buyers are those whose identifier has a paid order."""
    lake, _ = orders_only
    paid = lake.read(T.ORDERS).filter("status = 'paid' AND id_status = 'ok'")
    buyers = paid.select("id_type", "id_key").distinct().count()
    value = lake.read(T.CUSTOMER_VALUE)
    people = lake.read(T.IDENTITY_MAP).select("one_id").distinct().count()
    assert value.count() == people
    assert value.filter("orders > 0").count() == buyers


def test_orders_only_tags_skip_what_needs_other_datasets(orders_only):
    lake, results = orders_only
    expected = {
        **dict.fromkeys(LINE_TAGS, "no silver/order_items"),
        **dict.fromkeys(EVENT_TAGS, "no silver/events"),
        **dict.fromkeys(CUSTOMER_TAGS, "no silver/customers"),
    }
    assert results["tags"]["skipped"] == expected
    stats = _skipped_stats(lake)
    assert {t: s for t, s in stats.items() if s} == expected
    assert all(stats[t] is None for t in ORDER_TAGS)
    assert results["tags"]["coverage"]["order_count_365d"] > 0
    profiles = lake.read(T.PROFILES)
    assert profiles.filter(F.col("consent_marketing").isNotNull()).count() == 0
    # Nobody has stated consent: every segment is empty.
    assert sum(results["tags"]["segments"].values()) == 0


def test_orders_only_recommend_ends_with_nothing_to_learn(orders_only):
    lake, results = orders_only
    assert results["recommend"] == {
        "skipped": "no interactions: recommend needs silver/events or silver/orders with "
        "silver/order_items"
    }
    assert not lake.exists(T.RECOMMENDATIONS)
    assert results["attribution"] == {
        "skipped": "silver/touchpoints not found: attribution needs both"
    }


def test_orders_only_report_says_what_is_missing(orders_only):
    """The page is written, with data where the orders allow and a reason elsewhere."""
    _, results = orders_only
    with open(results["report"]["path"], encoding="utf-8") as page:
        sections = read_figures(page.read())["sections"]
    assert {key: s["missing"] for key, s in sections.items()} == {
        "ingest": None,
        "identity": None,
        "lifecycle": None,
        "tags": None,
        "recommendations": "No recommendations yet.",
        "attribution": "No attribution yet (gold/attribution).",
        "experiments": "No experiment judged yet.",
        "runs": "No pipeline run recorded (meta/pipeline_runs).",
    }
    assert results["report"]["missing"] == ["recommendations", "attribution", "experiments", "runs"]
    never = sections["ingest"]["notes"][0]
    assert never.startswith("Never landed: id_observations, events, order_items, touchpoints")
    assert [r["dataset"] for r in sections["ingest"]["figures"]["datasets"]] == ["orders"]


def test_events_and_items_world(events_and_items):
    lake, results = events_and_items
    assert results["lifecycle"] == {
        "skipped": "silver/orders not found: customer value needs orders"
    }
    assert not lake.exists(T.CUSTOMER_VALUE)
    expected = {
        **dict.fromkeys(ORDER_TAGS, "no silver/orders"),
        **dict.fromkeys(LINE_TAGS, "no silver/orders, silver/order_items"),
        **dict.fromkeys(CUSTOMER_TAGS, "no silver/customers"),
    }
    assert results["tags"]["skipped"] == expected
    assert results["tags"]["coverage"]["view_count_30d"] > 0
    # Recommendations from behaviour alone, of items the catalogue knows.
    recs = lake.read(T.RECOMMENDATIONS)
    assert results["recommend"]["written"] == recs.count() > 0
    unknown = recs.join(lake.read(T.ITEMS), "item_id", "left_anti").count()
    assert unknown == 0
    assert results["attribution"] == {
        "skipped": "silver/touchpoints, silver/orders not found: attribution needs both"
    }
