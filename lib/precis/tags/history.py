"""What changed between runs, and per-tag statistics of one run.

A *change* is a (person, tag) whose value or rule version differs from the table
before this run: inserted (no value before), updated, or deleted (no value now). The
computed time does not count, so an unchanged rerun has no changes at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.columns import ONE_ID, RUN_DATE, RUN_ID
from precis.tags.templates import NUMERIC, Tag

CHANGE_COLUMNS = (
    RUN_DATE,
    RUN_ID,
    ONE_ID,
    "tag",
    "change",
    "old_value",
    "new_value",
    "old_version",
    "new_version",
    "changed_at",
)
STATS_COLUMNS = (
    RUN_DATE,
    "tag",
    "template",
    "type",
    "rule_version",
    "people",
    "covered",
    "coverage",
    "distinct_values",
    "min",
    "max",
    "mean",
    "top_values",
    "changes",
    RUN_ID,
)


def changes(
    old: DataFrame | None, new: DataFrame, run_date: dt.date, run_id: str, changed_at: dt.datetime
) -> DataFrame:
    keys = [ONE_ID, "tag"]
    fresh = new.select(
        *keys, F.col("value").alias("new_value"), F.col("rule_version").alias("new_version")
    )
    if old is None:
        joined = fresh.withColumn("old_value", F.lit(None).cast("string")).withColumn(
            "old_version", F.lit(None).cast("string")
        )
    else:
        before = old.select(
            *keys, F.col("value").alias("old_value"), F.col("rule_version").alias("old_version")
        )
        joined = before.join(fresh, on=keys, how="full_outer")
    change = (
        F.when(F.col("old_value").isNull(), F.lit("inserted"))
        .when(F.col("new_value").isNull(), F.lit("deleted"))
        .otherwise(F.lit("updated"))
    )
    differs = ~(F.col("old_value").eqNullSafe(F.col("new_value"))) | ~(
        F.col("old_version").eqNullSafe(F.col("new_version"))
    )
    return joined.filter(differs).select(
        F.lit(run_date).cast("date").alias(RUN_DATE),
        F.lit(run_id).alias(RUN_ID),
        *keys,
        change.alias("change"),
        "old_value",
        "new_value",
        "old_version",
        "new_version",
        F.lit(changed_at).cast("timestamp").alias("changed_at"),
    )


def stats(
    tall: DataFrame,
    population: int,
    tags: Sequence[Tag],
    change_counts: dict[str, int],
    run_date: dt.date,
    run_id: str,
    skipped: Mapping[str, str] | None = None,
) -> DataFrame:
    """One row per tag: coverage of the population, a distribution summary, changes, and
    why the tag was skipped (``skipped``: tag -> reason; null for a computed tag)."""
    skipped = skipped or {}
    # Only numeric tags have a numeric summary (ANSI casts fail on labels such as 'prospect').
    numeric = F.when(F.col("type").isin(*sorted(NUMERIC)), F.col("value").try_cast("double"))
    per_tag = tall.groupBy("tag").agg(
        F.count(F.lit(1)).alias("covered"),
        F.countDistinct("value").alias("distinct_values"),
        F.min(numeric).alias("_min"),
        F.max(numeric).alias("_max"),
        F.avg(numeric).alias("_mean"),
    )
    # Categories only: the five most common values (ties: smallest value first).
    counts = (
        tall.filter(~F.col("type").isin(*sorted(NUMERIC)))
        .groupBy("tag", "value")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    ranked = Window.partitionBy("tag").orderBy(F.col("n").desc(), F.col("value").asc())
    top = (
        counts.withColumn("_rank", F.row_number().over(ranked))
        .filter(F.col("_rank") <= 5)
        .groupBy("tag")
        .agg(
            F.sort_array(
                F.collect_list(
                    F.struct(
                        "_rank", F.concat("value", F.lit(":"), F.col("n").cast("string")).alias("s")
                    )
                )
            ).alias("_top")
        )
        .select(
            "tag", F.array_join(F.transform("_top", lambda x: x["s"]), ", ").alias("top_values")
        )
    )
    spark = tall.sparkSession
    meta = spark.createDataFrame(
        [
            (
                t.name,
                t.template,
                t.type,
                t.version,
                int(change_counts.get(t.name, 0)),
                skipped.get(t.name),
            )
            for t in tags
        ],
        "tag string, template string, type string, rule_version string, changes long, "
        "skipped string",
    )
    is_numeric = F.col("type").isin(*sorted(NUMERIC))
    return (
        meta.join(per_tag, on="tag", how="left")
        .join(top, on="tag", how="left")
        .select(
            F.lit(run_date).cast("date").alias(RUN_DATE),
            "tag",
            "template",
            "type",
            "rule_version",
            F.lit(population).cast("long").alias("people"),
            F.coalesce(F.col("covered"), F.lit(0)).cast("long").alias("covered"),
            F.round(F.coalesce(F.col("covered"), F.lit(0)) / F.lit(max(population, 1)), 6).alias(
                "coverage"
            ),
            F.coalesce(F.col("distinct_values"), F.lit(0)).cast("long").alias("distinct_values"),
            F.when(is_numeric, F.col("_min")).alias("min"),
            F.when(is_numeric, F.col("_max")).alias("max"),
            F.when(is_numeric, F.round("_mean", 6)).alias("mean"),
            F.when(~is_numeric, F.col("top_values")).alias("top_values"),
            "changes",
            "skipped",
            F.lit(run_id).alias(RUN_ID),
        )
    )
