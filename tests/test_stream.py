"""The speed layer: real-time tags and triggers as events land (``precis.jobs.stream``).

One small world, landed in three batches: its identity map, customers and segments
stand in for the batch jobs' tables (written here, as those jobs would write them), and
every expectation is worked out by hand from the events below.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import load_config
from precis.errors import ConfigError, MissingDatasetError
from precis.ingest.conform import IdentifierSettings
from precis.jobs import ingest, stream
from precis.person import identifier_key
from precis.storage import Lakehouse
from precis.stream import activity as act
from precis.stream import hot
from precis.stream import triggers as tr
from precis.stream.settings import StreamConfig
from worlds import PROJECT

DAY = dt.datetime(2026, 3, 31)
EVENTS_SCHEMA = (
    "event_id string, event_time timestamp, source string, id_type string, id_value string, "
    "event_type string, item_id string, channel string, properties string"
)
ORDERS_SCHEMA = (
    "order_id string, order_time timestamp, id_type string, id_value string, amount double, "
    "currency string, channel string, status string"
)
# Who is who: A, B and C are members, D an email address, E a device the identity map
# has not seen (until the last batch).
PEOPLE = {
    "A": ("member_id", "M-A"),
    "B": ("member_id", "M-B"),
    "C": ("member_id", "M-C"),
    "D": ("email", "d@example.com"),
    "E": ("device_id", "dev-e"),
}


def at(hhmm: str) -> dt.datetime:
    h, m = hhmm.split(":")
    return DAY.replace(hour=int(h), minute=int(m))


def event(eid, when, who, kind, item=None):
    id_type, value = PEOPLE[who]
    return (eid, at(when), "web", id_type, value, kind, item, None, None)


#: Three landings. A abandons a cart, B buys theirs (an order), C (no consent) abandons
#: one; D, in segment vip, comes back after two months; E is seen before the identity
#: map knows their device; e-late lands after the watermark passed it.
BATCHES = [
    (
        [
            event("e1", "10:00", "A", "add_to_cart", "i1"),
            event("e2", "10:01", "A", "view", "i9"),
            event("e3", "10:02", "A", "view", "i8"),
            event("e4", "10:03", "E", "view", "i7"),
            event("e5", "10:05", "B", "add_to_cart", "i2"),
            event("e6", "10:10", "C", "add_to_cart", "i3"),
        ],
        [("o1", at("10:20"), "member_id", "M-B", 25.0, "CNY", "web", "paid")],
    ),
    (
        [
            event("e7", "10:30", "D", "view", "i5"),
            event("e8", "10:40", "D", "view", "i6"),
            event("e9", "10:45", "A", "view", "i4"),
        ],
        [],
    ),
    (
        [
            event("e10", "11:00", "A", "view", "i3"),
            event("e11", "11:30", "C", "view", "i2"),
            event("e-late", "10:00", "E", "view", "i1"),
        ],
        [],
    ),
]
LATE = {"e-late"}


@pytest.fixture
def world(spark, tmp_path):
    root = tmp_path / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "mlflow.enabled=false",
            "stream.returning.segment=vip",
            "ingest.datasets=[events, orders]",
        ],
        run_date="2026-03-31",
    )
    lake = Lakehouse.from_config(spark, cfg)
    keys = {who: key_of(spark, cfg, *ids) for who, ids in PEOPLE.items()}
    mapped = [
        (PEOPLE[w][0], keys[w], w, DAY - dt.timedelta(days=90), DAY - dt.timedelta(days=d))
        for w, d in (("A", 1), ("B", 1), ("C", 1), ("D", 58))
    ]
    map_schema = (
        "id_type string, id_key string, one_id string, first_seen timestamp, last_seen timestamp"
    )
    lake.overwrite(spark.createDataFrame(mapped, map_schema), T.IDENTITY_MAP)
    customers = [(PEOPLE[w][0], keys[w], w != "C", DAY - dt.timedelta(days=100)) for w in "ABCD"]
    lake.overwrite(
        spark.createDataFrame(
            customers,
            "id_type string, id_key string, consent_marketing boolean, signup_time timestamp",
        ),
        T.CUSTOMERS,
    )
    members = spark.createDataFrame([("vip", "D")], "segment string, one_id string")
    lake.write_snapshot(members, T.SEGMENTS, cfg.run_date)
    return cfg, lake, keys


def key_of(spark, cfg, id_type, value):
    return identifier_key(spark, id_type, value, IdentifierSettings.from_config(cfg))


def land(spark, cfg, n: int) -> None:
    events, orders = BATCHES[n]
    for dataset, rows, schema in (
        ("events", events, EVENTS_SCHEMA),
        ("orders", orders, ORDERS_SCHEMA),
    ):
        if rows:
            frame = spark.createDataFrame(rows, schema).coalesce(1)
            frame.write.parquet(f"{cfg.landing_path(dataset)}/batch={n}")


def provisional(id_type: str, key: str) -> str:
    return act.PROVISIONAL + hashlib.sha256(f"{id_type}:{key}".encode()).hexdigest()[:24]


def expected_tags(upto: int, one_id_of: dict[str, str], clock: dt.datetime) -> set[tuple]:
    """The default tags at ``clock`` of the events of batches 0..upto, worked out here."""
    rows = [e for n in range(upto + 1) for e in BATCHES[n][0] if e[0] not in LATE]
    by: dict[str, list] = {}
    for eid, when, _, id_type, value, kind, item, _, _ in rows:
        who = next(w for w, ids in PEOPLE.items() if ids == (id_type, value))
        by.setdefault(one_id_of[who], []).append((when, eid, kind, item))
    out = set()
    for person, seen in by.items():
        views = [s for s in seen if s[2] == "view"]
        hour = sum(1 for s in views if s[0] > clock - dt.timedelta(hours=1))
        counts = {"views_1h": hour, "views_1d": len(views),
                  "cart_adds_1d": sum(1 for s in seen if s[2] == "add_to_cart")}  # fmt: skip
        out |= {(person, tag, str(n)) for tag, n in counts.items() if n}
        out.add((person, "last_seen", f"{max(seen)[0]:%Y-%m-%d %H:%M:%S}"))
        if views:
            out.add((person, "last_item_viewed", max(views)[3]))
    return out


#: What the landings of batches 0 and 1 fire, once each.
FIRED = [("cart_abandoned", "A", "e1"), ("returning", "D", "e7")]


def fired(lake) -> list[tuple]:
    rows = lake.read(T.TRIGGERS).select("trigger", "one_id", "event_id").orderBy("trigger")
    return [tuple(r) for r in rows.collect()]


def held_tags(lake) -> set[tuple]:
    return {tuple(r) for r in lake.read(T.REALTIME_TAGS).select("one_id", "tag", "value").collect()}


def recomputed(spark, cfg, lake, clock) -> set[tuple]:
    """The batch layer's view: ingest the same landing files into silver, resolve them
    through the identity map and compute the tags at the stream's clock."""
    ingest.run(spark, cfg)
    rows = []
    for dataset in act.DATASETS:
        silver = lake.read(T.SILVER[dataset]).withColumn(
            "_landed_at", F.lit(None).cast("timestamp")
        )
        rows.append(act._activity(silver.filter(F.col("id_status") == "ok"), dataset))
    activity = act.resolve(rows[0].unionByName(rows[1]), lake.read(T.IDENTITY_MAP))
    activity = activity.filter(~F.col("activity_id").isin(*LATE))
    tags = hot.tags(activity, cfg.stream, clock).filter(F.col("value").isNotNull())
    return {tuple(r) for r in tags.select("one_id", "tag", "value").collect()}


