"""Offline evaluation of top-k lists: precision, recall, NDCG and MAP at k, coverage, and
a paired comparison of two recommenders' NDCG@k with its 95% interval.

Reusable by any recommender: ``recommended`` holds one row per user with an ordered
array of item indices, ``relevant`` one row per user with the held-out items. Every
user with held-out items counts, including those given no recommendation (they score
zero), so a model cannot look better by skipping hard users. The ranking metrics are
Spark ML's ``RankingEvaluator`` (binary relevance; NDCG's ideal list is
min(k, |relevant|) long).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import Column, DataFrame, Window
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


def ndcg(prediction: Column, label: Column, k: int) -> Column:
    """One user's NDCG@k with binary relevance, as Spark's ``RankingMetrics.ndcgAt``
    computes it (the ideal list is min(k, |label|) long); 0 for an empty label."""

    def gain(i: Column) -> Column:
        return F.lit(1.0) / F.log2(i + F.lit(2))

    dcg = F.aggregate(
        F.transform(
            F.slice(prediction, 1, k),
            lambda x, i: F.when(F.array_contains(label, x), gain(i)).otherwise(F.lit(0.0)),
        ),
        F.lit(0.0),
        lambda acc, v: acc + v,
    )
    ideal = F.aggregate(
        F.transform(
            F.array_repeat(F.lit(0), F.least(F.lit(k), F.size(label))), lambda _, i: gain(i)
        ),
        F.lit(0.0),
        lambda acc, v: acc + v,
    )
    return F.when(ideal > 0, dcg / ideal).otherwise(F.lit(0.0))


@dataclass(frozen=True)
class Lift:
    """NDCG@k of a model minus a baseline's, paired over the same users, with its 95%
    interval (normal approximation of the mean of the per-user differences)."""

    users: int
    mean: float
    ci_low: float
    ci_high: float

    @property
    def significant(self) -> bool:
        return self.ci_low > 0.0


def ndcg_lift(
    model: DataFrame, baseline: DataFrame, relevant: DataFrame, k: int, user: str = "user"
) -> Lift:
    """The paired NDCG@k lift of ``model`` over ``baseline`` (both user, items, best first)
    on every user of ``relevant`` (user, items); a missing list scores zero."""

    def per_user(name: str) -> Column:
        return ndcg(F.coalesce(F.col(name), F.array()), F.col("items"), k)

    joined = (
        relevant.select(user, "items")
        .join(model.select(user, F.col("items").alias("_m")), user, how="left")
        .join(baseline.select(user, F.col("items").alias("_b")), user, how="left")
    )
    diff = per_user("_m") - per_user("_b")
    row = joined.agg(
        F.count(F.lit(1)).alias("n"), F.avg(diff).alias("mean"), F.stddev_samp(diff).alias("sd")
    ).collect()[0]
    n, mean = int(row["n"]), float(row["mean"] or 0.0)
    half = 1.96 * float(row["sd"] or 0.0) / n**0.5 if n > 1 else float("inf")
    return Lift(n, mean, mean - half, mean + half)


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
    hidden: DataFrame | None = None,
) -> DataFrame:
    """Most popular items per user, skipping the user's own training items if asked.

    ``hidden``: user, item pairs to skip instead of the training pairs. Only the k +
    (most items any of these users skips) most popular items can make a list, so
    candidates stay small without a full cross join of users and items.
    """
    popular = popularity_scores(train, user, item)
    seen = (train if hidden is None else hidden).select(user, item).distinct()
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
