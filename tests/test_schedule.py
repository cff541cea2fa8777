"""Scheduled runs on a generated world: run dates are as-of, gold product tables keep a
snapshot per run date, a backfill leaves newer snapshots alone, and a pipeline that
failed halfway resumes where it stopped without duplicating a row.

One world (the suite's, generated to D2 and ingested; identity built) is copied for each
scenario:
- ``forward``: D2, then a backfill of D1;
- ``alone``: D1 only;
- ``resumed``: D1, then D1..D2 with a broken tags setting (fails at D2's tags), then again
  with the setting fixed.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from precis import ledger
from precis import tables as T
from precis.columns import RUN_DATE
from precis.config import load_config
from precis.errors import ConfigError
from precis.frames import digest
from precis.jobs import identity, pipeline
from precis.storage import Lakehouse

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
D2 = dt.date(2026, 3, 31)
D1 = D2 - dt.timedelta(days=1)
DATED = ["lifecycle", "tags", "recommend", "attribution"]
#: What a dated run writes for its date: the snapshots and the per-date tables.
PER_DATE = (*T.SNAPSHOTS, T.TAG_CHANGES, T.TAG_STATS, T.CLV_MODEL_PARAMS, T.ATTRIBUTION)


def settings(root: Path, *extra: str) -> list[str]:
    return [
        f"storage.root={root}",
        "mlflow.enabled=false",
        # One small point of the grid: the test is about dates, not tuning.
        "recommend.grid.rank=[4]",
        "recommend.grid.reg_param=[0.5]",
        "recommend.grid.alpha=[2.0]",
        "recommend.max_iter=3",
        # Small worlds: ALS need not beat popularity for the tests to see its lists.
        "recommend.require_lift=false",
        "recommend.measure_decay=false",
        f"pipeline.jobs=[{', '.join(DATED)}]",
        *extra,
    ]


def run_pipeline(spark, root: Path, last: dt.date, *extra: str, first: dt.date | None = None):
    more = [f"pipeline.from_date={first}"] if first else []
    cfg = load_config(PROJECT / "conf" / "base.yaml", settings(root, *more, *extra), run_date=last)
    return pipeline.run(spark, cfg), Lakehouse.from_config(spark, cfg)


def on_date(lake: Lakehouse, day: dt.date) -> dict[str, dict[str, object]]:
    """Digest of each per-date table's rows for ``day``."""
    return {
        t.ref: digest(lake.read(t).filter(F.col(RUN_DATE) == F.lit(day)))
        for t in PER_DATE
        if lake.exists(t)
    }


@pytest.fixture(scope="module")
def base(spark, ingested, tmp_path_factory) -> Path:
    """Landing data up to D2, ingested, identity built: what every scenario starts from.

    The suite's generated world (conftest.py's ``ingested``: generated and ingested for
    D2), copied, with identity run on it."""
    root = tmp_path_factory.mktemp("schedule") / "base"
    shutil.copytree(ingested, root)
    identity.run(spark, load_config(PROJECT / "conf" / "base.yaml", settings(root), run_date=D2))
    return root


def copy(base: Path, name: str) -> Path:
    root = base.parent / name
    shutil.copytree(base, root)
    return root


@pytest.fixture(scope="module")
def alone(spark, base):
    root = copy(base, "alone")
    result, lake = run_pipeline(spark, root, D1)
    return root, result, lake


def test_facts_after_the_run_date_are_invisible(spark, base, alone):
    _, _, lake = alone
    orders = Lakehouse.from_config(spark, load_config(overrides=[f"storage.root={base}"])).read(
        T.ORDERS
    )
    late = orders.filter(F.to_date("order_time") == F.lit(D2)).count()
    assert late > 0  # the world has orders on D2 ...
    as_of = lake.read_as_of(T.ORDERS, D1)
    assert as_of.agg(F.max(F.to_date("order_time"))).first()[0] <= D1  # ... D1 sees none
    assert as_of.count() == orders.count() - late
    # D1's customer value counts no order of D2: nobody's last purchase is after D1.
    value = lake.read_snapshot(T.CUSTOMER_VALUE, D1)
    assert value.filter(F.col("last_purchase") > F.lit(D1)).count() == 0


