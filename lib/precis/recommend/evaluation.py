"""Offline evaluation of top-k lists: precision, recall, NDCG and MAP at k, coverage.

Reusable by any recommender: ``recommended`` holds one row per user with an ordered
array of item indices, ``relevant`` one row per user with the held-out items. Every
user with held-out items counts, including those given no recommendation (they score
zero), so a model cannot look better by skipping hard users. The ranking metrics are
Spark ML's ``RankingEvaluator`` (binary relevance; NDCG's ideal list is
min(k, |relevant|) long).
"""

from __future__ import annotations

from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precis.frames import kept

METRICS = {
    "precision": "precisionAtK",
    "recall": "recallAtK",
    "ndcg": "ndcgAtK",
    "map": "meanAveragePrecisionAtK",
}


def ranking_metrics(
    recommended: DataFrame, relevant: DataFrame, k: int, user: str = "user"
) -> dict[str, float]:
    """``recommended``: user, items (array, best first); ``relevant``: user, items."""
    # Every user with held-out items counts: no list is an empty list, not a skipped user.
    joined = relevant.select(user, F.col("items").alias("label")).join(
        recommended.select(user, F.col("items").alias("prediction")), user, how="left"
    )
    scored = joined.select(
        F.transform(F.coalesce("prediction", F.array()), lambda x: x.cast("double")).alias(
            "prediction"
        ),
        F.transform("label", lambda x: x.cast("double")).alias("label"),
    )
    out = {}
    # Four evaluators read the same lists: computed once.
    with kept(scored) as (frame,):
        for name, metric in METRICS.items():
            evaluator = RankingEvaluator(
                predictionCol="prediction",
                labelCol="label",
                metricName=metric,  # type: ignore[arg-type]  # METRICS' values are the evaluator's names
                k=k,
            )
            out[f"{name}_at_{k}"] = float(evaluator.evaluate(frame))
    return out


def coverage(recommended: DataFrame, catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    if catalogue_size == 0:
        return 0.0
    shown = recommended.select(F.explode("items").alias("item")).distinct().count()
    return shown / catalogue_size


def top_lists(
    scored: DataFrame, k: int, user: str = "user", item: str = "item", score: str = "score"
) -> DataFrame:
    """user, items: the k best-scored items per user (ties: lower item index first)."""
    best = Window.partitionBy(user).orderBy(F.desc(score), item)
    ranked = scored.withColumn("_rank", F.row_number().over(best)).filter(F.col("_rank") <= k)
    return (
        ranked.groupBy(user)
        .agg(F.array_sort(F.collect_list(F.struct("_rank", item))).alias("_s"))
        .select(user, F.col(f"_s.{item}").alias("items"))
    )


def popularity_scores(train: DataFrame, user: str = "user", item: str = "item") -> DataFrame:
    """item, score: the number of distinct users who interacted with the item."""
    return train.groupBy(item).agg(F.countDistinct(user).cast("double").alias("score"))


def popularity_lists(
    train: DataFrame,
    users: DataFrame,
    k: int,
    exclude_seen: bool = True,
    user: str = "user",
    item: str = "item",
) -> DataFrame:
    """Most popular items per user, skipping the user's own training items if asked.

    Only the k + (most items any of these users has seen) most popular items can make a
    list, so candidates stay small without a full cross join of users and items.
    """
    popular = popularity_scores(train, user, item)
    seen = train.select(user, item).distinct()
    depth = k
    if exclude_seen:
        most = (
            seen.join(users, user, how="left_semi")
            .groupBy(user)
            .count()
            .agg(F.max("count"))
            .collect()[0][0]
            or 0
        )
        depth = k + int(most)
    top = popular.orderBy(F.desc("score"), item).limit(depth)
    candidates = users.select(user).crossJoin(F.broadcast(top))
    if exclude_seen:
        candidates = candidates.join(seen, [user, item], how="left_anti")
    return top_lists(candidates, k, user, item)
