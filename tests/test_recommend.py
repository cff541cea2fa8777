"""Recommendations: interactions, indexing and metrics on hand-computed cases; the job on
a small world with planted tastes (beats popularity, never recommends a bought item,
flags and never exports people without consent, reruns change nothing)."""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from precis import tables
from precis.config import RecommendConfig, RecommendGridConfig, load_config
from precis.jobs import recommend
from precis.recommend import (
    RecommendInputs,
    build,
    evaluation,
    interactions,
    kept_table,
    model,
    stamp,
)
from precis.recommend.top import LIST_COLUMNS
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 3, 31)
T = dt.datetime(2026, 3, 31, 12)
IDS = "id_type string, id_key string, one_id string"
EVENTS = "event_id string, event_time timestamp, id_type string, id_key string, event_type string, item_id string"
ORDERS = "order_id string, order_time timestamp, id_type string, id_key string, amount double, status string"
LINES = "order_id string, item_id string, quantity int, unit_price double"


@pytest.fixture(scope="module")
def identity_map(spark):
    return spark.createDataFrame(
        [("member_id", "m1", "p1"), ("cookie_id", "c1", "p1"), ("member_id", "m2", "p2")], IDS
    )


def test_event_evidence_weights_and_cutoff(spark, identity_map):
    events = spark.createDataFrame(
        [
            ("e1", T, "member_id", "m1", "view", "i1"),
            ("e2", T, "cookie_id", "c1", "add_to_cart", "i1"),
            ("e3", T, "member_id", "m1", "search", None),  # no item
            ("e4", T, "member_id", "m1", "purchase", "i2"),  # weight 0: not evidence
            ("e5", T + dt.timedelta(days=1), "member_id", "m2", "view", "i3"),  # after the run date
            ("e6", T, "member_id", "unknown", "view", "i3"),  # nobody
        ],
        EVENTS,
    )
    got = interactions.event_evidence(
        events, identity_map, {"view": 1.0, "add_to_cart": 3.0, "purchase": 0.0}, AS_OF
    )
    expected = spark.createDataFrame(
        [("p1", "i1", 1.0, T), ("p1", "i1", 3.0, T)],
        "one_id string, item_id string, weight double, at timestamp",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_purchase_evidence_skips_refunds(spark, identity_map):
    orders = spark.createDataFrame(
        [("o1", T, "member_id", "m1", 10.0, None), ("o2", T, "member_id", "m2", 5.0, "refunded")],
        ORDERS,
    )
    lines = spark.createDataFrame(
        [("o1", "i1", 1, 10.0), ("o1", "i2", 2, 0.0), ("o2", "i3", 1, 5.0)], LINES
    )
    got = interactions.bought(identity_map, None, orders, lines, ("purchase",), AS_OF)
    assert sorted(tuple(r) for r in got.collect()) == [("p1", "i1"), ("p1", "i2")]


def test_bought_counts_purchase_events_and_order_lines(spark, identity_map):
    """A purchase event marks its item bought whatever its weight as evidence; other
    event types, events after the run date and itemless events do not."""
    events = spark.createDataFrame(
        [
            ("e1", T, "member_id", "m1", "purchase", "i5"),
            ("e2", T, "cookie_id", "c1", "checkout", "i6"),
            ("e3", T, "member_id", "m2", "view", "i7"),
            ("e4", T + dt.timedelta(days=1), "member_id", "m2", "purchase", "i8"),
            ("e5", T, "member_id", "m2", "purchase", None),
        ],
        EVENTS,
    )
    orders = spark.createDataFrame([("o1", T, "member_id", "m2", 10.0, "paid")], ORDERS)
    lines = spark.createDataFrame([("o1", "i1", 1, 10.0)], LINES)
    both = interactions.bought(identity_map, events, orders, lines, ("purchase", "checkout"), AS_OF)
    expected = spark.createDataFrame(
        [("p1", "i5"), ("p1", "i6"), ("p2", "i1")], "one_id string, item_id string"
    )
    assert_df_equality(both, expected, ignore_row_order=True, ignore_nullable=True)
    events_only = interactions.bought(identity_map, events, None, None, ("purchase",), AS_OF)
    assert sorted(tuple(r) for r in events_only.collect()) == [("p1", "i5")]
    assert interactions.bought(identity_map, events, None, None, (), AS_OF) is None


def test_confidence_decays_by_half_life(spark):
    evidence = spark.createDataFrame(
        [
            ("p1", "i1", 2.0, dt.datetime(2026, 4, 1)),  # the end of the run date: age 0
            ("p1", "i1", 4.0, dt.datetime(2026, 3, 2)),  # 30 days before: half
            ("p2", "i1", 1.0, dt.datetime(2026, 1, 31)),  # 60 days: a quarter
        ],
        "one_id string, item_id string, weight double, at timestamp",
    )
    got = {
        (r["one_id"], r["item_id"]): r["confidence"]
        for r in interactions.confidence(evidence, AS_OF, 30.0).collect()
    }
    assert got[("p1", "i1")] == pytest.approx(2.0 + 2.0)
    assert got[("p2", "i1")] == pytest.approx(0.25)
    flat = {
        (r["one_id"]): r["confidence"]
        for r in interactions.confidence(evidence, AS_OF, None).collect()
    }
    assert flat == {"p1": 6.0, "p2": 1.0}


def test_dense_index_is_sorted_and_dense(spark):
    ids = spark.createDataFrame(
        [(f"u{n:03d}",) for n in (5, 3, 9, 3, 1, 7)], "one_id string"
    ).repartition(3)
    got = model.dense_index(ids, "one_id", "user").orderBy("user").collect()
    assert [(r["one_id"], r["user"]) for r in got] == [
        ("u001", 0),
        ("u003", 1),
        ("u005", 2),
        ("u007", 3),
        ("u009", 4),
    ]


def test_ranking_metrics_hand_computed(spark):
    recommended = spark.createDataFrame(
        [(1, [10, 20, 30]), (2, [40, 50, 60])], "user int, items array<int>"
    )
    # user 1: one hit at rank 2 of two relevant; user 2: no hit; user 3: no list at all.
    relevant = spark.createDataFrame(
        [(1, [20, 70]), (2, [10]), (3, [10])], "user int, items array<int>"
    )
    got = evaluation.ranking_metrics(recommended, relevant, 3)
    ndcg_1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert got["precision_at_3"] == pytest.approx((1 / 3) / 3)
    assert got["recall_at_3"] == pytest.approx((1 / 2) / 3)
    assert got["ndcg_at_3"] == pytest.approx(ndcg_1 / 3)
    assert got["map_at_3"] == pytest.approx((1 / 2 / 2) / 3)


def test_per_user_ndcg_agrees_with_spark_ml_and_the_lift_is_paired(spark):
    """The per-user NDCG column averages to RankingEvaluator's NDCG (the oracle), on lists
    shorter and longer than k and labels shorter and longer than k; the lift is the
    mean of the per-user differences, with a normal 95% interval."""
    relevant = spark.createDataFrame(
        [(1, [20, 70]), (2, [10]), (3, [10]), (4, [1, 2, 3, 4, 5]), (5, [9])],
        "user int, items array<int>",
    )
    model_lists = spark.createDataFrame(
        [(1, [10, 20, 30]), (2, [40, 50, 60]), (4, [5, 9, 1, 8]), (5, [9])],
        "user int, items array<int>",
    )
    baseline = spark.createDataFrame(
        [(1, [20, 70, 30]), (2, [10]), (3, [10, 11, 12]), (4, [7, 8, 9]), (5, [8, 9])],
        "user int, items array<int>",
    )
    for lists in (model_lists, baseline):
        per_user = (
            relevant.join(lists.withColumnRenamed("items", "p"), "user", how="left")
            .select(evaluation.ndcg(F.coalesce("p", F.array()), F.col("items"), 3).alias("v"))
            .agg(F.avg("v"))
            .collect()[0][0]
        )
        assert per_user == pytest.approx(
            evaluation.ranking_metrics(lists, relevant, 3)["ndcg_at_3"]
        )

    def ndcg(prediction, label):
        gain = [1 / math.log2(i + 2) for i in range(3)]
        dcg = sum(g for g, x in zip(gain, prediction[:3]) if x in label)
        return dcg / sum(gain[: min(3, len(label))])

    diffs = [
        ndcg([10, 20, 30], [20, 70]) - ndcg([20, 70, 30], [20, 70]),
        ndcg([40, 50, 60], [10]) - ndcg([10], [10]),
        0.0 - ndcg([10, 11, 12], [10]),
        ndcg([5, 9, 1, 8], [1, 2, 3, 4, 5]) - ndcg([7, 8, 9], [1, 2, 3, 4, 5]),
        ndcg([9], [9]) - ndcg([8, 9], [9]),
    ]
    lift = evaluation.ndcg_lift(model_lists, baseline, relevant, 3)
    half = 1.96 * float(np.std(diffs, ddof=1)) / math.sqrt(5)
    assert lift.users == 5
    assert lift.mean == pytest.approx(np.mean(diffs))
    assert (lift.ci_low, lift.ci_high) == pytest.approx((lift.mean - half, lift.mean + half))
    assert not lift.significant


def test_popularity_lists_skip_seen_items(spark):
    train = spark.createDataFrame(
        [(1, 100), (2, 100), (3, 100), (1, 200), (2, 200), (3, 300)], "user int, item int"
    )
    users = spark.createDataFrame([(1,), (3,), (4,)], "user int")
    got = {r["user"]: r["items"] for r in evaluation.popularity_lists(train, users, 2).collect()}
    # popularity: 100 (3 users), 200 (2), 300 (1).
    assert got == {1: [300], 3: [200], 4: [100, 200]}
    assert evaluation.coverage(evaluation.popularity_lists(train, users, 2), 4) == 0.75


# ------------------------------------------------------------------ the job
def _world(seed: int = 5):
    """60 people in two taste groups over 40 items (group A likes items 0-19, B 20-39),
    browsing for 60 days before the run date; some purchases."""
    rng = np.random.default_rng(seed)
    events, orders, lines = [], [], []
    start = dt.datetime(2026, 1, 31)
    for person in range(60):
        liked = range(20) if person % 2 == 0 else range(20, 40)
        for n in range(40):
            item = int(rng.choice(list(liked))) if rng.uniform() < 0.9 else int(rng.integers(0, 40))
            when = start + dt.timedelta(days=float(rng.uniform(0, 60)))
            kind = "view" if rng.uniform() < 0.8 else "add_to_cart"
            events.append((f"e{person}_{n}", when, "member_id", f"m{person}", kind, f"i{item:02d}"))
        for n in range(2):
            item = int(rng.choice(list(liked)))
            order = f"o{person}_{n}"
            orders.append(
                (
                    order,
                    start + dt.timedelta(days=float(rng.uniform(0, 60))),
                    "member_id",
                    f"m{person}",
                    10.0,
                    "paid",
                )
            )
            lines.append((order, f"i{item:02d}", 1, 10.0))
    # A popular item everyone views (the baseline's favourite).
    for person in range(60):
        events.append(
            (
                f"pop{person}",
                start + dt.timedelta(days=float(rng.uniform(0, 60))),
                "member_id",
                f"m{person}",
                "view",
                "i99",
            )
        )
    return events, orders, lines


@pytest.fixture(scope="module")
def job_runs(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("recommend_job") / "lakehouse"
    lake = Lakehouse(spark, str(root))
    events, orders, lines = _world()
    lake.overwrite(spark.createDataFrame(events, EVENTS), tables.EVENTS)
    lake.overwrite(spark.createDataFrame(orders, ORDERS), tables.ORDERS)
    lake.overwrite(spark.createDataFrame(lines, LINES), tables.ORDER_ITEMS)
    seen = dt.datetime(2026, 1, 1)
    ids = [("member_id", f"m{p}", f"p{p:02d}", seen, seen) for p in range(60)]
    ids.append(("email", "never-seen", "p_new", seen, seen))
    lake.overwrite(
        spark.createDataFrame(
            ids,
            "id_type string, id_key string, one_id string, first_seen timestamp, last_seen timestamp",
        ),
        tables.IDENTITY_MAP,
    )
    # Consent: even people yes, odd people no, p_new unknown (so no).
    customers = [("member_id", f"m{p}", p % 2 == 0) for p in range(60)]
    lake.overwrite(
        spark.createDataFrame(
            customers, "id_type string, id_key string, consent_marketing boolean"
        ),
        tables.CUSTOMERS,
    )
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "recommend.grid.rank=[4,8]",
            "recommend.grid.reg_param=[0.1]",
            "recommend.grid.alpha=[10.0]",
            "recommend.max_iter=5",
            "recommend.top_n=5",
            "recommend.eval_k=5",
            "recommend.validation_days=10",
            "recommend.log_model=false",
        ],
        run_date=AS_OF.isoformat(),
    )
    first = recommend.run(spark, cfg)
    table = lake.read(tables.RECOMMENDATIONS).localCheckpoint()
    second = recommend.run(spark, cfg)
    return {
        "cfg": cfg,
        "lake": lake,
        "first": first,
        "second": second,
        "table": table,
        "orders": orders,
        "lines": lines,
    }


