"""Audience segments: boolean conditions over a person's tags, consent enforced.

A person without marketing consent is never a member of any segment, whatever the
condition says: consent must be explicitly true (no customer row, or any row saying
no, means no consent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.columns import ONE_ID, RUN_DATE
from precis.tags.templates import Segment

SEGMENT_COLUMNS = ("segment", ONE_ID, "segment_version", RUN_DATE, "computed_at")


def members(
    profiles: DataFrame,
    segments: Sequence[Segment],
    consent: DataFrame,
    run_date: dt.date,
    computed_at: dt.datetime,
) -> DataFrame:
    """``segment``, ``one_id`` and metadata for every consented person meeting a condition.

    ``consent`` is ``one_id`` + boolean ``consent_marketing``; people missing from it
    have no consent.
    """
    consented = profiles.join(
        consent.filter(F.col("consent_marketing") == F.lit(True)).select(ONE_ID),
        on=ONE_ID,
        how="left_semi",
    )
    frames = [
        consented.filter(F.coalesce(F.expr(s.spec.where).cast("boolean"), F.lit(False))).select(
            F.lit(s.name).alias("segment"), ONE_ID, F.lit(s.version).alias("segment_version")
        )
        for s in segments
    ]
    if not frames:
        return profiles.sparkSession.createDataFrame(
            [],
            "segment string, one_id string, segment_version string, run_date date, computed_at timestamp",
        )
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union.select(
        *SEGMENT_COLUMNS[:3],
        F.lit(run_date).cast("date").alias(RUN_DATE),
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
    )


def member_counts(segments: Sequence[Segment]) -> list[Column]:
    """Members per segment, one aggregate column named after each segment."""
    return [F.count_if(F.col("segment") == F.lit(s.name)).alias(s.name) for s in segments]


def export_rows(members: DataFrame) -> DataFrame:
    """The members as activation tools receive them, one partition per segment."""
    return members.select("segment", ONE_ID, "segment_version", RUN_DATE).orderBy("segment", ONE_ID)


def counts_table(spark: SparkSession, counts: Mapping[str, int]) -> DataFrame:
    """``segment``, ``people``: the export's counts file, one file."""
    return spark.createDataFrame(list(counts.items()), "segment string, people long").coalesce(1)
