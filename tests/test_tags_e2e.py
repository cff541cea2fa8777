"""tags on the generated retailer after identity and lifecycle: every default tag
against an independent pandas computation, rerun without changes, consent, privacy,
and explain from a plain identifier."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from conftest import assert_no_plain, read_landed
from precis import tables as T
from precis.errors import ConfigError
from precis.jobs import identity, lifecycle
from precis.jobs import tags as tags_job
from tags_oracle import compare

pytestmark = pytest.mark.slow


def test_tags_end_to_end(spark, world, plain_identifiers, capsys):
    cfg, lake, _ = world
    if not lake.exists(T.IDENTITY_MAP):  # other end-to-end tests may have run it
        identity.run(spark, cfg)
    if not lake.exists(T.CUSTOMER_VALUE):
        lifecycle.run(spark, cfg)
    first = tags_job.run(spark, cfg)
    second = tags_job.run(spark, cfg)

    # Every default tag (the k-means cluster aside) agrees with the pandas computation.
    report = compare(lake, cfg.run_date)
    assert {t: r for t, r in report.items() if r["missing"] or r["extra"] or r["different"]} == {}
    assert report["order_count_365d"]["people"] > 50 and report["consent_marketing"]["people"] > 50
    clusters = lake.read(T.PROFILE_TAGS).filter(F.col("tag") == "rfm_cluster")
    assert clusters.count() == report["rfm_segment"]["people"]  # every buyer is clustered
    assert first["models"]["rfm_cluster"]["k"] in range(
        cfg.tags.kmeans.k_min, cfg.tags.kmeans.k_max + 1
    )

    # A rerun of the date: the same changes (against the snapshot before the date), the
    # same snapshot in place of the first, nothing doubled.
    assert second["changes"] == first["changes"] and second["written"] == first["written"]
    assert lake.snapshot_dates(T.PROFILE_TAGS) == [cfg.run_date]
    assert lake.read(T.TAG_CHANGES).count() == sum(first["changes"].values())
    stats = {r["tag"]: r for r in lake.read(T.TAG_STATS).collect()}
    assert stats["spend_365d"]["covered"] == report["spend_365d"]["people"]

    # Nobody without explicit consent is in a segment or an export.
    consent = lake.read(T.PROFILES).select("one_id", "consent_marketing")
    members = lake.read(T.SEGMENTS)
    assert (
        members.join(consent.filter(F.col("consent_marketing")), "one_id", "left_anti").count() == 0
    )
    exported = spark.read.parquet(f"{lake.root}/exports/segments/run_date={cfg.run_date}")
    assert exported.count() == members.count() == sum(second["segments"].values())
    for table in ("profile_tags", "profiles", "segments", "tag_changes", "tag_stats"):
        assert_no_plain(lake, "gold", table, plain_identifiers)

    # Explain from a plain email: found through its keyed hash, never printed.
    # Plain emails as landed (bronze holds only their keyed hashes).
    emails = []
    for dataset in ("customers", "id_observations"):
        landed = read_landed(spark, cfg, dataset)
        emails += [
            r[0]
            for r in landed.filter(F.col("id_type") == "email")
            .select("id_value")
            .limit(20)
            .collect()
        ]
    capsys.readouterr()
    for email in emails:  # the first that is a valid, linked address (placeholders are not)
        explain = cfg.tags.explain.model_copy(update={"id": f"email:{email}", "tag": "spend_365d"})
        try:
            out = tags_job.run(
                spark,
                cfg.model_copy(update={"tags": cfg.tags.model_copy(update={"explain": explain})}),
            )
            break
        except ConfigError:
            continue
    else:
        pytest.fail("no email of the world resolves to a person")
    printed = capsys.readouterr().out
    assert (
        not any(e.strip().lower() in printed.lower() for e in emails if e and e.strip())
        and "email:<keyed hash" in printed
    )
    tall = {
        r["tag"]: r["value"]
        for r in lake.read(T.PROFILE_TAGS).filter(F.col("one_id") == out["one_id"]).collect()
    }
    assert out["stored"] == tall.get("spend_365d")