def test_job_beats_popularity_on_planted_tastes(job_runs):
    tuning = job_runs["first"]["tuning"]
    # Both grid points with max_iter // 3 iterations, the better one with max_iter, and
    # that one again without decay.
    assert [
        (t["params"]["rank"], t["params"]["max_iter"], t["params"]["half_life_days"])
        for t in tuning["trials"][:2]
    ] == [(4, 1, 90.0), (8, 1, 90.0)]
    assert [
        (t["params"]["max_iter"], t["params"]["half_life_days"]) for t in tuning["trials"][2:]
    ] == [(5, 90.0), (5, None)]
    assert tuning["best"]["metrics"]["ndcg_at_5"] > tuning["baseline"]["ndcg_at_5"] + 0.05
    assert tuning["best"]["lift"]["ci_low"] > 0 and tuning["shipped"] == "als"


def test_job_top_n_for_everyone(job_runs):
    table = job_runs["table"]
    per_person = {
        r["one_id"]: r["n"]
        for r in table.groupBy("one_id").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    assert set(per_person) == {f"p{p:02d}" for p in range(60)} | {"p_new"}
    assert set(per_person.values()) == {5}
    ranks = (
        table.groupBy("one_id")
        .agg(F.sort_array(F.collect_list("rank")).alias("r"))
        .select("r")
        .distinct()
        .collect()
    )
    assert [r["r"] for r in ranks] == [[1, 2, 3, 4, 5]]
    assert table.filter(F.isnan("score") | F.col("score").isNull()).count() == 0
    # The person nobody saw gets the most popular items, marked as such.
    new = table.filter(F.col("one_id") == "p_new").orderBy("rank").collect()
    assert {r["source"] for r in new} == {"popularity"} and new[0]["item_id"] == "i99"
    assert table.filter((F.col("one_id") != "p_new") & (F.col("source") == "als")).count() > 0


def test_job_never_recommends_a_bought_item(job_runs, spark):
    bought = {(f"p{int(o.split('_')[0][1:]):02d}", item) for o, item, _, _ in job_runs["lines"]}
    got = {
        (r["one_id"], r["item_id"]) for r in job_runs["table"].select("one_id", "item_id").collect()
    }
    assert not (got & bought)


def test_job_consent_flag_and_export(job_runs, spark):
    table = job_runs["table"]
    flags = {
        r["one_id"]: r["consent_marketing"]
        for r in table.select("one_id", "consent_marketing").distinct().collect()
    }
    assert flags["p00"] is True and flags["p01"] is False and flags["p_new"] is False
    cfg = job_runs["cfg"]
    exported = spark.read.parquet(
        f"{cfg.root}/exports/recommendations/run_date={AS_OF.isoformat()}"
    )
    assert {r["one_id"] for r in exported.select("one_id").distinct().collect()} == {
        f"p{p:02d}" for p in range(0, 60, 2)
    }
    assert job_runs["first"]["exported"] == 30 * 5


def test_job_rerun_changes_nothing(job_runs):
    # The rerun replaced its date's snapshot with the same lists: one snapshot, no doubles.
    assert job_runs["second"]["written"] == job_runs["first"]["written"] > 0
    assert job_runs["lake"].snapshot_dates(tables.RECOMMENDATIONS) == [AS_OF]
    again = job_runs["lake"].read(tables.RECOMMENDATIONS)
    cols = ["one_id", "rank", "item_id", "score", "source", "consent_marketing"]
    assert_df_equality(again.select(cols), job_runs["table"].select(cols), ignore_row_order=True)


@pytest.mark.parametrize(
    ("master", "remote", "blocks"),
    [
        ("local[3]", False, 3),
        ("local[3]", True, 3),  # cores named: wherever the server runs
        ("local[4,2]", False, 4),  # with task retries
        ("local", False, 1),
        ("local[*]", False, os.cpu_count()),
        ("local[*]", True, model.SPARK_ALS_BLOCKS),  # a Connect server's own cores
        ("spark://master:7077", False, model.SPARK_ALS_BLOCKS),
        ("yarn", False, model.SPARK_ALS_BLOCKS),
        ("", False, model.SPARK_ALS_BLOCKS),
    ],
)
def test_als_blocks_one_per_core_where_the_cores_are_known(master, remote, blocks):
    assert model.blocks_for(master, remote=remote) == blocks


def test_als_blocks_setting_is_checked_and_the_session_gives_its_cores(spark):
    settings = RecommendConfig(als_blocks=3)
    assert settings.als_blocks == 3
    assert model.session_blocks(spark) == 2  # the suite's local[2]
    with pytest.raises(ValueError, match="als_blocks"):
        RecommendConfig(als_blocks=0)


# ------------------------------------------------------------------ build, without the job
def _day(d):
    return dt.datetime(2026, 3, d, 12)


def _tiny_inputs(spark) -> RecommendInputs:
    """p1-p4 over four items (p1's i3 is the only pair first seen in the last 10 days),
    p2 bought i2 (order) and p3 bought i4 (a purchase event); p_new has no evidence."""
    day = _day

    events = [
        ("e1", day(1), "member_id", "m1", "view", "i1"),
        ("e2", day(1), "member_id", "m1", "view", "i2"),
        ("e3", day(30), "member_id", "m1", "view", "i3"),  # first seen in the hold-out
        ("e4", day(1), "member_id", "m2", "view", "i1"),
        ("e5", day(2), "member_id", "m2", "view", "i3"),
        ("e6", day(1), "member_id", "m3", "view", "i2"),
        ("e7", day(2), "member_id", "m3", "view", "i4"),
        ("e8", day(3), "member_id", "m4", "view", "i1"),
        ("e9", day(2), "member_id", "m3", "purchase", "i4"),  # weight 0: bought, no evidence
    ]
    ids = [("member_id", f"m{p}", f"p{p}") for p in range(1, 5)] + [("email", "new", "p_new")]
    return RecommendInputs(
        identity_map=spark.createDataFrame(ids, IDS),
        events=spark.createDataFrame(events, EVENTS),
        orders=spark.createDataFrame([("o1", day(3), "member_id", "m2", 10.0, "paid")], ORDERS),
        order_items=spark.createDataFrame([("o1", "i2", 1, 10.0)], LINES),
        customers=spark.createDataFrame(
            [("member_id", "m1", True), ("member_id", "m2", False)],
            "id_type string, id_key string, consent_marketing boolean",
        ),
    )


TINY = RecommendConfig(
    top_n=2,
    eval_k=2,
    validation_days=10,
    grid=RecommendGridConfig(rank=(2,), reg_param=(0.1,), alpha=(1.0,)),
    max_iter=3,
    block_size=256,
    log_model=False,
)


def test_build_on_a_tiny_world(spark):
    """Four people over four items and a newcomer: ALS lists for the people with evidence,
    never an item they bought; the newcomer gets the most popular items; consent flags."""
    # The time split however few it holds; ALS ships without a significant lift.
    settings = TINY.model_copy(
        update={"validation_min_people": 1, "measure_decay": False, "require_lift": False}
    )
    out = build(_tiny_inputs(spark), settings, run_date=AS_OF)

    assert (out.people, out.items, out.interactions) == (4, 4, 9)
    assert out.example is None
    assert (out.tuning.split, out.tuning.validation_from) == ("time", dt.date(2026, 3, 22))
    assert out.tuning.validation_people == 1  # p1, whose i3 was held out
    assert [t.params.rank for t in out.tuning.trials] == [2]
    # als_blocks unset: one block per core of the suite's local[2] session, every fit.
    assert {t.params.blocks for t in out.tuning.trials} == {out.tuning.best.params.blocks} == {2}
    lists = out.lists.localCheckpoint()
    assert lists.columns == list(LIST_COLUMNS)
    # Popularity: i1 and i2 were touched by 3 of the 4 people with evidence (p2 bought i2).
    assert_df_equality(
        lists.filter(F.col("one_id") == "p_new"),
        spark.createDataFrame(
            [
                ("p_new", 1, "i1", 0.75, "popularity", False),
                ("p_new", 2, "i2", 0.75, "popularity", False),
            ],
            "one_id string, rank int, item_id string, score double, source string, consent_marketing boolean",
        ),
        ignore_nullable=True,
        ignore_row_order=True,
    )
    known = lists.filter(F.col("one_id") != "p_new")
    assert sorted(
        (r["one_id"], r["rank"], r["source"], r["consent_marketing"]) for r in known.collect()
    ) == [(f"p{p}", rank, "als", p == 1) for p in range(1, 5) for rank in (1, 2)]
    bought = known.filter(
        ((F.col("one_id") == "p2") & (F.col("item_id") == "i2"))
        | ((F.col("one_id") == "p3") & (F.col("item_id") == "i4"))
    )
    assert bought.count() == 0

    stamped = stamp(lists, model_version="v1", run_id="r1", run_date=AS_OF)
    assert stamped.columns == [*LIST_COLUMNS, "model_version", "run_id", "run_date", "generated_at"]
    with kept_table(stamped) as (table, sources):
        assert sources == {"als": 8, "popularity": 2}
        assert {(r["model_version"], r["run_id"], r["run_date"]) for r in table.collect()} == {
            ("v1", "r1", AS_OF)
        }


def test_latest_split_holds_out_each_persons_latest_share(spark):
    """20% of each person's items, rounded, at least one and never all, latest first
    (ties: the higher item_id); people with one item keep it; every row of a held pair goes."""
    rows = [
        (f"p{n}", f"i{i}", 1.0, _day(1 + i))
        for n, items in ((1, 10), (2, 3), (3, 1))
        for i in range(items)
    ]
    rows += [
        ("p1", "i9", 2.0, _day(12)),
        ("p2", "i0", 1.0, _day(1)),
        ("p4", "i1", 1.0, _day(5)),
        ("p4", "i2", 1.0, _day(5)),
    ]
    evidence = spark.createDataFrame(
        rows, "one_id string, item_id string, weight double, at timestamp"
    )
    train, held = model.latest_split(evidence, 0.2)
    expected = spark.createDataFrame(
        [("p1", "i8"), ("p1", "i9"), ("p2", "i2"), ("p4", "i2")], "one_id string, item_id string"
    )
    assert_df_equality(held, expected, ignore_row_order=True, ignore_nullable=True)
    assert train.count() == len(rows) - 5  # p1: i8 and both rows of i9; p2 i2; p4 i2
    assert train.join(held, ["one_id", "item_id"], how="inner").count() == 0


def test_build_ships_popularity_when_als_has_no_significant_lift(spark):
    """Defaults on the tiny world: the time split holds one person (below
    validation_min_people), so each person's latest items are held out; ALS cannot beat
    popularity with confidence on three people, so every list is popularity's and no
    model is trained; bought items (order line, purchase event) are still left out."""
    out = build(_tiny_inputs(spark), TINY, run_date=AS_OF)
    tuning = out.tuning
    assert (tuning.split, tuning.validation_from) == ("latest", None)
    assert tuning.validation_people == 3  # p1, p2, p3 (p4 has one item)
    assert not tuning.best.lift.significant and not tuning.ships_als
    assert tuning.metrics()["ships_als"] == 0.0 and tuning.as_dict()["shipped"] == "popularity"
    assert out.model is None and out.example is None
    lists = out.lists.localCheckpoint()
    assert {r["source"] for r in lists.collect()} == {"popularity"}
    assert lists.groupBy("one_id").count().filter("count != 2").count() == 0
    bought = {("p2", "i2"), ("p3", "i4")}
    assert not bought & {(r["one_id"], r["item_id"]) for r in lists.collect()}


def test_halving_decay_and_the_time_budget(spark):
    """Three grid points at max_iter // halving iterations, the best one at max_iter, then
    without decay; a spent budget stops after one quick and one full fit."""
    settings = TINY.model_copy(
        update={
            "grid": RecommendGridConfig(rank=(2,), reg_param=(0.1, 1.0, 10.0), alpha=(1.0,)),
            "max_iter": 6,
            "validation_min_people": 1,
        }
    )
    tuning = build(_tiny_inputs(spark), settings, run_date=AS_OF).tuning
    steps = [(t.params.reg_param, t.params.max_iter, t.half_life_days) for t in tuning.trials]
    assert steps[:3] == [(0.1, 2, 90.0), (1.0, 2, 90.0), (10.0, 2, 90.0)]
    assert [s[1:] for s in steps[3:]] == [(6, 90.0), (6, None)]
    assert steps[3][0] == steps[4][0] and not tuning.stopped_early
    assert tuning.best in tuning.trials[3:] and tuning.best.lift is not None

    spent = build(
        _tiny_inputs(spark), settings.model_copy(update={"search_seconds": 1e-9}), run_date=AS_OF
    ).tuning
    assert [(t.params.reg_param, t.params.max_iter) for t in spent.trials] == [(0.1, 2), (0.1, 6)]
    assert spent.stopped_early and spent.best is spent.trials[1]
