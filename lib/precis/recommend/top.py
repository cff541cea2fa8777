"""Top-N for everyone: the model's lists without excluded items, filled up by popularity.

People the model has not seen, and lists that exclusions left short, get the most
popular items they do not have yet (``source = popularity``; the score is the share of
people with evidence who touched the item).
"""

from __future__ import annotations

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ITEM_ID, ONE_ID
from precis.recommend import evaluation, model

#: Where a recommendation comes from.
SOURCES = ("als", "popularity")
#: Columns of a person's lists, best first (``rank`` 1).
LIST_COLUMNS = (ONE_ID, "rank", ITEM_ID, "score", "source", "consent_marketing")


def most_excluded(exclude: DataFrame | None) -> int:
    """The most items any one person has excluded (at most ``model.MAX_EXCLUDED``)."""
    if exclude is None:
        return 0
    most = exclude.groupBy(ONE_ID).count().agg(F.max("count")).collect()[0][0] or 0
    return min(int(most), model.MAX_EXCLUDED)


def popular_items(ratings: DataFrame, items: DataFrame, size: int) -> DataFrame:
    """item_id, score: the ``size`` most popular items, held on the driver.

    Popularity is the share of the people in ``ratings`` (user, item) who touched the
    item; ties go to the lower item_id.
    """
    total = ratings.select("user").distinct().count()
    ranked = (
        evaluation.popularity_scores(ratings)
        .join(items, "item", how="inner")
        .select(ITEM_ID, (F.col("score") / F.lit(float(total))).alias("score"))
        .orderBy(F.desc("score"), ITEM_ID)
        .limit(size)
    )
    # A few rows: the ratings they come from need not stay computed for them.
    return ratings.sparkSession.createDataFrame(ranked.collect(), ranked.schema)


def top_n(
    fitted: ALSModel | None,
    users: DataFrame,
    items: DataFrame,
    people: DataFrame,
    popular: DataFrame,
    n: int,
    exclude: DataFrame | None = None,
    extra: int = 0,
) -> DataFrame:
    """one_id, rank, item_id, score, source: ``n`` rows for every one_id of ``people``.

    ``popular``: item_id, score of at least the 2n + ``extra`` most popular items (an
    ALS list and the excluded items can each hide n + ``extra`` of them); ``exclude``:
    one_id, item_id never to recommend; ``extra``: the most items one person excludes.
    No model (popularity ships): every list is popularity's.
    """
    if fitted is None:
        recs = people.sparkSession.createDataFrame(
            [], f"{ONE_ID} string, {ITEM_ID} string, score double"
        )
    else:
        recs = (
            model.recommend_all(fitted, None, n + extra)
            .join(users, "user", how="inner")
            .join(items, "item", how="inner")
            .select(ONE_ID, ITEM_ID, "score")
        )
    if exclude is not None:
        recs = recs.join(exclude, [ONE_ID, ITEM_ID], how="left_anti")
    als = (
        evaluation.top_lists(recs, n, user=ONE_ID, item=ITEM_ID)
        .select(ONE_ID, F.posexplode("items").alias("pos", ITEM_ID))
        .join(recs, [ONE_ID, ITEM_ID], how="inner")
        .select(
            ONE_ID,
            (F.col("pos") + 1).alias("rank"),
            ITEM_ID,
            "score",
            F.lit("als").alias("source"),
        )
    )
    have = als.groupBy(ONE_ID).agg(F.count(F.lit(1)).alias("_have"))
    short = people.join(have, ONE_ID, how="left").fillna(0, ["_have"]).filter(F.col("_have") < n)
    candidates = short.crossJoin(F.broadcast(popular)).join(
        als.select(ONE_ID, ITEM_ID), [ONE_ID, ITEM_ID], how="left_anti"
    )
    if exclude is not None:
        candidates = candidates.join(exclude, [ONE_ID, ITEM_ID], how="left_anti")
    fill = (
        evaluation.top_lists(
            candidates.select(ONE_ID, ITEM_ID, "score", "_have"),
            n,
            user=ONE_ID,
            item=ITEM_ID,
        )
        .join(short.select(ONE_ID, "_have"), ONE_ID, how="inner")
        .select(ONE_ID, "_have", F.posexplode("items").alias("pos", ITEM_ID))
        .filter(F.col("_have") + F.col("pos") < n)
        .join(popular, ITEM_ID, how="inner")
        .select(
            ONE_ID,
            (F.col("_have") + F.col("pos") + 1).alias("rank"),
            ITEM_ID,
            "score",
            F.lit("popularity").alias("source"),
        )
    )
    return als.unionByName(fill)


def with_consent(lists: DataFrame, consent: DataFrame) -> DataFrame:
    """``LIST_COLUMNS``: the lists with each person's marketing consent (none on record: no)."""
    return (
        lists.join(consent, ONE_ID, how="left")
        .fillna(False, ["consent_marketing"])
        .select(
            ONE_ID,
            F.col("rank").cast("int").alias("rank"),
            ITEM_ID,
            F.round("score", 6).alias("score"),
            "source",
            "consent_marketing",
        )
        .filter(~F.isnan("score"))
    )


def source_counts() -> list[Column]:
    """Aggregates: rows per ``SOURCES`` value, named after it."""
    return [F.count_if(F.col("source") == F.lit(s)).alias(s) for s in SOURCES]
