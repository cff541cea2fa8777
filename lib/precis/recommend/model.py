"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) on Spark ML: indexing, splits,
training, top-N for everyone.

People and items get dense int indices (ALS needs int32) numbered over the sorted
distinct ids on the executors: the same ids always get the same indices.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from precis.columns import ITEM_ID, ONE_ID
from precis.days import day_start
from precis.errors import PrecisError
from precis.frames import cut

INT32_MAX = 2**31 - 1
#: Extra candidates asked of the model per person so that dropping items the person
#: already has still leaves a full list (capped: beyond, popularity fills the list).
MAX_EXCLUDED = 200
#: Spark ML's own number of ALS user (and item) blocks.
SPARK_ALS_BLOCKS = 10


class RecommendError(PrecisError):
    """The recommender cannot be trained on this input."""


def dense_index(ids: DataFrame, column: str, index: str) -> DataFrame:
    """column, index: 0..n-1 over the sorted distinct values of ``column``."""
    return sized_dense_index(ids, column, index)[0]


def sized_dense_index(ids: DataFrame, column: str, index: str) -> tuple[DataFrame, int]:
    """(column, index: 0..n-1 over the sorted distinct values of ``column``; n).

    Range-partitioned and numbered within each partition, plus the sizes of the
    partitions before it: only one count per partition reaches the driver, and n is
    their sum.
    """
    ordered = (
        ids.select(column)
        .distinct()
        .repartitionByRange(column)
        .sortWithinPartitions(column)
        .withColumn("_part", F.spark_partition_id())
    )
    # Pinned, so the partition numbers the offsets are computed from are the ones used.
    ordered = cut(ordered)
    sizes = sorted((r["_part"], r["count"]) for r in ordered.groupBy("_part").count().collect())
    total = sum(n for _, n in sizes)
    check_int32(total, f"distinct {column} values")
    offsets, running = {}, 0
    for part, n in sizes:
        offsets[part] = running
        running += n
    offset = (
        F.element_at(
            F.create_map(*[F.lit(x) for kv in offsets.items() for x in kv]), F.col("_part")
        )
        if offsets
        else F.lit(0)
    )
    within = Window.partitionBy("_part").orderBy(column)
    numbered = ordered.select(
        column, (F.row_number().over(within) - 1 + offset).cast("int").alias(index)
    )
    return numbered, total


def indexed(pairs: DataFrame, users: DataFrame, items: DataFrame) -> DataFrame:
    """user, item, confidence: ``pairs`` (one_id, item_id, confidence) by dense index."""
    return (
        pairs.join(users, ONE_ID, how="inner")
        .join(items, ITEM_ID, how="inner")
        .select("user", "item", "confidence")
    )


def check_int32(n: int, what: str) -> None:
    if n > INT32_MAX:
        raise RecommendError(f"{n:,} {what} exceed ALS's int32 index range ({INT32_MAX:,})")


@dataclass(frozen=True)
class AlsParams:
    rank: int
    reg_param: float
    alpha: float
    max_iter: int = 10
    seed: int = 17
    block_size: int = 4096
    blocks: int = SPARK_ALS_BLOCKS  # user blocks, and item blocks

    def as_dict(self) -> dict[str, float]:
        return {
            "rank": self.rank,
            "reg_param": self.reg_param,
            "alpha": self.alpha,
            "max_iter": self.max_iter,
        }


def train(ratings: DataFrame, params: AlsParams) -> ALSModel:
    """ratings: user, item, confidence (implicit preferences: confidence weights a 0/1 preference)."""
    als = ALS(
        userCol="user",
        itemCol="item",
        ratingCol="confidence",
        implicitPrefs=True,
        rank=params.rank,
        regParam=params.reg_param,
        alpha=params.alpha,
        maxIter=params.max_iter,
        seed=params.seed,
        nonnegative=False,
        coldStartStrategy="drop",
        # recommendForAll multiplies factor blocks of this many rows: no user x item join.
        blockSize=params.block_size,
        numUserBlocks=params.blocks,
        numItemBlocks=params.blocks,
        checkpointInterval=5,
    )
    return als.fit(ratings)


def session_blocks(spark: SparkSession) -> int:
    """ALS blocks for this session (``blocks_for``)."""
    try:
        master = spark.conf.get("spark.master", None) or ""
    except Exception:  # a Connect server may not say
        master = ""
    return blocks_for(master, remote=type(spark).__module__.startswith("pyspark.sql.connect"))


def blocks_for(master: str, *, remote: bool = False) -> int:
    """One ALS block per core where the cores are known here: a ``local[N]`` master, or
    ``local[*]`` in this process (a Connect server's ``local[*]`` runs on its own
    machine); else Spark's own default."""
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master.strip())
    if not found:
        return SPARK_ALS_BLOCKS
    cores = found.group(1) or "1"
    if cores != "*":
        return max(1, int(cores))
    return SPARK_ALS_BLOCKS if remote else os.cpu_count() or SPARK_ALS_BLOCKS


def recommend_all(model: ALSModel, users: DataFrame | None, n: int) -> DataFrame:
    """user, item, score for the model's top n per user (all users, or those listed)."""
    recs = (
        model.recommendForAllUsers(n) if users is None else model.recommendForUserSubset(users, n)
    )
    return recs.select("user", F.explode("recommendations").alias("r")).select(
        "user", F.col("r.item").alias("item"), F.col("r.rating").cast("double").alias("score")
    )


def time_split(ratings_evidence: DataFrame, cutoff: dt.date) -> tuple[DataFrame, DataFrame]:
    """Evidence before the business day ``cutoff`` trains; pairs first seen from it on
    are held out."""
    train = ratings_evidence.filter(F.col("at") < day_start(cutoff))
    later = ratings_evidence.filter(F.col("at") >= day_start(cutoff))
    held = later.join(train.select(ONE_ID, ITEM_ID).distinct(), [ONE_ID, ITEM_ID], how="left_anti")
    return train, held


def latest_split(evidence: DataFrame, share: float) -> tuple[DataFrame, DataFrame]:
    """(training evidence, held-out one_id, item_id): each person with two or more items
    holds out the latest ``share`` of them by first touch (ties: the higher item_id),
    rounded, at least one and never all; their evidence does not train."""
    pairs = evidence.groupBy(ONE_ID, ITEM_ID).agg(F.min("at").alias("_first"))
    person = Window.partitionBy(ONE_ID)
    n, pos = F.col("_n"), F.col("_pos")
    held = (
        pairs.withColumn("_n", F.count(F.lit(1)).over(person))
        .withColumn("_pos", F.row_number().over(person.orderBy(F.desc("_first"), F.desc(ITEM_ID))))
        .filter((n >= 2) & (pos <= F.least(n - 1, F.greatest(F.lit(1), F.round(n * share)))))
        .select(ONE_ID, ITEM_ID)
    )
    return evidence.join(held, [ONE_ID, ITEM_ID], how="left_anti"), held