def test_backfill_leaves_newer_snapshots_and_equals_a_run_of_its_date_alone(spark, base, alone):
    root = copy(base, "forward")
    run_pipeline(spark, root, D2)
    lake = Lakehouse.from_config(spark, load_config(overrides=[f"storage.root={root}"]))
    d2_before = on_date(lake, D2)
    assert set(d2_before) == {t.ref for t in PER_DATE}
    assert all(d["rows"] > 0 for d in d2_before.values())

    result, lake = run_pipeline(spark, root, D1, first=D1)  # the backfill
    assert result == {"dates": [D1.isoformat()], "ran": len(DATED), "skipped": 0}
    assert on_date(lake, D2) == d2_before
    for table in T.SNAPSHOTS:
        assert lake.snapshot_dates(table) == [D1, D2]
    # D1's snapshots are what a run of D1 alone on the same silver writes.
    _, _, alone_lake = alone
    assert on_date(lake, D1) == on_date(alone_lake, D1)
    # The newest snapshot is still D2's.
    latest = lake.read_latest(T.PROFILES)
    assert {r[0] for r in latest.select(RUN_DATE).distinct().collect()} == {D2}


def test_a_failed_pipeline_resumes_where_it_stopped(spark, base, alone):
    alone_root, _, _ = alone
    root = copy(alone_root, "resumed")  # D1 done
    broken = "tags.definitions=no_such_tags.yaml"
    with pytest.raises(ConfigError, match="no_such_tags.yaml"):
        run_pipeline(spark, root, D2, broken, first=D1)
    lake = Lakehouse.from_config(spark, load_config(overrides=[f"storage.root={root}"]))
    runs = {(r[RUN_DATE], r["job"]): r for r in lake.read(T.PIPELINE_RUNS).collect()}
    assert {k: r["status"] for k, r in runs.items()} == {
        **{(D1, job): ledger.DONE for job in DATED},
        (D2, "lifecycle"): ledger.DONE,
        (D2, "tags"): ledger.FAILED,
    }
    assert "no_such_tags.yaml" in runs[(D2, "tags")]["error"]
    # The versions of what it read: nothing rewrote those tables since.
    assert runs[(D2, "lifecycle")]["inputs"] == lake.versions(T.READS["lifecycle"])
    assert T.ORDERS.ref in runs[(D2, "lifecycle")]["inputs"]

    result, lake = run_pipeline(spark, root, D2, first=D1)  # fixed
    assert result == {"dates": [D1.isoformat(), D2.isoformat()], "ran": 3, "skipped": 5}
    after = {(r[RUN_DATE], r["job"]): r for r in lake.read(T.PIPELINE_RUNS).collect()}
    assert {k: r["status"] for k, r in after.items()} == {
        **{(d, job): ledger.DONE for d in (D1, D2) for job in DATED}
    }
    # Skipped means not run: D2's lifecycle kept its first (and only) attempt.
    assert after[(D2, "lifecycle")]["started_at"] == runs[(D2, "lifecycle")]["started_at"]

    # No table has a duplicated row: every gold table is unique on its keys (per run
    # date where it keeps one set of rows per date).
    for table in (*T.SNAPSHOTS, T.TAG_CHANGES, T.ATTRIBUTION, T.IDENTITY_MAP, T.IDENTITY_CHANGES):
        keys = (*([RUN_DATE] if table.mode == "snapshot" else []), *table.keys)
        frame = lake.read(table)
        assert frame.count() == frame.select(*keys).distinct().count(), table.ref

    # --force runs done (date, job)s again; the ledger still has one row per pair.
    result, lake = run_pipeline(
        spark, root, D2, "pipeline.jobs=[attribution]", "pipeline.force=true"
    )
    assert result == {"dates": [D2.isoformat()], "ran": 1, "skipped": 0}
    assert lake.read(T.PIPELINE_RUNS).count() == len(after)
