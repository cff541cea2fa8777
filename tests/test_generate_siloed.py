"""The siloed world family: each source keeps its own login, so a person's clusters of
strong identifiers are joined only through weak ones; couples share tablets and store
kiosks are seen with many members (docs/generate.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.config import GenerateConfig, load_config
from precis.generate import build
from precis.generate.settings import PRESETS
from precis.jobs import generate as generate_job

END = dt.date(2026, 3, 31)
PROJECT = Path(__file__).resolve().parents[1]
#: Identifier types of a person's member cluster (the CRM's) and WeChat cluster.
MEMBER_CLUSTER = ("member_id", "email", "phone")
WECHAT_CLUSTER = ("union_id",)

# Small, with couples and kiosks raised (explicit settings over the preset) so both
# show up among a few hundred people.
SILOED = GenerateConfig(
    family="siloed",
    people=300,
    items=120,
    days=120,
    end_date=END,
    partitions=2,
    family_share=0.3,
    kiosk_share=0.2,
)


@pytest.fixture(scope="module")
def world(spark):
    """id_observations with the true person of each record, and the truth tables used."""
    with generate_job.generator_conf(spark):
        gen = build(spark, SILOED, END, persist=lambda df, name: df.localCheckpoint())
        truth = {t: gen.truth[t].localCheckpoint() for t in ("record_person", "traps", "people")}
        owners = (
            gen.landing["id_observations"]
            .join(
                truth["record_person"]
                .filter(F.col("dataset") == "id_observations")
                .select("source", "record_id", "person_id"),
                on=["source", "record_id"],
                how="left",
            )
            .localCheckpoint()
        )
    return owners, truth


# ------------------------------------------------------------------------ the preset
def test_the_family_fills_the_knobs_left_unset_and_explicit_settings_win():
    siloed = GenerateConfig(family="siloed")
    assert {k: getattr(siloed, k) for k in PRESETS["siloed"]} == PRESETS["siloed"]
    assert {k: getattr(GenerateConfig(), k) for k in PRESETS["retail"]} == PRESETS["retail"]
    assert (SILOED.kiosk_share, SILOED.household_size, SILOED.signin_contacts) == (0.2, 2, "one")
    # Through the config layers: base.yaml leaves the knobs null, --set wins over the family.
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        ["generate.family=siloed", "generate.hotline_rate=0.5", "generate.signin_contacts=all"],
    )
    assert (cfg.generate.hotline_rate, cfg.generate.signin_contacts) == (0.5, "all")
    assert cfg.generate.wechat_phone_share == PRESETS["siloed"]["wechat_phone_share"]
    retail = load_config(PROJECT / "conf" / "base.yaml", ["generate.kiosk_share=0.1"]).generate
    assert (retail.family, retail.kiosk_share, retail.variant_rate) == ("retail", 0.1, 0.4)


# ----------------------------------------------------------------------- the records
def _clusters(owners: DataFrame) -> DataFrame:
    """Per id_observations record: its person and which strong identifiers it carries."""
    return owners.groupBy("source", "record_id", "person_id").agg(
        F.sum(F.col("id_type").isin(*MEMBER_CLUSTER).cast("int")).alias("contacts"),
        F.max(F.col("id_type").isin(*MEMBER_CLUSTER)).alias("member_cluster"),
        F.max(F.col("id_type").isin(*WECHAT_CLUSTER)).alias("wechat_cluster"),
        F.max(F.col("id_type") == "member_id").alias("member_id"),
        F.max(F.col("id_type") == "open_id").alias("open_id"),
        F.collect_set("id_type").alias("types"),
    )


def test_signins_carry_the_one_account_of_their_source(world):
    owners, _ = world
    signins = _clusters(owners.filter(F.col("record_id").rlike("^SI[WAX]"))).localCheckpoint()
    assert signins.count() > 0
    assert signins.filter(F.col("contacts") > 1).count() == 0
    # The mini program's authorization is the WeChat account alone.
    wechat = signins.filter(F.col("source") == "wechat").select(
        F.array_sort("types").alias("types")
    )
    assert {tuple(r["types"]) for r in wechat.distinct().collect()} == {("open_id", "union_id")}
    # The app's "log in with WeChat": device and open id, no contact.
    assert signins.filter((F.col("source") == "app") & F.col("open_id")).count() > 0
    # No record anywhere is logged in with both the member id and WeChat.
    both = _clusters(owners).filter(F.col("member_id") & F.col("open_id"))
    assert both.count() == 0


def test_strong_clusters_are_joined_only_through_weak_identifiers(world):
    owners, truth = world
    both = (
        truth["people"]
        .filter(F.col("is_member") & F.col("wechat_user"))
        .select("person_id")
        .localCheckpoint()
    )
    bridged = (
        _clusters(owners)
        .filter(F.col("member_cluster") & F.col("wechat_cluster"))
        .select("person_id")
        .distinct()
    )
    unbridged = both.join(bridged, on="person_id", how="left_anti").count()
    assert both.count() > 20
    # Only the WeChat follows that bind the phone (wechat_phone_share 0.15) join them.
    assert unbridged / both.count() > 0.6


def test_every_landed_record_has_its_true_person(world):
    owners, _ = world
    assert owners.filter(F.col("person_id").isNull()).count() == 0


# ------------------------------------------------------------------------- the traps
def _devices_and_people(owners: DataFrame, traps: DataFrame, kind: str) -> DataFrame:
    """Per trap device of ``kind``: the records seen with it, their people and member ids."""
    devices = traps.filter(F.col("kind") == kind).select(F.col("id_value").alias("device"))
    seen = owners.filter(F.col("id_type") == "device_id").select(
        "source", "record_id", "person_id", F.lower("id_value").alias("device")
    )
    members = owners.filter(F.col("id_type") == "member_id").select(
        "source", "record_id", F.col("id_value").alias("member")
    )
    return (
        seen.join(devices, on="device", how="inner")
        .join(members, on=["source", "record_id"], how="left")
        .groupBy("device")
        .agg(
            F.countDistinct("person_id").alias("people"),
            F.countDistinct("member").alias("members"),
            F.max(F.col("record_id").rlike("^SI[WAX]")).alias("signed_in"),
        )
    )


def test_couples_share_a_tablet(world):
    owners, truth = world
    couples = (
        truth["people"]
        .filter(F.col("family"))
        .groupBy("household_id")
        .agg(F.count(F.lit(1)).alias("people"), F.min(F.col("app_user").cast("int")).alias("app"))
    )
    assert couples.count() > 5
    # Both of every couple, and nobody else, use the app on the shared tablet.
    assert {(r["people"], r["app"]) for r in couples.collect()} == {(2, 1)}
    tablets = _devices_and_people(owners, truth["traps"], "family_device").collect()
    assert tablets and max(r["people"] for r in tablets) == 2
    assert not any(r["signed_in"] for r in tablets)


def test_store_kiosks_are_seen_with_many_members(world):
    owners, truth = world
    traps = truth["traps"]
    kiosks = traps.filter(F.col("kind") == "kiosk_device").collect()
    assert kiosks and all(
        r["id_type"] == "device_id" and r["id_value"] == r["id_value"].lower() for r in kiosks
    )
    seen = _devices_and_people(owners, traps, "kiosk_device").collect()
    # More member ids than identity's max_linked (5): the kiosk should end up over-linked.
    assert seen and max(r["members"] for r in seen) > 5
    assert all(r["members"] == r["people"] for r in seen)
    assert not any(r["signed_in"] for r in seen)