def test_three_landings_give_the_batch_recomputation_and_fire_each_trigger_once(spark, world):
    cfg, lake, keys = world
    e_tmp = provisional("device_id", keys["E"])
    ids = {"A": "A", "B": "B", "C": "C", "D": "D", "E": e_tmp}
    clocks = [at("10:20"), at("10:45"), at("11:30")]
    for n in range(3):
        if n == 2:
            # An identity run between landings maps E's device: the stream reconciles.
            mapped = spark.createDataFrame(
                [("device_id", keys["E"], "E", DAY, DAY)], lake.read(T.IDENTITY_MAP).schema
            )
            lake.merge_upsert(mapped, T.IDENTITY_MAP)
            ids["E"] = "E"
        land(spark, cfg, n)
        out = stream.run(spark, cfg)
        assert out["batches"] == 1
        assert held_tags(lake) == expected_tags(n, ids, clocks[n])
        assert held_tags(lake) == recomputed(spark, cfg, lake, clocks[n])
    # No provisional one_id is left once the map knows E.
    assert e_tmp not in {r[0] for r in held_tags(lake)}
    # B bought (o1); C has no consent; D's second view is ten minutes after the first.
    assert fired(lake) == FIRED
    progress = lake.read(T.STREAM_PROGRESS).orderBy("batch_id").collect()
    assert [(r["batch_id"], r["rows"], r["late_rows"]) for r in progress] == [
        (0, 7, 0), (1, 3, 0), (2, 3, 1),
    ]  # fmt: skip
    assert [r["watermark"] for r in progress] == [c - dt.timedelta(minutes=10) for c in clocks]
    assert [r["reconciled"] for r in progress] == [False, False, True]
    # A second run with nothing new changes nothing.
    assert stream.run(spark, cfg)["batches"] == 0
    # No plain email anywhere the stream writes: identifiers are keys.
    for table in (T.STREAM_ACTIVITY, T.REALTIME_TAGS, T.TRIGGERS, T.STREAM_PROGRESS):
        text = lake.read(table).select(F.to_json(F.struct("*")).alias("row"))
        assert text.filter(F.col("row").contains("d@example.com")).count() == 0, table.ref


