"""Marketing consent that cannot be lost: the latest statement wins (a denial on a tie),
a later consent row replaces its identifier's earlier one in silver, exports are pruned
after ``exports.retention_days``, and a withdrawal empties the next segments and exports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import GenerateConfig, load_config
from precis.consent import marketing_consent
from precis.generate import build
from precis.jobs import generate as generate_job
from precis.jobs import identity, ingest, recommend
from precis.jobs import tags as tags_job
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
CONSENT = "one_id string, consent_marketing boolean"
DAY_1, DAY_2 = dt.date(2026, 3, 30), dt.date(2026, 3, 31)


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour)


# ------------------------------------------------------------------------- the rule
def test_latest_statement_wins_and_a_denial_wins_ties(spark):
    rows = [
        # one_id, id_type, id_key, consent, signup_time, consent_updated_at
        ("single", "member_id", "M1", True, at(1), None),
        # withdrawn later under another identifier of the same person
        ("withdrew", "member_id", "M2", True, at(1), at(2)),
        ("withdrew", "email", "e2", False, None, at(5)),
        # withdrew, then granted again
        ("regranted", "member_id", "M3", False, at(1), at(5)),
        ("regranted", "email", "e3", True, at(1), at(6)),
        # two identifiers state opposite things at the same moment
        ("tie", "member_id", "M4", True, at(1), at(5)),
        ("tie", "email", "e4", False, at(2), at(5)),
        # no consent time: the sign-up time it is (e5's later sign-up beats M5's update)
        ("fallback", "member_id", "M5", False, at(1), at(3)),
        ("fallback", "email", "e5", True, at(4), None),
        # the latest row says nothing: a denial at that time
        ("silent", "member_id", "M6", True, at(1), at(2)),
        ("silent", "email", "e6", None, at(1), at(3)),
        # saying nothing earlier is superseded by a later yes
        ("silent_then_yes", "member_id", "M7", None, at(1), None),
        ("silent_then_yes", "email", "e7", True, at(1), at(4)),
        # a row without any time is older than every dated row
        ("undated_no", "member_id", "M8", False, None, None),
        ("undated_no", "email", "e8", True, None, at(1)),
        ("undated_only", "member_id", "M9", True, None, None),
    ]
    customers = spark.createDataFrame(
        rows,
        "one_id string, id_type string, id_key string, consent_marketing boolean, "
        "signup_time timestamp, consent_updated_at timestamp",
    )
    names = sorted({r[0] for r in rows}) + ["no_customer_row"]
    people = spark.createDataFrame([(p,) for p in names], "one_id string")
    expected = {
        "single": True,
        "withdrew": False,
        "regranted": True,
        "tie": False,
        "fallback": True,
        "silent": False,
        "silent_then_yes": True,
        "undated_no": True,
        "undated_only": True,
        "no_customer_row": False,
    }
    assert_df_equality(
        marketing_consent(customers, people),
        spark.createDataFrame(sorted(expected.items()), CONSENT),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_without_customers_nobody_consents(spark):
    people = spark.createDataFrame([("p1",), ("p2",), ("p1",)], "one_id string")
    assert_df_equality(
        marketing_consent(None, people),
        spark.createDataFrame([("p1", False), ("p2", False)], CONSENT),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_rows_without_time_columns_fall_back_to_denial_on_ties(spark):
    # Frames from before consent_updated_at (and without signup_time): every row is
    # undated, so all of a person's rows tie and any denial wins.
    customers = spark.createDataFrame(
        [("p1", True), ("p2", True), ("p2", False), ("p3", None)],
        "one_id string, consent_marketing boolean",
    )
    people = spark.createDataFrame([("p1",), ("p2",), ("p3",)], "one_id string")
    assert_df_equality(
        marketing_consent(customers, people),
        spark.createDataFrame([("p1", True), ("p2", False), ("p3", False)], CONSENT),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_the_rule_on_generated_customers_gives_the_planted_consent(spark):
    g = GenerateConfig(
        people=400,
        items=50,
        days=60,
        end_date=DAY_2,
        partitions=1,
        consent_withdraw_share=0.3,
        consent_regrant_share=0.5,
    )
    with generate_job.generator_conf(spark):
        gen = build(spark, g, DAY_2)
        owner = gen.truth["record_person"].filter(F.col("dataset") == "customers")
        key = F.concat_ws(":", "id_type", "id_value")
        rows = gen.landing["customers"].join(
            owner.select(F.col("record_id").alias("_key"), F.col("person_id").alias("one_id")),
            key == F.col("_key"),
            how="inner",
        )
        members = gen.truth["people"].filter(F.col("is_member"))
        got = marketing_consent(rows, members.select(F.col("person_id").alias("one_id")))
        expected = members.select(F.col("person_id").alias("one_id"), "consent_marketing")
        assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
        # Every kind of statement is there: consent and refusal at sign-up, withdrawals
        # and grants again, each later than the one before.
        kinds = {
            (r["consent_marketing"], r["dated"]): r["n"]
            for r in gen.landing["customers"]
            .groupBy("consent_marketing", F.col("consent_updated_at").isNotNull().alias("dated"))
            .agg(F.count(F.lit(1)).alias("n"))
            .collect()
        }
        assert set(kinds) == {(True, False), (False, False), (False, True), (True, True)}
        assert rows.count() == rows.select("_key").distinct().count() + sum(
            n for (_, dated), n in kinds.items() if dated
        )
        dated = gen.landing["customers"].filter(F.col("consent_updated_at").isNotNull())
        assert dated.filter(F.col("consent_updated_at") <= F.col("signup_time")).count() == 0
        again = members.filter(F.col("consent_regranted_at") <= F.col("consent_withdrawn_at"))
        assert again.count() == 0


# ---------------------------------------------------------------- ingest into silver
def _land(root: Path, dataset: str, name: str, text: str) -> None:
    folder = root / "landing" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_a_later_consent_row_replaces_the_earlier_one_in_silver(spark, tmp_path, monkeypatch):
    monkeypatch.delenv("PRECIS_PII_KEY", raising=False)
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={tmp_path / 'lakehouse'}",
            "landing.customers.format=csv",
            "ingest.datasets=[customers]",
            "mlflow.enabled=false",
        ],
        run_date="2026-03-01",
    )
    root = Path(cfg.root)
    # A landing from before the column existed: the statement's time is the sign-up's.
    _land(
        root,
        "customers",
        "c1.csv",
        "id_type,id_value,gender,birth_date,city,signup_time,consent_marketing\n"
        "member_id,M1,F,1990-01-01,Wuhan,2026-01-01T00:00:00Z,true\n"
        "member_id,M2,M,1990-01-01,Xian,2026-01-01T00:00:00Z,false\n"
        "member_id,M3,M,1990-01-01,Xian,2026-01-01T00:00:00Z,true\n",
    )
    first = ingest.run(spark, cfg)["customers"]
    assert (first.rows_in, first.silver_inserted, first.quarantined) == (3, 3, 0)
    _land(
        root,
        "customers",
        "c2.csv",
        "id_type,id_value,gender,birth_date,city,signup_time,consent_marketing,consent_updated_at\n"
        # M1 withdraws: later than its sign-up row, so it replaces it.
        "member_id,M1,F,1990-01-01,Wuhan,2026-01-01T00:00:00Z,false,2026-02-01T08:00:00Z\n"
        # A stale grant of M2 (older than its sign-up row) arrives late: it must not win.
        "member_id,M2,M,1990-01-01,Xian,2026-01-01T00:00:00Z,true,2025-12-01T00:00:00Z\n"
        # M4: a grant and a denial at the same moment in one batch; the denial wins.
        "member_id,M4,,,,,true,2026-02-01T08:00:00Z\n"
        "member_id,M4,,,,,false,2026-02-01T08:00:00Z\n"
        # M5: signs up without consent, grants it a day later.
        "member_id,M5,,,,2026-02-01T00:00:00Z,false,\n"
        "member_id,M5,,,,2026-02-01T00:00:00Z,true,2026-02-02T00:00:00Z\n",
    )
    second = ingest.run(spark, cfg)["customers"]
    assert second.balanced() and (second.rows_in, second.silver_updated) == (6, 1)
    lake = Lakehouse.from_config(spark, cfg)
    got = lake.read(T.CUSTOMERS).select("id_key", "consent_marketing", "consent_updated_at")
    expected = spark.createDataFrame(
        [
            ("M1", False, dt.datetime(2026, 2, 1, 8)),
            ("M2", False, dt.datetime(2026, 1, 1)),
            ("M3", True, dt.datetime(2026, 1, 1)),
            ("M4", False, dt.datetime(2026, 2, 1, 8)),
            ("M5", True, dt.datetime(2026, 2, 2)),
        ],
        "id_key string, consent_marketing boolean, consent_updated_at timestamp",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------ export retention
def _folders(root: Path) -> set[str]:
    """The dated folders under ``root`` holding data (a pruned one is left empty)."""
    data = (f for f in root.rglob("*") if f.is_file() and f.stat().st_size > 0)
    return {f.relative_to(root).parts[0] for f in data if not f.name.startswith((".", "_"))}


@pytest.fixture
def dated_exports(tmp_path):
    exports = tmp_path / "lakehouse" / "exports" / "segments"
    names = [
        "run_date=2026-02-27",
        "run_date=2026-02-28",
        "run_date=2026-03-01",  # exactly 30 days before the run date: kept
        "run_date=2026-03-02",
        "run_date=2026-03-31",
        "run_date=2026-04-02",  # a later date (this run is a backfill): kept
        "run_date=2026-02-30",  # not a date: left alone
        "latest",  # not a dated folder: left alone
    ]
    for name in names:
        (exports / name / "segment=a").mkdir(parents=True)
        (exports / name / "segment=a" / "part-00000.csv").write_text("one_id\np1\n")
    return exports


def test_prune_exports_empties_exactly_the_folders_past_retention(spark, dated_exports):
    lake = Lakehouse(spark, str(dated_exports.parents[1]))
    assert lake.export_dates("segments") == [
        dt.date(2026, 2, 27),
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 2),
        dt.date(2026, 3, 31),
        dt.date(2026, 4, 2),
    ]
    deleted = lake.prune_exports("segments", dt.date(2026, 3, 31), 30)
    assert deleted == [dt.date(2026, 2, 27), dt.date(2026, 2, 28)]
    holding = {p.parts[-3] for p in dated_exports.rglob("*.csv")}
    assert holding == {
        "run_date=2026-03-01",
        "run_date=2026-03-02",
        "run_date=2026-03-31",
        "run_date=2026-04-02",
        "run_date=2026-02-30",
        "latest",
    }
    # Emptied folders hold no data, so the next prune finds nothing to do.
    assert lake.prune_exports("segments", dt.date(2026, 3, 31), 30) == []
    assert lake.prune_exports("recommendations", dt.date(2026, 3, 31), 30) == []  # none yet


# ----------------------------------------------------------------- end to end, tiny
OBSERVATIONS = """source,record_id,id_type,id_value,observed_at
crm,r1,member_id,M1,2026-03-01T10:00:00Z
crm,r1,email,ann@example.com,2026-03-01T10:00:00Z
crm,r2,member_id,M2,2026-03-01T10:00:00Z
crm,r3,member_id,M3,2026-03-01T10:00:00Z
"""
EVENTS = """event_id,event_time,source,id_type,id_value,event_type,item_id
e1,2026-03-10T10:00:00Z,web,member_id,M1,view,i1
e2,2026-03-11T10:00:00Z,web,member_id,M2,view,i2
e3,2026-03-12T10:00:00Z,web,member_id,M3,view,i1
e4,2026-03-25T10:00:00Z,web,member_id,M1,view,i3
"""
CUSTOMERS_1 = """id_type,id_value,gender,birth_date,city,signup_time,consent_marketing
member_id,M1,F,1990-01-01,Wuhan,2026-03-01T10:00:00Z,true
member_id,M2,M,1990-01-01,Xian,2026-03-01T10:00:00Z,true
member_id,M3,M,1990-01-01,Xian,2026-03-01T10:00:00Z,false
"""
# The day after: Ann withdraws by her email (another identifier of M1's person), M2
# withdraws in the CRM (its row is replaced) and M3 grants consent.
CUSTOMERS_2 = """id_type,id_value,signup_time,consent_marketing,consent_updated_at
email,ann@example.com,,false,2026-03-31T08:00:00Z
member_id,M2,2026-03-01T10:00:00Z,false,2026-03-31T08:00:00Z
member_id,M3,2026-03-01T10:00:00Z,true,2026-03-31T09:00:00Z
"""


@pytest.fixture(scope="module")
def tiny_world(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("consent")
    tags = {
        "views_365d": {"template": "count", "dataset": "events", "window_days": 365},
        "consent_marketing": {
            "template": "attribute",
            "field": "consent_marketing",
            "combine": "all",
        },
    }
    (base / "tags.yaml").write_text(yaml.safe_dump({"tags": tags}))
    segments = {"viewers": {"where": "views_365d >= 1"}}
    (base / "segments.yaml").write_text(yaml.safe_dump({"segments": segments}))
    settings = [
        f"storage.root={base / 'lakehouse'}",
        *(f"landing.{d}.format=csv" for d in ("id_observations", "events", "customers")),
        "mlflow.enabled=false",
        f"tags.definitions={base / 'tags.yaml'}",
        f"tags.segments={base / 'segments.yaml'}",
        "tags.export_format=csv",
        "recommend.top_n=2",
        "recommend.eval_k=2",
        "recommend.validation_days=10",
        "recommend.grid.rank=[2]",
        "recommend.grid.reg_param=[0.1]",
        "recommend.grid.alpha=[1.0]",
        "recommend.max_iter=2",
        # Small worlds: ALS need not beat popularity for the tests to see its lists.
        "recommend.require_lift=false",
        "recommend.measure_decay=false",
        "recommend.block_size=256",
        "recommend.log_model=false",
    ]
    root = base / "lakehouse"
    for dataset, text in (
        ("id_observations", OBSERVATIONS),
        ("events", EVENTS),
        ("customers", CUSTOMERS_1),
    ):
        _land(root, dataset, "day1.csv", text)

    def run_day(day: dt.date, *extra: str) -> Lakehouse:
        cfg = load_config(PROJECT / "conf" / "base.yaml", [*settings, *extra], run_date=day)
        for job in (ingest, identity, tags_job, recommend):
            job.run(spark, cfg)
        return Lakehouse.from_config(spark, cfg)

    def consented(lake: Lakehouse, day: dt.date) -> dict[str, set[str]]:
        """Members of the day's segment snapshot, and of its two exports, by member id."""
        members = lake.read(T.IDENTITY_MAP).filter(F.col("id_type") == "member_id")
        who = {r["one_id"]: r["id_key"] for r in members.collect()}
        segs = lake.read_snapshot(T.SEGMENTS, day)
        seg_export = spark.read.option("header", True).csv(lake.export_path("segments", day))
        recs = spark.read.parquet(lake.export_path("recommendations", day))
        return {
            name: {who[r["one_id"]] for r in frame.select("one_id").distinct().collect()}
            for name, frame in (("segment", segs), ("segments", seg_export), ("recs", recs))
        }

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PRECIS_PII_KEY", raising=False)
        lake = run_day(DAY_1)
        first = consented(lake, DAY_1)
        _land(root, "customers", "day2.csv", CUSTOMERS_2)
        # Retention 0: the second day's export replaces the first day's entirely.
        lake = run_day(DAY_2, "exports.retention_days=0")
        second = consented(lake, DAY_2)
    return lake, first, second


@pytest.mark.slow
def test_a_withdrawal_empties_the_next_segments_and_exports(tiny_world):
    lake, first, second = tiny_world
    assert first == {"segment": {"M1", "M2"}, "segments": {"M1", "M2"}, "recs": {"M1", "M2"}}
    assert second == {"segment": {"M3"}, "segments": {"M3"}, "recs": {"M3"}}
    root = Path(lake.root) / "exports"
    assert (
        _folders(root / "segments") == _folders(root / "recommendations") == {f"run_date={DAY_2}"}
    )
    # The first day's snapshot stays as it was: who was in the segment that day.
    members = lake.read(T.IDENTITY_MAP).filter(F.col("id_type") == "member_id")
    who = {r["one_id"]: r["id_key"] for r in members.collect()}
    assert {who[r["one_id"]] for r in lake.read_snapshot(T.SEGMENTS, DAY_1).collect()} == {
        "M1",
        "M2",
    }
