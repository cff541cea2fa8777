"""share: noise calibration, contribution bounds, suppression, the privacy budget, the job."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pydantic import ValidationError
from pyspark.sql import functions as F

from precis import share
from precis import tables as T
from precis.attribution import rules
from precis.config import ShareConfig, load_config
from precis.errors import ConfigError
from precis.jobs import share as share_job
from precis.share import budget, cells, release
from precis.share.noise import Calibration, add_noise, gaussian_sigma, laplace_scale
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
RUN = dt.date(2026, 3, 31)
ts = dt.datetime.fromisoformat


# -------------------------------------------------------------------- noise
@pytest.mark.parametrize(
    ("mechanism", "sensitivity", "epsilon", "delta", "variance", "within_one_scale"),
    [
        # Laplace(b = 3 / 0.5): variance 2 b^2; P(|x| < b) = 1 - 1/e.
        ("laplace", 3.0, 0.5, None, 2 * (3.0 / 0.5) ** 2, 1 - math.exp(-1)),
        # Gaussian: sigma = s sqrt(2 ln(1.25 / delta)) / epsilon; P(|x| < sigma) = 0.6827.
        (
            "gaussian",
            2.0,
            0.8,
            1e-5,
            (2.0 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.8) ** 2,
            math.erf(1 / math.sqrt(2)),
        ),
    ],
)
def test_noise_variance_matches_the_calibration(
    spark, mechanism, sensitivity, epsilon, delta, variance, within_one_scale
):
    calibration = Calibration.of(mechanism, sensitivity, sensitivity, epsilon, delta)
    # 200 cells x 200 seeds in one action: F.rand seeds partition p with seed + p, so the
    # 200 partitions are 200 independently seeded streams of 200 cells each.
    frame = spark.range(0, 40_000, 1, 200).select((F.col("id") % 200 * 7).alias("true"))
    noisy = add_noise(frame, "noise", calibration, seed=20260331).select(
        (F.col("true") + F.col("noise")).alias("noisy"), "true"
    )
    error = F.col("noisy") - F.col("true")
    row = noisy.agg(
        F.var_pop(error).alias("var"),
        F.avg(error).alias("mean"),
        F.avg((F.abs(error) < calibration.scale).cast("double")).alias("inside"),
        F.count_distinct(error).alias("distinct"),
    ).first()
    assert abs(row["var"] / variance - 1) < 0.10
    assert abs(row["mean"]) < 0.05 * math.sqrt(variance)
    assert abs(row["inside"] - within_one_scale) < 0.02  # the shape, not only the spread
    assert row["distinct"] > 39_000  # streams do not replay each other


def test_scales_follow_the_textbook_formulas():
    assert laplace_scale(6, 0.5) == 12.0
    assert gaussian_sigma(1, 1, 1e-5) == pytest.approx(math.sqrt(2 * math.log(125_000)))
    assert Calibration.of("laplace", 4, 2, 1.0, None).sd == pytest.approx(4 * math.sqrt(2))
    assert Calibration.of("gaussian", 4, 2, 1.0, 1e-5).sensitivity == 2  # L2 for Gaussian
    with pytest.raises(ValueError, match="delta in"):
        gaussian_sigma(1, 1, 0.0)


def test_counts_are_rounded_clamped_and_thresholded(spark):
    domain = spark.createDataFrame([(f"c{i}",) for i in range(60)], "segment string")
    people = [("big", 1000), ("mid", 15)]
    bounded = spark.createDataFrame(
        [(f"{n}{i}", "c0" if n == "big" else "c1") for n, size in people for i in range(size)],
        "one_id string, segment string",
    )
    calibration = Calibration.of("laplace", 1.0, 1.0, 0.5, None)  # b = 2
    out = release.noisy_counts(bounded, domain, ["segment"], calibration, seed=3, min_count=10)
    assert dict(out.dtypes) == {"segment": "string", "people": "bigint", "released": "boolean"}
    rows = {r["segment"]: r for r in out.collect()}
    assert sorted(rows) == sorted(f"c{i}" for i in range(60))  # empty cells too
    assert abs(rows["c0"]["people"] - 1000) <= 20
    assert all(r["people"] >= 0 for r in rows.values())
    # 58 empty cells with noise of scale 2: about 60% draw below 0.5 and are clamped to 0.
    assert sum(r["people"] == 0 for r in rows.values()) > 20
    assert all(r["released"] == (r["people"] >= 10) for r in rows.values())


# ------------------------------------------------------------ contribution bounds
def test_a_person_counts_in_at_most_max_cells(spark):
    rows = [("a", f"s{i}") for i in range(1, 6)] + [("b", "s1"), ("b", "s1"), ("b", "s2")]
    frame = spark.createDataFrame(rows, "one_id string, segment string")
    out = cells.bound_contributions(frame, ["segment"], max_cells=2)
    # The rule: each person's cells in the order of xxhash64(one_id, key), first two kept.
    hashes = (
        frame.distinct()
        .select("one_id", "segment", F.xxhash64("one_id", "segment").alias("h"))
        .collect()
    )
    kept_a = sorted((r["h"], r["segment"]) for r in hashes if r["one_id"] == "a")[:2]
    expected = spark.createDataFrame(
        sorted([("a", s) for _, s in kept_a] + [("b", "s1"), ("b", "s2")]),
        "one_id string, segment string",
    )
    assert_df_equality(out, expected, ignore_row_order=True)
    # Person-local: another person's cells do not change which of a's are kept.
    more = frame.unionByName(spark.createDataFrame([("c", "s3")], frame.schema))
    kept = cells.bound_contributions(more, ["segment"], 2).filter(F.col("one_id") == "a")
    assert_df_equality(kept, expected.filter(F.col("one_id") == "a"), ignore_row_order=True)


def test_credit_is_per_person_and_clipped(spark):
    journey_rows = spark.createDataFrame(
        [
            ("o1", "p1", True, 3000.0, "search", 1, 2, 2.0),
            ("o1", "p1", True, 3000.0, "email", 2, 2, 1.0),
            ("o2", "p1", True, 1000.0, "email", 1, 1, 0.5),
            ("o3", "p2", True, 100.0, "search", 1, 1, 0.1),
            ("~p3#0", "p3", False, 0.0, "display", 1, 1, None),
        ],
        "journey_id string, one_id string, converted boolean, revenue double, channel string, "
        "position int, touches int, days_before double",
    )
    credits = cells.person_credits(journey_rows, "linear", rules.RuleSettings())
    schema = "one_id string, channel string, conversions double, revenue double"
    assert_approx_df_equality(
        credits,
        spark.createDataFrame(
            [
                ("p1", "search", 0.5, 1500.0),
                ("p1", "email", 1.5, 2500.0),
                ("p2", "search", 1.0, 100.0),
            ],
            schema,
        ),
        1e-9,
        ignore_row_order=True,
    )
    # p1: 2 conversions and 4000 of revenue become 1 and 2000, split as before.
    assert_approx_df_equality(
        cells.clip_per_person(credits, revenue_clip=2000.0),
        spark.createDataFrame(
            [
                ("p1", "search", 0.25, 750.0),
                ("p1", "email", 0.75, 1250.0),
                ("p2", "search", 1.0, 100.0),
            ],
            schema,
        ),
        1e-9,
        ignore_row_order=True,
    )


def test_tag_values_become_public_cells(spark):
    assert cells.bin_labels([0, 100, 500]) == ["<0", "[0,100)", "[100,500)", ">=500"]
    assert cells.bin_labels([0.5, 2]) == ["<0.5", "[0.5,2)", ">=2"]
    tags = ShareConfig(
        tags={"spend": {"bins": [0, 100]}, "stage": {"values": ["new", "active"]}}
    ).tags
    assert cells.tag_domain(tags) == [
        ("spend", "<0"),
        ("spend", "[0,100)"),
        ("spend", ">=100"),
        ("stage", "new"),
        ("stage", "active"),
    ]
    profile_tags = spark.createDataFrame(
        [
            ("p1", "spend", "99.5"),
            ("p2", "spend", "100"),
            ("p3", "spend", "-1"),
            ("p4", "spend", "n/a"),  # no number: no bin
            ("p1", "stage", "new"),
            ("p2", "city", "Paris"),  # not shared
        ],
        "one_id string, tag string, value string",
    )
    assert_df_equality(
        cells.tag_cells(profile_tags, tags),
        spark.createDataFrame(
            [
                ("p1", "spend", "[0,100)"),
                ("p2", "spend", ">=100"),
                ("p3", "spend", "<0"),
                ("p1", "stage", "new"),
            ],
            "one_id string, tag string, value string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_keys_are_checked_against_the_tag_definitions():
    settings = ShareConfig(tags={"city": {"bins": [1, 2]}})
    with pytest.raises(ConfigError, match="bins need a numeric tag"):
        share.check_keys(settings, ["champions"], {"city": "string"})
    with pytest.raises(ConfigError, match="share.tags.city: no such tag"):
        share.check_keys(settings, ["champions"], {"spend": "double"})
    with pytest.raises(ConfigError, match="defines no segment"):
        share.check_keys(settings, [], {"city": "long"})
    share.check_keys(settings, ["champions"], {"city": "long"})


# -------------------------------------------------------------------- budget
def _recorded(found: budget.Plan, release_id: str) -> list[dict]:
    names = LEDGER_COLUMNS
    at = dt.datetime(2026, 4, 1)
    return [dict(zip(names, r, strict=True)) for r in budget.ledger_rows(found, release_id, at)]


LEDGER_COLUMNS = [c.split()[0] for c in budget.LEDGER_SCHEMA.split(", ")]


def test_the_budget_allows_two_releases_and_refuses_the_third():
    settings = ShareConfig(epsilon=4.0, budget_epsilon=10.0)
    first = budget.plan([], settings, RUN)
    assert first.releases == ("segments", "tags", "attribution")
    assert [s.epsilon for s in first.spends] == pytest.approx([4 / 3] * 3)
    assert {s.dataset for s in first.spends} == {t.ref for t in T.SHARED.values()}
    ledger = _recorded(first, "r1")
    second = budget.plan(ledger, settings, RUN - dt.timedelta(days=1))
    assert second.epsilon == pytest.approx(4.0)
    assert second.metrics()["epsilon_remaining"] == pytest.approx(2.0)
    ledger += _recorded(second, "r2")
    with pytest.raises(share.PrivacyBudgetError) as failed:
        budget.plan(ledger, settings, RUN - dt.timedelta(days=2))
    message = str(failed.value)
    for part in (
        "nothing released",
        "asks epsilon 4",
        "2 earlier release(s)",
        "spent epsilon 8 of share.budget_epsilon 10",
        "--set share.budget_epsilon=",
    ):
        assert part in message


def test_a_rerun_of_a_released_date_spends_nothing_unless_forced():
    settings = ShareConfig(epsilon=4.0, budget_epsilon=10.0)
    ledger = _recorded(budget.plan([], settings, RUN), "r1")
    again = budget.plan(ledger, settings, RUN)
    assert (again.spends, again.reused) == ((), ("segments", "tags", "attribution"))
    assert again.metrics()["epsilon_spent"] == 0.0
    lowered = settings.model_copy(update={"budget_epsilon": 1.0})  # spent 4 of 1 now
    assert budget.plan(ledger, lowered, RUN).reused == again.reused  # reuse is free
    forced = budget.plan(ledger, settings.model_copy(update={"force": True}), RUN)
    assert forced.epsilon == pytest.approx(4.0)
    # A table switched on later is released (and paid for) alone.
    only_segments = ShareConfig(epsilon=4.0, releases={"tags": False, "attribution": False})
    partial = budget.plan(_recorded(budget.plan([], only_segments, RUN), "r1"), settings, RUN)
    assert partial.releases == ("tags", "attribution")
    assert partial.reused == ("segments",)


def test_gaussian_needs_delta_and_spends_it():
    with pytest.raises(ValidationError, match="share.delta must be in"):
        ShareConfig(mechanism="gaussian")
    with pytest.raises(ValidationError, match="needs at most 1"):
        ShareConfig(mechanism="gaussian", delta=1e-6, epsilon=6.0)
    settings = ShareConfig(mechanism="gaussian", delta=3e-6, budget_delta=5e-6)
    first = budget.plan([], settings, RUN)
    assert first.delta == pytest.approx(3e-6)
    with pytest.raises(share.PrivacyBudgetError, match="delta 3e-06 of share.budget_delta 5e-06"):
        budget.plan(_recorded(first, "r1"), settings, RUN - dt.timedelta(days=1))


# ----------------------------------------------------------------- end to end
def _world(spark, lake: Lakehouse) -> None:
    """1000 people in segments and tags; 650 buyers whose touches attribution credits."""
    at = dt.datetime(2026, 3, 31, 12)
    members = [("champions", i) for i in range(400)] + [
        ("new_customers", i) for i in range(300, 600)
    ]
    members += [("cart_abandoners", i) for i in range(900, 903)] + [
        ("retired", i) for i in range(50)
    ]
    lake.write_snapshot(
        spark.createDataFrame(
            [(s, f"p{i}", "v1", at) for s, i in members],
            "segment string, one_id string, segment_version string, computed_at timestamp",
        ),
        T.SEGMENTS,
        RUN,
    )
    tags = [(i, "lifecycle_stage", "active" if i < 500 else "churned") for i in range(990)]
    tags += [(i, "lifecycle_stage", "ghost") for i in range(990, 1000)]  # outside the domain
    tags += [(i, "high_value", "true" if i < 200 else "false") for i in range(1000)]
    tags += [(i, "spend_365d", str(i * 3.0)) for i in range(1000)]
    lake.write_snapshot(
        spark.createDataFrame(
            [(f"p{i}", t, v, "string", "r1", at) for i, t, v in tags],
            "one_id string, tag string, value string, type string, rule_version string, "
            "computed_at timestamp",
        ),
        T.PROFILE_TAGS,
        RUN,
    )
    buyers = [(i, "search" if i < 400 else "email" if i < 600 else "direct") for i in range(650)]
    touches = [(f"t{i}", ts("2026-03-10 10:00"), f"m{i}", c) for i, c in buyers]
    orders = [(f"o{i}", ts("2026-03-11 10:00"), f"m{i}", 100.0) for i, _ in buyers]
    # p0 buys again, for 5000: two conversions and 5100 become 1 and revenue_clip (2000).
    touches.append(("t-again", ts("2026-03-12 09:00"), "m0", "search"))
    orders.append(("o-again", ts("2026-03-12 10:00"), "m0", 5000.0))
    lake.overwrite(
        spark.createDataFrame(
            [(t, at_, "member_id", k, c, None) for t, at_, k, c in touches],
            "touch_id string, touch_time timestamp, id_type string, id_key string, "
            "channel string, campaign_id string",
        ),
        T.TOUCHPOINTS,
    )
    lake.overwrite(
        spark.createDataFrame(
            [(o, at_, "member_id", k, a, "paid") for o, at_, k, a in orders],
            "order_id string, order_time timestamp, id_type string, id_key string, "
            "amount double, status string",
        ),
        T.ORDERS,
    )
    lake.overwrite(
        spark.createDataFrame(
            [("member_id", f"m{i}", f"p{i}") for i in range(1000)],
            "id_type string, id_key string, one_id string",
        ),
        T.IDENTITY_MAP,
    )
    spend = [("2026-03-01", "search", 1000.0), ("2026-03-01", "email", 500.0)]
    spend += [("2026-03-01", "display", 300.0), ("2025-01-01", "tv", 999.0)]  # tv: before
    lake.overwrite(
        spark.createDataFrame(
            [(dt.date.fromisoformat(d), c, None, s) for d, c, s in spend],
            "spend_date date, channel string, campaign_id string, spend double",
        ),
        T.CAMPAIGN_SPEND,
    )


def _config(root: Path, *extra: str):
    settings = [
        f"storage.root={root}",
        "mlflow.enabled=false",
        # Large epsilon: noise small enough to compare with the truth (b = 0.5 to 400).
        "share.epsilon=30",
        "share.budget_epsilon=70",
        "share.seed=7",
        *extra,
    ]
    return load_config(PROJECT / "conf" / "base.yaml", settings, run_date=RUN.isoformat())


def _released(lake: Lakehouse, name: str) -> dict:
    table = lake.read(T.SHARED[name])
    assert tuple(table.columns) == share.COLUMNS[name]
    return {
        tuple(r[k] for k in r.asDict() if k in ("segment", "tag", "value", "channel")): r
        for r in table.collect()
    }


def test_the_share_job_releases_noisy_tables_within_the_budget(spark, tmp_path):
    cfg = _config(tmp_path / "lakehouse")
    lake = Lakehouse.from_config(spark, cfg)
    _world(spark, lake)

    result = share_job.run(spark, cfg)
    assert result["released"] == ["segments", "tags", "attribution"]
    assert result["metrics"]["epsilon_spent"] == pytest.approx(30.0)
    assert result["metrics"]["epsilon_remaining"] == pytest.approx(40.0)
    assert not any(k.startswith(("people", "revenue")) for k in result["metrics"])

    segments = _released(lake, "segments")
    types = dict(lake.read(T.SHARED["attribution"]).dtypes)
    assert (types["conversions"], types["revenue"]) == ("bigint", "double")
    # Only the configured segments, only those above min_count: 3 abandoners, 2 empty
    # segments and the unconfigured 'retired' are not there.
    assert sorted(segments) == [("champions",), ("new_customers",)]
    assert abs(segments[("champions",)]["people"] - 400) <= 5
    assert abs(segments[("new_customers",)]["people"] - 300) <= 5
    assert segments[("champions",)]["epsilon"] == pytest.approx(10.0)
    assert segments[("champions",)]["noise_sd"] == pytest.approx(0.5 * math.sqrt(2))  # 5 cells/10
    assert result["cells"]["segments"] == {"released": 2, "suppressed": 3}

    tags = _released(lake, "tags")
    truth = {
        ("lifecycle_stage", "active"): 500,
        ("lifecycle_stage", "churned"): 490,
        ("high_value", "true"): 200,
        ("high_value", "false"): 800,
        ("spend_365d", "[0,100)"): 34,
        ("spend_365d", "[100,500)"): 133,
        ("spend_365d", "[500,1000)"): 167,
        ("spend_365d", "[1000,2000)"): 333,
        ("spend_365d", "[2000,5000)"): 333,
    }
    assert sorted(tags) == sorted(truth)
    assert all(abs(tags[k]["people"] - n) <= 6 for k, n in truth.items())

    channels = _released(lake, "attribution")
    assert sorted(channels) == [("email",), ("search",)]  # display ~0; direct, tv: no spend
    search, email = channels[("search",)], channels[("email",)]
    assert abs(search["conversions"] - 400) <= 2 and abs(email["conversions"] - 200) <= 2
    # p0's 5100 clipped to 2000; revenue noise of scale 2000 / 5.
    assert abs(search["revenue"] - (399 * 100 + 2000)) <= 4000
    assert abs(email["revenue"] - 20_000) <= 4000
    assert search["spend"] == 1000.0
    assert search["roi"] == pytest.approx((search["revenue"] - 1000.0) / 1000.0)
    assert search["model"] == "last_touch"

    for name in T.SHARED:  # no released cell below the minimum count
        value = "conversions" if name == "attribution" else "people"
        assert lake.read(T.SHARED[name]).filter(F.col(value) < 10).count() == 0
    ledger = lake.read(T.PRIVACY_BUDGET).collect()
    assert sorted((r["dataset"], r["epsilon"], r["delta"], r["mechanism"]) for r in ledger) == [
        (t.ref, 10.0, 0.0, "laplace") for t in sorted(T.SHARED.values(), key=lambda t: t.ref)
    ]
    exported = tmp_path / "lakehouse" / "exports" / "share" / f"run_date={RUN}" / "segments"
    assert list(exported.glob("*.csv"))

    # A rerun of the date reuses the release and spends nothing.
    first_id = segments[("champions",)]["release_id"]
    again = share_job.run(spark, cfg)
    assert (again["released"], again["metrics"]["epsilon_spent"]) == ([], 0.0)
    assert lake.read(T.PRIVACY_BUDGET).count() == 3

    # Forced with epsilon 50 (30 + 50 > 70): an error naming the budget, nothing written.
    over = _config(tmp_path / "lakehouse", "share.force=true", "share.epsilon=50")
    with pytest.raises(
        share.PrivacyBudgetError, match="spent epsilon 30 of share.budget_epsilon 70"
    ):
        share_job.run(spark, over)
    assert lake.read(T.PRIVACY_BUDGET).count() == 3
    assert {r["release_id"] for r in lake.read(T.SHARED["tags"]).collect()} == {first_id}
