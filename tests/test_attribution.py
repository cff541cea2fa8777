"""Attribution: journeys, rule-based models, exact Markov, Shapley and their laws."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality, assert_df_equality

import markov_oracle
from precis.attribution import AttributionInputs, build, journeys, markov, report, rules, shapley
from precis.attribution.journeys import AnalysisWindow
from precis.config import AttributionConfig

RUN = dt.date(2026, 3, 31)
ts = dt.datetime.fromisoformat


# ------------------------------------------------------------------- helpers
def touch_frame(spark, rows):
    """rows: (one_id, touch_id, time, channel)."""
    return spark.createDataFrame(
        [(o, t, ts(at), c) for o, t, at, c in rows],
        "one_id string, touch_id string, at timestamp, channel string",
    )


def conversion_frame(spark, rows):
    """rows: (one_id, order_id, time, revenue)."""
    return spark.createDataFrame(
        [(o, i, ts(at), float(r)) for o, i, at, r in rows],
        "one_id string, order_id string, at timestamp, revenue double",
    )


def path_frame(spark, rows):
    """rows: (path list, conversions, nulls[, revenue]) -> journey touch rows, one journey per unit."""
    out, n = [], 0
    for row in rows:
        path, conversions, nulls = row[:3]
        revenue = row[3] if len(row) > 3 else float(conversions)
        per = revenue / conversions if conversions else 0.0
        for converted, count in ((True, conversions), (False, nulls)):
            for _ in range(count):
                n += 1
                for pos, channel in enumerate(path, 1):
                    out.append(
                        (
                            f"j{n}",
                            "p",
                            converted,
                            per if converted else 0.0,
                            channel,
                            pos,
                            len(path),
                            float(len(path) - pos),
                        )
                    )
    return spark.createDataFrame(
        out,
        "journey_id string, one_id string, converted boolean, revenue double, channel string, "
        "position int, touches int, days_before double",
    )


def all_credits(spark, rows, order=1, worth="conversions"):
    """{model: {channel: conversions}} for every model on the same journeys."""
    frame = path_frame(spark, rows)
    out = {}
    for r in rules.rule_credits(frame, rules.RULE_MODELS).collect():
        out.setdefault(r["model"], {})[r["channel"]] = r["conversions"]
    result = markov.solve(markov.transitions(journeys.paths(frame), order).toPandas())
    out["markov"] = result.conversions
    out["shapley"] = shapley.solve(shapley.channel_sets(frame).toPandas(), worth).conversions
    return out


SMALL = [
    (["a", "b"], 3, 1),
    (["a"], 1, 4),
    (["b", "c", "a"], 2, 0),
    (["c"], 1, 1),
    (["a", "a", "b"], 0, 2),
    (["c", "b", "c", "b"], 2, 3),
]


# ------------------------------------------------------------------ journeys
def test_journeys_cut_at_conversions_within_the_lookback(spark):
    window = AnalysisWindow.ending(RUN, 10, 5)  # 2026-03-22 .. 2026-03-31, touches from 03-17
    touches = touch_frame(
        spark,
        [
            ("p", "t1", "2026-03-10T10:00:00", "search"),  # before the reach of the window: ignored
            (
                "p",
                "t2",
                "2026-03-17T08:00:00",
                "social",
            ),  # 5 days 1 hour before o1: beyond the lookback
            ("p", "t3", "2026-03-21T10:00:00", "email"),  # in o1's journey (1 day before)
            ("p", "t4", "2026-03-22T09:00:00", "search"),  # same instant as o1: before it
            ("p", "t5", "2026-03-22T09:00:00", "display"),  # after o1 (touch ids order equal times)
            ("p", "t6", "2026-03-25T12:00:00", "search"),  # o2's journey
            (
                "p",
                "t7",
                "2026-03-31T23:59:59",
                "social",
            ),  # after the last conversion: non-converting
            ("p", "t8", "2026-04-01T00:00:00", "social"),  # after the run date: never used
            ("q", "t9", "2026-03-30T08:00:00", "display"),  # a person who never converts
        ],
    )
    conversions = conversion_frame(
        spark,
        [
            ("p", "o1", "2026-03-22T09:00:00", 100),
            ("p", "o2", "2026-03-26T12:00:00", 40),
            ("p", "o3", "2026-04-02T12:00:00", 70),  # after the run date
            ("r", "o4", "2026-03-30T12:00:00", 20),  # no touches at all
        ],
    )
    rows = journeys.journey_touches(touches, conversions, window)
    got = rows.select(
        "journey_id", "converted", "revenue", "channel", "position", "touches"
    ).orderBy("journey_id", "position")
    expected = spark.createDataFrame(
        [
            ("o1", True, 100.0, "email", 1, 3),
            ("o1", True, 100.0, "search", 2, 3),
            ("o1", True, 100.0, "display", 3, 3),
            ("o2", True, 40.0, "search", 1, 1),
            ("~p#2", False, 0.0, "social", 1, 1),
            ("~q#0", False, 0.0, "display", 1, 1),
        ],
        "journey_id string, converted boolean, revenue double, channel string, position int, touches int",
    )
    # t2 led nowhere within the lookback and lies before the window start (03-22): gone.
    # t4 and t5 share o1's instant: a touch at the conversion's time counts as before it.
    assert_df_equality(got, expected, ignore_nullable=True)
    days = {r["channel"]: r["days_before"] for r in rows.filter("journey_id = 'o1'").collect()}
    assert days == {"email": pytest.approx(23 / 24), "search": 0.0, "display": 0.0}
    untouched = journeys.untouched_conversions(conversions, rows, window).select("order_id")
    assert [r[0] for r in untouched.collect()] == ["o4"]

    # One summary row per journey, its steps in time order; unfolded, the same touch rows.
    summaries = journeys.summaries(rows).localCheckpoint()
    paths = {r["journey_id"]: [s["channel"] for s in r["steps"]] for r in summaries.collect()}
    assert paths == {
        "o1": ["email", "search", "display"],
        "o2": ["search"],
        "~p#2": ["social"],
        "~q#0": ["display"],
    }
    assert_df_equality(
        journeys.touch_rows_of(summaries),
        rows.select(*journeys.TOUCH_COLUMNS),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert summaries.agg(*journeys.journey_metrics()).first().asDict() == {
        "journeys": 4,
        "converting": 2,
        "revenue": 140.0,
    }


def test_old_touches_in_the_window_form_a_non_converting_journey(spark):
    window = AnalysisWindow.ending(RUN, 30, 3)
    touches = touch_frame(
        spark,
        [
            ("p", "t1", "2026-03-05T10:00:00", "display"),
            ("p", "t2", "2026-03-06T10:00:00", "social"),
            ("p", "t3", "2026-03-19T10:00:00", "search"),
        ],
    )
    conversions = conversion_frame(spark, [("p", "o1", "2026-03-20T10:00:00", 10)])
    got = {
        (r["journey_id"], r["channel"], r["converted"])
        for r in journeys.journey_touches(touches, conversions, window).collect()
    }
    assert got == {("~p#0", "display", False), ("~p#0", "social", False), ("o1", "search", True)}


def test_conversions_are_paid_orders_with_the_configured_value(spark):
    orders = spark.createDataFrame(
        [
            ("p", "o1", ts("2026-03-01T00:00:00"), 10.0, "paid"),
            ("p", "o2", ts("2026-03-02T00:00:00"), 20.0, "refunded"),
            ("p", "o3", ts("2026-03-03T00:00:00"), 30.0, None),
        ],
        "one_id string, order_id string, order_time timestamp, amount double, status string",
    )
    paid = journeys.conversions(orders)
    assert sorted((r["order_id"], r["revenue"]) for r in paid.collect()) == [
        ("o1", 10.0),
        ("o3", 30.0),
    ]
    margin = journeys.conversions(orders, revenue="amount * 0.25", condition="amount >= 20")
    assert sorted((r["order_id"], r["revenue"]) for r in margin.collect()) == [
        ("o2", 5.0),
        ("o3", 7.5),
    ]


def test_campaign_granularity_labels(spark):
    df = spark.createDataFrame(
        [
            ("p", "t1", ts("2026-03-01T00:00:00"), "search", "s1"),
            ("p", "t2", ts("2026-03-01T00:00:00"), "direct", None),
        ],
        "one_id string, touch_id string, touch_time timestamp, channel string, campaign_id string",
    )
    assert sorted(r["channel"] for r in journeys.touches(df, "campaign").collect()) == [
        "direct",
        "search:s1",
    ]


def test_paths_keep_or_collapse_repeats(spark):
    frame = path_frame(spark, [(["a", "a", "b", "a"], 1, 1)])
    kept = journeys.paths(frame).collect()
    assert [(r["path"], r["journeys"], r["conversions"], r["nulls"]) for r in kept] == [
        (["a", "a", "b", "a"], 2, 1, 1)
    ]
    collapsed = journeys.paths(frame, collapse_repeats=True).collect()
    assert [r["path"] for r in collapsed] == [["a", "b", "a"]]


# ---------------------------------------------------------------- rule-based
def test_rule_based_models_equal_hand_computed_values(spark):
    # One converting journey a > b > c > b worth 100 (days before: 3, 2, 1, 0) and one
    # converting journey c worth 10; a non-converting a > c adds nothing.
    frame = spark.createDataFrame(
        [
            ("j1", "p", True, 100.0, "a", 1, 4, 3.0),
            ("j1", "p", True, 100.0, "b", 2, 4, 2.0),
            ("j1", "p", True, 100.0, "c", 3, 4, 1.0),
            ("j1", "p", True, 100.0, "b", 4, 4, 0.0),
            ("j2", "q", True, 10.0, "c", 1, 1, 0.0),
            ("j3", "r", False, 0.0, "a", 1, 2, None),
            ("j3", "r", False, 0.0, "c", 2, 2, None),
        ],
        "journey_id string, one_id string, converted boolean, revenue double, channel string, "
        "position int, touches int, days_before double",
    )
    settings = rules.RuleSettings(half_life_days=1.0, first=0.4, middle=0.2, last=0.4)
    got = {
        (r["model"], r["channel"]): (r["conversions"], r["revenue"])
        for r in rules.rule_credits(frame, rules.RULE_MODELS, settings).collect()
    }
    decay = [2**-3, 2**-2, 2**-1, 1.0]
    d = sum(decay)
    expected = {
        ("first_touch", "a"): (1.0, 100.0),
        ("first_touch", "b"): (0.0, 0.0),
        ("first_touch", "c"): (1.0, 10.0),
        ("last_touch", "a"): (0.0, 0.0),
        ("last_touch", "b"): (1.0, 100.0),
        ("last_touch", "c"): (1.0, 10.0),
        ("linear", "a"): (0.25, 25.0),
        ("linear", "b"): (0.5, 50.0),
        ("linear", "c"): (1.25, 35.0),
        ("time_decay", "a"): (decay[0] / d, 100 * decay[0] / d),
        ("time_decay", "b"): ((decay[1] + decay[3]) / d, 100 * (decay[1] + decay[3]) / d),
        ("time_decay", "c"): (decay[2] / d + 1, 100 * decay[2] / d + 10),
        ("position_based", "a"): (0.4, 40.0),
        ("position_based", "b"): (0.5, 50.0),
        ("position_based", "c"): (1.1, 20.0),
    }
    assert set(got) == set(expected)
    for key, (conv, rev) in expected.items():
        assert got[key] == pytest.approx((conv, rev), abs=1e-12), key


def test_position_based_two_touches_split_by_the_end_weights(spark):
    frame = path_frame(spark, [(["a", "b"], 1, 0)])
    s = rules.RuleSettings(first=0.3, middle=0.4, last=0.3)
    got = {
        r["channel"]: r["conversions"]
        for r in rules.rule_credits(frame, ("position_based",), s).collect()
    }
    assert got == {"a": pytest.approx(0.5), "b": pytest.approx(0.5)}


# -------------------------------------------------------------------- Markov
LOOPY = [
    (["a", "b", "a"], 4, 2),
    (["a", "a", "a"], 1, 3),
    (["b", "c", "b", "c"], 2, 2),
    (["c"], 1, 5),
    (["d", "a"], 2, 1),
    (["b"], 0, 4),
    (["c", "d", "c", "a", "b"], 3, 1),
]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_equals_an_independent_exact_solution(spark, order):
    frame = path_frame(spark, LOOPY)
    result = markov.solve(markov.transitions(journeys.paths(frame), order).toPandas())
    oracle = markov_oracle.credits([(p, c, n) for p, c, n in LOOPY], order)
    assert result.conversions == pytest.approx(oracle, abs=1e-9)
    counts = markov_oracle.chain([(p, c, n) for p, c, n in LOOPY], order)
    assert result.conversion_probability == pytest.approx(
        float(markov_oracle.conversion_probability(counts)), abs=1e-12
    )


def test_markov_on_a_chain_solved_by_hand(spark):
    # start -> a 3/5, b 2/5; a -> conv, b, null 1/3 each; b -> conv 2/3, null 1/3.
    # p = 3/5 (1/3 + 1/3 * 2/3) + 2/5 * 2/3 = 3/5. Without a: 2/5 * 2/3 = 4/15, removal
    # effect 5/9; without b: 3/5 * 1/3 = 1/5, removal effect 2/3. 3 conversions split 5 : 6.
    rows = [(["a"], 1, 0), (["a", "b"], 1, 0), (["a"], 0, 1), (["b"], 1, 1)]
    frame = path_frame(spark, rows)
    result = markov.solve(markov.transitions(journeys.paths(frame), 1).toPandas())
    assert result.conversion_probability == pytest.approx(3 / 5)
    assert result.removal_effects == pytest.approx({"a": 5 / 9, "b": 2 / 3})
    assert result.conversions == pytest.approx({"a": 15 / 11, "b": 18 / 11})


def test_self_transitions_do_not_change_order_one_results(spark):
    frame = path_frame(spark, LOOPY)
    kept = markov.solve(markov.transitions(journeys.paths(frame), 1).toPandas())
    collapsed = markov.solve(
        markov.transitions(journeys.paths(frame, collapse_repeats=True), 1).toPandas()
    )
    assert kept.conversions == pytest.approx(collapsed.conversions, abs=1e-9)


def test_markov_revenue_uses_the_value_chain(spark):
    # One channel only: all revenue goes to it; two equal channels with different values
    # split revenue by value.
    frame = path_frame(spark, [(["a"], 2, 2, 50.0), (["b"], 2, 2, 150.0)])
    result = markov.solve(markov.transitions(journeys.paths(frame), 1).toPandas())
    assert result.conversions == pytest.approx({"a": 2.0, "b": 2.0})
    assert result.revenue == pytest.approx({"a": 50.0, "b": 150.0})


def test_markov_rejects_orders_beyond_three(spark):
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        markov.transitions(journeys.paths(path_frame(spark, SMALL)), 4)


# ------------------------------------------------------------------- Shapley
def test_shapley_equals_the_closed_form(spark):
    frame = path_frame(spark, SMALL)
    result = shapley.solve(shapley.channel_sets(frame).toPandas())
    closed = {"a": 0.0, "b": 0.0, "c": 0.0}
    for path, conversions, _ in SMALL:
        members = set(path)
        for c in members:
            closed[c] += conversions / len(members)
    assert result.exact and result.conversions == pytest.approx(closed, abs=1e-9)


def test_shapley_rate_worth_by_hand(spark):
    # Sets: {a}: 1 of 2 convert, {b}: 1 of 4, {a, b}: 3 of 4.
    # v(a) = 1/2, v(b) = 1/4, v(ab) = 5/10 = 1/2. phi_a = (1/2 + (1/2 - 1/4)) / 2 = 3/8,
    # phi_b = (1/4 + 0) / 2 = 1/8; normalized to 5 conversions: a 3.75, b 1.25.
    frame = path_frame(spark, [(["a"], 1, 1), (["b"], 1, 3), (["a", "b"], 3, 1)])
    result = shapley.solve(shapley.channel_sets(frame).toPandas(), worth="rate")
    assert result.conversions == pytest.approx({"a": 3.75, "b": 1.25})


def test_sampled_shapley_agrees_with_exact_within_its_interval():
    rng = np.random.default_rng(3)
    channels = [f"c{i:02d}" for i in range(8)]
    rows = []
    for _ in range(60):
        members = sorted(rng.choice(channels, size=rng.integers(1, 5), replace=False).tolist())
        journeys_n = int(rng.integers(1, 50))
        rows.append((members, journeys_n, int(rng.integers(0, journeys_n + 1))))
    sets = pd.DataFrame(rows, columns=["channels", "journeys", "conversions"])
    sets = sets.groupby(sets["channels"].map(tuple)).sum(numeric_only=True).reset_index()
    sets["revenue"] = sets["conversions"] * 10.0
    exact = shapley.solve(sets, max_exact=15)
    sampled = shapley.solve(sets, max_exact=4, samples=3000, seed=5)
    assert exact.exact and not sampled.exact and sampled.samples == 3000
    assert sum(sampled.conversions.values()) == pytest.approx(sets["conversions"].sum(), abs=1e-9)
    for c in channels:
        assert sampled.low[c] <= exact.conversions[c] <= sampled.high[c], c
        assert sampled.high[c] - sampled.low[c] < 0.1 * sets["conversions"].sum()


# ---------------------------------------------------------------------- laws
LAW_CASES = {
    "small": SMALL,
    "loopy": LOOPY,
    # a and b appear only together and in mirrored positions: symmetric.
    "symmetric": [
        (["a", "b"], 3, 2),
        (["b", "a"], 3, 2),
        (["c"], 2, 2),
        (["c", "a", "b", "c"], 1, 0),
        (["c", "b", "a", "c"], 1, 0),
    ],
}


@pytest.mark.parametrize("case", sorted(LAW_CASES))
def test_credits_sum_to_total_conversions(spark, case):
    rows = LAW_CASES[case]
    total = sum(c for p, c, _ in rows)
    for model, credit in all_credits(spark, rows).items():
        assert sum(credit.values()) == pytest.approx(total, abs=1e-9), model


def test_symmetric_channels_get_equal_credit(spark):
    for model, credit in all_credits(spark, LAW_CASES["symmetric"]).items():
        if model in (
            "first_touch",
            "last_touch",
            "linear",
            "position_based",
            "markov",
            "shapley",
            "time_decay",
        ):
            assert credit["a"] == pytest.approx(credit["b"], abs=1e-9), model


def test_a_channel_in_no_converting_path_gets_nothing(spark):
    # z only ends journeys that do not convert, so in the Markov chain too it leads to null.
    rows = [(["a", "b"], 2, 1), (["b"], 1, 2), (["a", "z"], 0, 3), (["z"], 0, 2)]
    for model, credit in all_credits(spark, rows).items():
        assert credit.get("z", 0.0) == pytest.approx(0.0, abs=1e-12), model


# ----------------------------------------------------- ChannelAttribution oracle
def _random_paths(seed: int, n: int = 4000) -> list[tuple[list[str], int, int]]:
    rng = np.random.default_rng(seed)
    channels = ["search", "social", "display", "email", "direct"]
    lift = {"search": 0.12, "social": 0.05, "display": 0.01, "email": 0.08, "direct": 0.10}
    mix = [0.25, 0.25, 0.3, 0.1, 0.1]
    counts: dict = {}
    for _ in range(n):
        path = tuple(rng.choice(channels, size=int(rng.integers(1, 6)), p=mix))
        rate = 1 - math.prod(1 - lift[c] for c in path)
        conv, null = counts.get(path, (0, 0))
        converted = rng.random() < rate
        counts[path] = (conv + converted, null + (not converted))
    return [([str(x) for x in p], int(c), int(m)) for p, (c, m) in counts.items()]


def test_markov_agrees_with_channelattribution_within_noise(spark):
    ca = pytest.importorskip("ChannelAttribution")
    rows = _random_paths(7)
    frame = path_frame(spark, rows)
    ours = markov.solve(markov.transitions(journeys.paths(frame), 1).toPandas()).conversions
    data = pd.DataFrame(
        {
            "path": [" > ".join(p) for p, _, _ in rows],
            "conv": [c for _, c, _ in rows],
            "null": [m for _, _, m in rows],
        }
    )
    theirs = ca.markov_model(
        data, "path", "conv", var_null="null", order=1, verbose=0, flg_pro=False
    )
    theirs = dict(zip(theirs["channel_name"], theirs["total_conversions"]))
    total = sum(c for _, c, _ in rows)
    assert set(theirs) == set(ours)
    for channel, credit in ours.items():
        if credit >= 0.01 * total:
            # ChannelAttribution simulates 1e5 paths: its shares carry about 1% noise.
            assert theirs[channel] == pytest.approx(credit, rel=0.03, abs=0.005 * total), channel


def test_all_orders_run_on_every_shape(spark):
    for order, case in itertools.product([1, 2, 3], sorted(LAW_CASES)):
        rows = LAW_CASES[case]
        result = markov.solve(
            markov.transitions(journeys.paths(path_frame(spark, rows)), order).toPandas()
        )
        assert sum(result.conversions.values()) == pytest.approx(
            sum(c for _, c, _ in rows), abs=1e-9
        )
        assert all(v >= 0 for v in result.conversions.values())


# -------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "override, named",
    [
        ("attribution.position_based.first=0.5", "first \\+ middle \\+ last must be 1"),
        ("attribution.markov.order=4", "attribution.markov.order"),
        ("attribution.models=[linear,last_click]", "last_click"),
        ("attribution.granularity=ad", "attribution.granularity"),
    ],
)
def test_bad_attribution_settings_name_the_key(override, named):
    from precis.config import load_config
    from precis.errors import ConfigError

    with pytest.raises(ConfigError, match=named):
        load_config(overrides=[override])


# ------------------------------------------------------------- build, without the job
def test_build_on_a_tiny_world(spark):
    """Two converting journeys, one that led nowhere, a conversion without touches and
    spend for three channels: the whole table, by hand."""
    ids = [("member_id", f"m{p}", f"p{p}") for p in (1, 2, 3)]
    touchpoints = [
        ("t1", ts("2026-03-20T10:00:00"), "member_id", "m1", "search", None),
        ("t2", ts("2026-03-21T10:00:00"), "member_id", "m1", "email", None),
        ("t3", ts("2026-03-25T10:00:00"), "member_id", "m2", "social", None),
        ("t4", ts("2026-03-30T10:00:00"), "member_id", "m3", "display", None),
        ("t5", ts("2026-03-30T10:00:00"), "member_id", "nobody", "search", None),
    ]
    orders = [
        ("o1", ts("2026-03-22T10:00:00"), "member_id", "m1", 100.0, "paid"),
        ("o2", ts("2026-03-26T10:00:00"), "member_id", "m2", 40.0, "paid"),
        ("o3", ts("2026-03-28T10:00:00"), "member_id", "m2", 20.0, None),  # no touch since o2
        ("o4", ts("2026-03-29T10:00:00"), "member_id", "m3", 5.0, "refunded"),
    ]
    spend = [
        (dt.date(2026, 3, 25), "search", "s1", 30.0),
        (dt.date(2026, 3, 26), "search", "s2", 20.0),
        (dt.date(2026, 3, 25), "email", "e1", 0.0),  # unpaid: no cost or ROI
        (dt.date(2026, 3, 26), "social", "f1", 10.0),
        (dt.date(2026, 3, 1), "display", "d1", 99.0),  # before the window
    ]
    inputs = AttributionInputs(
        touchpoints=spark.createDataFrame(
            touchpoints,
            "touch_id string, touch_time timestamp, id_type string, id_key string, "
            "channel string, campaign_id string",
        ),
        orders=spark.createDataFrame(
            orders,
            "order_id string, order_time timestamp, id_type string, id_key string, "
            "amount double, status string",
        ),
        identity_map=spark.createDataFrame(ids, "id_type string, id_key string, one_id string"),
        campaign_spend=spark.createDataFrame(
            spend, "spend_date date, channel string, campaign_id string, spend double"
        ),
    )
    settings = AttributionConfig(
        window_days=10, lookback_days=5, models=("first_touch", "last_touch", "linear")
    )
    out = build(inputs, settings, run_date=RUN, run_id="r1")

    assert out.counts == {
        "journeys": 3,
        "converting_journeys": 2,
        "attributed_revenue": 140.0,
        "untouched_conversions": 1,
        "untouched_revenue": 20.0,
    }
    start, end = dt.date(2026, 3, 22), RUN
    spent = {"display": None, "email": 0.0, "search": 50.0, "social": 10.0}
    credited = {  # model: {channel: (conversions, revenue, cost per conversion, roi)}
        "first_touch": {
            "search": (1.0, 100.0, 50.0, 1.0),
            "social": (1.0, 40.0, 10.0, 3.0),
        },
        "last_touch": {
            "email": (1.0, 100.0, None, None),
            "search": (0.0, 0.0, None, -1.0),
            "social": (1.0, 40.0, 10.0, 3.0),
        },
        "linear": {
            "email": (0.5, 50.0, None, None),
            "search": (0.5, 50.0, 100.0, 0.0),
            "social": (1.0, 40.0, 10.0, 3.0),
        },
    }
    expected = []
    for model, channels in credited.items():
        for channel, paid in spent.items():
            conv, rev, cost, roi = channels.get(channel, (0.0, 0.0, None, None))
            expected.append(
                (RUN, model, channel, conv, rev, conv / 2, rev / 140, None, None, paid, cost, roi)
                + (start, end, 5, "channel", "r1")
            )
    assert_approx_df_equality(
        out.table,
        spark.createDataFrame(expected, report.SCHEMA),
        precision=1e-12,
        ignore_nullable=True,
        ignore_row_order=True,
    )
    # The report's frame holds the same rows (null numbers as NaN).
    assert len(out.credits) == len(expected)
    assert list(out.credits.columns) == list(report.COLUMNS)
    assert out.credits["spend"].isna().sum() == 3 and out.channels == 4
