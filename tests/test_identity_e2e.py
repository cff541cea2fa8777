"""identity on the generated retailer: coverage, quality against the truth, privacy, and
an incremental run with new records that leaves every untouched person's one_id alone."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from conftest import assert_no_plain
from precis import tables as T
from precis.identity import records
from precis.jobs import evaluate, identity, ingest
from precis.storage import Lakehouse

# generate, ingest and three identity runs: a few minutes.
pytestmark = pytest.mark.slow

NEXT_DAY = dt.date(2026, 4, 1)


@pytest.fixture(scope="module")
def resolved(spark, world, tmp_path_factory):
    """identity on the world; then three new records landed and ingested, identity again
    (incremental), and the same second day reclustered in full on a copy."""
    cfg, lake, _ = world
    identity.run(spark, cfg)
    first = lake.read(T.IDENTITY_MAP).localCheckpoint()
    scores = evaluate.evaluate_identity(lake, cfg)

    # New records: a new phone for three members (CRM updates), and a person never seen.
    members = [
        r["id_value"]
        for r in lake.read(T.BRONZE["id_observations"])
        .filter((F.col("source") == "crm") & (F.col("id_type") == "member_id"))
        .select(F.trim("id_value").alias("id_value"))
        .distinct()
        .orderBy("id_value")
        .limit(3)
        .collect()
    ]
    seen = dt.datetime(2026, 4, 1, 9)
    new_rows = [
        ("crm", f"new-{i}", kind, value, seen)
        for i, m in enumerate(members)
        for kind, value in (("member_id", m), ("phone", f"1391234{i:04d}"))
    ]
    new_rows += [
        ("web", "new-x", "email", "Brand.New@Example.cn", seen),
        ("web", "new-x", "cookie_id", "nc-1", seen),
    ]
    landed = spark.createDataFrame(
        new_rows,
        "source string, record_id string, id_type string, id_value string, observed_at timestamp",
    )
    # Land it as the generator did (all strings when corruption is on).
    path = cfg.landing_path("id_observations")
    schema = spark.read.parquet(path).schema
    landed.select([F.col(f.name).cast(f.dataType) for f in schema]).coalesce(1).write.mode(
        "append"
    ).parquet(path)
    next_cfg = cfg.model_copy(update={"run_date": NEXT_DAY})
    ingest.run(spark, next_cfg)
    copy = tmp_path_factory.mktemp("e2e_full") / "lakehouse"
    shutil.copytree(cfg.root, copy)
    stats = identity.run(spark, next_cfg)
    full_cfg = next_cfg.model_copy(
        update={
            "storage": next_cfg.storage.model_copy(update={"root": str(copy)}),
            "identity": next_cfg.identity.model_copy(update={"incremental": False}),
        }
    )
    identity.run(spark, full_cfg)
    return cfg, lake, first, scores, members, stats, Lakehouse.from_config(spark, full_cfg)


def _valid_identifiers(lake):
    silver = {n: lake.read(T.SILVER[n]) for n in records.SOURCES if lake.exists(T.SILVER[n])}
    return records.identified_records(silver)


def test_every_valid_identifier_has_exactly_one_map_row(resolved):
    _, lake, _, _, _, _, _ = resolved
    expected = _valid_identifiers(lake).select("id_type", "id_key").distinct()
    actual = lake.read(T.IDENTITY_MAP)
    assert actual.count() == actual.select("id_type", "id_key").distinct().count()
    assert_df_equality(
        actual.select("id_type", "id_key"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_every_identified_record_has_exactly_one_one_id(resolved):
    _, lake, _, _, _, _, _ = resolved
    expected = _valid_identifiers(lake).select(*records.RECORD_KEYS).distinct()
    actual = lake.read(T.RECORD_IDENTITY)
    assert actual.filter(F.col("one_id").isNull()).count() == 0
    assert_df_equality(
        actual.select(*records.RECORD_KEYS), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_quality_against_the_generated_truth(resolved):
    _, _, _, scores, _, _, _ = resolved
    assert scores["precision"] >= 0.99
    assert scores["recall"] >= 0.97
    assert scores["linkable_recall"] >= 0.97
    # The ceiling counts evidence through one person's identifiers only; a graph may
    # still (wrongly or luckily) join records through a trap, so recall can pass it.
    assert 0.9 < scores["recall_ceiling"] <= 1.0


def test_no_plain_email_or_phone_in_gold(resolved, plain_identifiers):
    _, lake, _, _, _, _, _ = resolved
    for table in ("identity_map", "record_identity", "identity_changes", "identity_guards"):
        assert_no_plain(lake, "gold", table, plain_identifiers)


def test_new_records_leave_untouched_people_alone(resolved):
    _, lake, first, _, members, stats, _ = resolved
    second = lake.read(T.IDENTITY_MAP)
    touched = first.filter(
        (F.col("id_type") == "member_id") & F.col("id_key").isin(*members)
    ).select("one_id")
    untouched = first.join(touched, "one_id", "left_anti")
    kept = untouched.join(
        second.select("id_type", "id_key", F.col("one_id").alias("now")), ["id_type", "id_key"]
    )
    assert kept.count() == untouched.count()
    assert kept.filter(F.col("one_id") != F.col("now")).count() == 0
    # The members keep their ids and gain the new phones; the new person is created.
    before = {
        r["id_key"]: r["one_id"] for r in first.filter(F.col("id_type") == "member_id").collect()
    }
    after = {(r["id_type"], r["id_key"]): r["one_id"] for r in second.collect()}
    assert all(after[("member_id", m)] == before[m] for m in members)
    # Nothing merged or split; the new person (and any new phone a limit refused) is created.
    assert set(stats.changes) == {"created"}
    assert after[("cookie_id", "nc-1")] not in set(before.values())


def test_the_incremental_run_reclusters_little_and_equals_a_full_run(resolved):
    _, lake, _, _, _, stats, full = resolved
    assert stats.mode == "incremental"
    assert 0 < stats.reclustered < stats.identifiers / 20
    for table, ignore in (
        (T.IDENTITY_MAP, ()),
        (T.RECORD_IDENTITY, ()),
        (T.IDENTITY_CHANGES, ("run_id", "changed_at")),
        (T.IDENTITY_GUARDS, ("run_id",)),
    ):
        ours, theirs = lake.read(table).drop(*ignore), full.read(table).drop(*ignore)
        assert_df_equality(ours, theirs, ignore_row_order=True)
