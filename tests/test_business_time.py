"""The business time zone (``ingest.timezone``): a landed time without a zone is a time
there, and every job's days begin at its midnight.

Asia/Shanghai is 8 hours ahead of UTC: 07:30 there on 1 March is 23:30 UTC on 28
February, and a business day there runs from 16:00 UTC the day before.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from conftest import bronze_of
from precis.config import SESSION_TIME_ZONE, load_config
from precis.days import day_end, day_start
from precis.errors import ConfigError
from precis.ingest import conform
from precis.recommend import interactions
from precis.runner import one_writer
from precis.schemas import SPECS
from precis.session import business_time, launch_conf

PROJECT = Path(__file__).resolve().parents[1]
BASE = PROJECT / "conf" / "base.yaml"
SHANGHAI = "Asia/Shanghai"


def _cfg(tmp_path: Path, zone: str = SHANGHAI):
    return load_config(BASE, [f"storage.root={tmp_path}", f"ingest.timezone={zone}"])


def _epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


def test_the_zone_is_checked_before_spark_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"ingest\.timezone.*unknown time zone 'Mars/Base'"):
        _cfg(tmp_path, "Mars/Base")
    assert _cfg(tmp_path, "+08:00").ingest.timezone == "+08:00"
    assert load_config(BASE).ingest.timezone == "UTC"
    # One zone for the whole run: a different one in spark.conf would be overridden.
    with pytest.raises(ConfigError, match=r"spark\.sql\.session\.timeZone \(Asia/Tokyo\) differs"):
        load_config(BASE, ["spark.conf.spark.sql.session.timeZone=Asia/Tokyo"])
    same = load_config(
        BASE, [f"ingest.timezone={SHANGHAI}", f"spark.conf.{SESSION_TIME_ZONE}={SHANGHAI}"]
    )
    assert same.spark.conf[SESSION_TIME_ZONE] == SHANGHAI


def test_sessions_precis_starts_are_in_the_business_zone(tmp_path):
    assert launch_conf(_cfg(tmp_path), "local[2]")[SESSION_TIME_ZONE] == SHANGHAI
    assert launch_conf(_cfg(tmp_path), "spark://m:7077")[SESSION_TIME_ZONE] == SHANGHAI


def test_every_job_runs_in_the_business_zone_and_gives_the_session_its_own_back(spark, tmp_path):
    cfg = _cfg(tmp_path)
    assert spark.conf.get(SESSION_TIME_ZONE) == "UTC"

    @one_writer("test_zone")
    def job(spark, cfg):
        return spark.conf.get(SESSION_TIME_ZONE)

    assert job(spark, cfg) == SHANGHAI
    assert spark.conf.get(SESSION_TIME_ZONE) == "UTC"
    with pytest.raises(RuntimeError), business_time(spark, cfg):
        assert spark.conf.get(SESSION_TIME_ZONE) == SHANGHAI
        raise RuntimeError("a job failing")
    assert spark.conf.get(SESSION_TIME_ZONE) == "UTC"


def test_landed_times_without_a_zone_are_business_times(spark, tmp_path):
    rows = [
        ("o1", "2026-03-01 07:30:00"),  # no zone: Shanghai
        ("o2", "2026-03-01T07:30:00Z"),  # its own zone wins
        ("o3", "2026-03-01T07:30:00+01:00"),
        ("o4", "2026-03-01"),  # a date alone: midnight in Shanghai
    ]
    bronze = bronze_of(
        spark,
        [(o, t, "member_id", "M1", "10", "paid") for o, t in rows],
        "order_id string, order_time string, id_type string, id_value string, amount string, "
        "status string",
    )
    with business_time(spark, _cfg(tmp_path)):
        typed = conform.typed(bronze, SPECS["orders"], {"member_id": "trim"})
        got = typed.select("order_id", F.unix_seconds("order_time").alias("at")).collect()
    assert dict(got) == {
        "o1": _epoch("2026-02-28T23:30:00+00:00"),
        "o2": _epoch("2026-03-01T07:30:00+00:00"),
        "o3": _epoch("2026-03-01T06:30:00+00:00"),
        "o4": _epoch("2026-02-28T16:00:00+00:00"),
    }


def test_days_begin_at_midnight_in_the_business_zone(spark, tmp_path):
    day = dt.date(2026, 3, 1)

    def bounds():
        # Spark fixes a frame's time zone when the frame is made: made inside the run.
        start, end = F.unix_seconds(day_start(day)), F.unix_seconds(day_end(day))
        return tuple(spark.range(1).select(start, end).first())

    with business_time(spark, _cfg(tmp_path)):
        assert bounds() == (
            _epoch("2026-02-28T16:00:00+00:00"),
            _epoch("2026-03-01T16:00:00+00:00"),
        )
    assert bounds() == (_epoch("2026-03-01T00:00:00+00:00"), _epoch("2026-03-02T00:00:00+00:00"))


def test_a_job_as_of_a_day_sees_that_business_day_whole(spark, tmp_path):
    """recommend's evidence as of 1 March: in Shanghai, a view at 23:30 there counts and
    one at 00:30 on 2 March does not, though both are on 1 March in UTC."""
    utc = dt.UTC
    events = spark.createDataFrame(
        [
            ("e1", dt.datetime(2026, 3, 1, 15, 30, tzinfo=utc), "cookie_id", "c1", "view", "i1"),
            ("e2", dt.datetime(2026, 3, 1, 16, 30, tzinfo=utc), "cookie_id", "c1", "view", "i2"),
        ],
        "event_id string, event_time timestamp, id_type string, id_key string, "
        "event_type string, item_id string",
    )
    identity_map = spark.createDataFrame(
        [("cookie_id", "c1", "P1")], "id_type string, id_key string, one_id string"
    )
    as_of = dt.date(2026, 3, 1)
    expected = {SHANGHAI: [("P1", "i1")], "UTC": [("P1", "i1"), ("P1", "i2")]}
    for zone, items in expected.items():
        # Collected inside: a frame's days are cut in the zone it is computed in.
        with business_time(spark, _cfg(tmp_path, zone)):
            found = interactions.event_evidence(events, identity_map, {"view": 1.0}, as_of)
            got = sorted(tuple(r) for r in found.select("one_id", "item_id").collect())
        assert got == items, zone