def test_sigkill_during_a_micro_batch_then_restart_duplicates_and_loses_nothing(spark, world):
    cfg, lake, keys = world
    land(spark, cfg, 0)
    stream.run(spark, cfg)
    land(spark, cfg, 1)
    args = ["stream", "--run-date", "2026-03-31", "--set", f"storage.root={cfg.root}",
            "--set", "mlflow.enabled=false", "--set", "stream.returning.segment=vip"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    # This micro-batch writes activity, tags, triggers and its progress row, in that
    # order (no expiry: the clock stays in the same hour). Killed right after its
    # triggers (3); then its replay is killed after its progress row, before Spark
    # recorded the micro-batch as done (4).
    for writes in (3, 4):
        killed = subprocess.run(
            [sys.executable, "-m", "precis", *args], cwd=PROJECT,
            env={**env, "PRECIS_FAULT": f"stream:{writes}"}, capture_output=True, text=True,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        assert lake.read(T.TRIGGERS).count() == 2  # fired before the kill, once
    # The restart, here in this process (the stream through spark-submit is in
    # test_cron.py): from the checkpoint the killed processes left.
    stream.run(spark, cfg)
    assert fired(lake) == FIRED
    kept = {r[0] for r in lake.read(T.STREAM_ACTIVITY).select("activity_id").collect()}
    assert kept == {e[0] for e in BATCHES[0][0] + BATCHES[1][0]} | {"o1"}
    assert lake.read(T.STREAM_ACTIVITY).count() == len(kept)  # each once
    assert [r["batch_id"] for r in lake.read(T.STREAM_PROGRESS).collect()] in ([0, 1], [1, 0])
    ids = {"A": "A", "B": "B", "C": "C", "D": "D", "E": provisional("device_id", keys["E"])}
    assert held_tags(lake) == expected_tags(1, ids, at("10:45"))


@pytest.mark.slow
def test_the_stream_runs_over_spark_connect(spark, world, tmp_path):
    from services import connect_server, service_env

    cfg, lake, keys = world
    land(spark, cfg, 0)
    land(spark, cfg, 1)
    args = ["stream", "--set", f"storage.root={cfg.root}", "--set", "mlflow.enabled=false",
            "--set", "stream.returning.segment=vip"]  # fmt: skip
    with connect_server(cfg, tmp_path / "server") as url:
        done = subprocess.run(
            [sys.executable, "-m", "precis", *args], cwd=PROJECT,
            env={**service_env(), "SPARK_REMOTE": url, "PRECIS_DEBUG": "1"}, capture_output=True,
            text=True,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert fired(lake) == FIRED
    ids = {"A": "A", "B": "B", "C": "C", "D": "D", "E": provisional("device_id", keys["E"])}
    assert held_tags(lake) == expected_tags(1, ids, at("10:45"))


def test_no_landed_events_stops_naming_the_folder(spark, world):
    cfg, _, _ = world
    with pytest.raises(MissingDatasetError, match="no events have landed at .*landing/events"):
        stream.run(spark, cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stream.trigger=soon", "'soon' is neither available_now nor an interval"),
        ("stream.retention_hours=1", "retention_hours .1. must cover the longest window .1440"),
        ("stream.tags.x.template=count", "a count tag needs window_minutes"),
    ],
)
def test_bad_stream_settings_are_refused_before_spark_starts(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(PROJECT / "conf" / "base.yaml", [override])


# ------------------------------------------------------------------ the rules alone
ACTIVITY = (
    "dataset string, activity_id string, at timestamp, kind string, item_id string, "
    "channel string, one_id string"
)


def test_count_windows_include_the_clock_and_exclude_their_start(spark):
    settings = StreamConfig()
    rows = [
        ("events", "a", at("09:30"), "view", "i1", None, "p"),  # exactly an hour before
        ("events", "b", at("09:31"), "view", "i2", None, "p"),
        ("events", "c", at("10:30"), "view", "i3", None, "p"),  # at the clock
        ("events", "d", at("10:31"), "view", "i4", None, "p"),  # after it: not read
    ]
    got = hot.tags(spark.createDataFrame(rows, ACTIVITY), settings, at("10:30"))
    values = {r["tag"]: r["value"] for r in got.collect()}
    assert values == {
        "views_1h": "2", "views_1d": "3", "cart_adds_1d": None,
        "last_seen": "2026-03-31 10:30:00", "last_item_viewed": "i3",
    }  # fmt: skip


def test_touched_people_are_the_new_and_those_leaving_a_window(spark):
    settings = StreamConfig()
    rows = [
        ("events", "a", at("09:10"), "view", None, None, "leaves the hour"),
        ("events", "b", at("09:40"), "view", None, None, "stays"),
        ("events", "c", at("10:30"), "view", None, None, "new"),
    ]
    activity = spark.createDataFrame(rows, ACTIVITY)
    new = activity.filter(F.col("activity_id") == "c")
    got = hot.touched(activity, new, settings, at("10:00"), at("10:30"))
    assert_df_equality(
        got, spark.createDataFrame([("leaves the hour",), ("new",)], "one_id string"),
        ignore_row_order=True,
    )  # fmt: skip


def test_a_cart_is_judged_once_the_watermark_passes_its_due_time(spark):
    settings = StreamConfig().cart_abandoned  # 30 minutes
    rows = [
        ("events", "cart-1", at("10:00"), "add_to_cart", "i1", None, "p"),
        ("events", "cart-2", at("10:00"), "add_to_cart", "i1", None, "q"),
        ("orders", "o", at("10:30"), "order", None, None, "q"),  # at the due time: bought
        ("events", "cart-3", at("10:20"), "add_to_cart", "i1", None, "r"),  # not due yet
    ]
    activity = spark.createDataFrame(rows, ACTIVITY)
    due = tr.abandoned_carts(activity, settings, at("10:15"), at("10:45"))
    assert [r["activity_id"] for r in due.collect()] == ["cart-1"]
    # Already judged before: nothing is due twice.
    assert tr.abandoned_carts(activity, settings, at("10:45"), at("10:49")).count() == 0


def test_the_realtime_notebook_runs_the_stream_and_shows_live_profiles(spark, world):
    from test_notebooks import NOTEBOOKS, overrides, run_notebook

    cfg, lake, keys = world
    # The batch profile knows A (and Z, whom the stream has not seen); not E.
    batch = spark.createDataFrame([("A", 120.0), ("Z", 5.0)], "one_id string, spend_365d double")
    lake.write_snapshot(batch, T.PROFILES, cfg.run_date)
    land(spark, cfg, 0)
    land(spark, cfg, 1)
    given = overrides(
        f"storage.root={cfg.root}", "mlflow.enabled=false", "stream.returning.segment=vip"
    )
    run = run_notebook(NOTEBOOKS / "realtime.py", spark, {"env": "local", "overrides": given})
    assert run.namespace["result"]["batches"] == 1
    shown = {d.heading: d.value for d in run.displayed}
    live = shown["Live profiles"].set_index("one_id")
    assert live.loc["A", "spend_365d"] == 120.0 and live.loc["A", "views_1d"] == "3"
    assert live.loc["A", "last_item_viewed"] == "i4"
    assert live.loc["A", "realtime_updated_at"] == pd.Timestamp("2026-03-31 10:45:00")
    assert pd.isna(live.loc["Z", "views_1d"]) and live.loc["Z", "spend_365d"] == 5.0
    e_tmp = provisional("device_id", keys["E"])
    assert pd.isna(live.loc[e_tmp, "spend_365d"]) and live.loc[e_tmp, "views_1d"] == "1"
    latest = shown["Latest triggers"]
    assert sorted(zip(latest["trigger"], latest["one_id"], strict=True)) == [
        ("cart_abandoned", "A"), ("returning", "D"),
    ]  # fmt: skip
    assert list(shown["Stream progress"]["rows"]) == [10]
